// Bytes back into frames. A two-state parser (header, then body): header bytes
// gather in a small preallocated buffer; a body that lies inside one chunk is
// handed on as a zero-copy view, any other body gets exactly one allocation of
// its announced length, which the length check has bounded beforehand.

import { Transform, type TransformCallback } from 'node:stream'
import { crc32 } from 'node:zlib'
import { FramePipeError, FrameTooLargeError, UnexpectedEofError } from '../errors.js'
import { isBoundary, now, sniffFormat, type Boundary, type Frame } from '../frame.js'
import {
  decodeHeader, describeRecord, HEADER_BYTES, HEADER_FORMATS, hex32,
  type DecodedHeader, type HeaderFormat,
} from '../lib/headers.js'
import { defineStage } from '../spec.js'
import { stageFactory, type StageContext } from '../stage.js'

export interface UnprefixOptions {
  header?: HeaderFormat
  maxFrameBytes?: number
}

export const spec = defineStage<UnprefixOptions, Transform>({
  name: 'unprefix',
  kind: 'transform',
  input: 'bytes',
  output: 'frames',
  description: 'Split a length-prefixed byte stream into frames',
  options: {
    header: {
      type: 'enum',
      values: HEADER_FORMATS,
      default: 'u32be',
      doc: 'Length header: u32be (seed 003), u32le, ii (seed 001), i64le (seed 000b), native (frame-pipe, carries seq/timestamp/size/format)',
    },
    maxFrameBytes: {
      type: 'size',
      min: 1,
      default: 64 * 2 ** 20,
      doc: 'Largest frame accepted; a header announcing more is an error, raised before any memory is set aside for the body',
    },
  },
  create(o, ctx) {
    return new Unprefixer(o, ctx)
  },
})

export const unprefix = stageFactory(spec)

const EMPTY = Buffer.alloc(0)
// Below this many bytes a loop beats Buffer#copy's call overhead (1-byte chunks).
const SMALL_COPY = 16

type State = 'header' | 'skip' | 'body'

class Unprefixer extends Transform {
  private readonly format: HeaderFormat
  private readonly maxFrameBytes: number
  private readonly ctx: StageContext
  private readonly head: Buffer
  private state: State = 'header'
  private headFilled = 0
  private skipLeft = 0
  private header: DecodedHeader | undefined
  /** Set only while a body spans chunks. */
  private body: Buffer | undefined
  private bodyFilled = 0
  /** Sequence numbers for formats whose header carries none. */
  private nextSeq = 0

  constructor(o: Required<UnprefixOptions>, ctx: StageContext) {
    // Frames may be up to maxFrameBytes each: queue few on the readable side.
    super({ objectMode: true, readableHighWaterMark: 2 })
    this.format = o.header
    this.maxFrameBytes = o.maxFrameBytes
    this.ctx = ctx
    this.head = Buffer.alloc(HEADER_BYTES[o.header])
  }

  override _transform(chunk: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (Buffer.isBuffer(chunk)) {
      callback(this.feed(chunk))
    } else if (chunk instanceof Uint8Array) {
      callback(this.feed(asBuffer(chunk)))
    } else if (Array.isArray(chunk)) {
      for (const piece of chunk as unknown[]) {
        const err = piece instanceof Uint8Array ? this.feed(asBuffer(piece)) : this.badInput(piece, ' inside a packet')
        if (err) return callback(err)
      }
      callback()
    } else if (isBoundary(chunk)) {
      this.boundary(chunk)
      callback()
    } else {
      callback(this.badInput(chunk, ''))
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.state === 'header' && this.headFilled === 0) return callback()
    if (this.state === 'body') return callback(new UnexpectedEofError(this.ctx.name, 'a frame body', this.header!.length - this.bodyFilled))
    const missing = this.state === 'header' ? this.head.length - this.headFilled : this.skipLeft
    callback(new UnexpectedEofError(this.ctx.name, `a ${this.format} header`, missing))
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.body = undefined
    this.header = undefined
    callback(err)
  }

  private feed(buf: Buffer): FramePipeError | undefined {
    let pos = 0
    const end = buf.length
    while (pos < end) {
      if (this.state === 'header') {
        const head = this.head
        const stop = Math.min(end, pos + head.length - this.headFilled)
        while (pos < stop) head[this.headFilled++] = buf[pos++]!
        if (this.headFilled < head.length) return undefined
        const err = this.onHeader()
        if (err) return err
      } else if (this.state === 'skip') {
        const n = Math.min(this.skipLeft, end - pos)
        pos += n
        this.skipLeft -= n
        if (this.skipLeft === 0) {
          const err = this.startBody()
          if (err) return err
        }
      } else {
        const length = this.header!.length
        if (this.body === undefined) {
          if (end - pos >= length) {
            const err = this.finish(buf.subarray(pos, pos + length))
            if (err) return err
            pos += length
            continue
          }
          this.body = Buffer.allocUnsafe(length)
        }
        const n = Math.min(length - this.bodyFilled, end - pos)
        if (n < SMALL_COPY) {
          const body = this.body
          for (let i = 0; i < n; i++) body[this.bodyFilled + i] = buf[pos + i]!
        } else {
          buf.copy(this.body, this.bodyFilled, pos, pos + n)
        }
        this.bodyFilled += n
        pos += n
        if (this.bodyFilled === length) {
          const body = this.body
          this.body = undefined
          this.bodyFilled = 0
          const err = this.finish(body)
          if (err) return err
        }
      }
    }
    return undefined
  }

  private onHeader(): FramePipeError | undefined {
    const header = decodeHeader(this.format, this.head, this.ctx.name)
    if (header instanceof FramePipeError) return header
    if (header.length > this.maxFrameBytes) return new FrameTooLargeError(this.ctx.name, header.length, this.maxFrameBytes)
    this.header = header
    if (header.extra > 0) {
      this.state = 'skip'
      this.skipLeft = header.extra
      return undefined
    }
    return this.startBody()
  }

  private startBody(): FramePipeError | undefined {
    this.state = 'body'
    // An empty payload completes now: no further byte may ever come.
    return this.header!.length === 0 ? this.finish(EMPTY) : undefined
  }

  private finish(data: Buffer): FramePipeError | undefined {
    const header = this.header!
    const meta = header.meta
    if (header.crc >= 0) {
      const actual = crc32(data)
      if (actual !== header.crc) {
        return new FramePipeError('ERR_CHECKSUM', `CRC-32 mismatch in frame seq ${meta?.seq} (${data.length} bytes): expected ${hex32(header.crc)}, actual ${hex32(actual)}`, { stage: this.ctx.name })
      }
    }
    let frame: Frame
    if (meta) {
      frame = { data, ...meta }
    } else {
      frame = { data, format: sniffFormat(data), width: 0, height: 0, channels: 0, seq: this.nextSeq, timestamp: now() }
      this.nextSeq = (this.nextSeq + 1) >>> 0
    }
    this.reset()
    this.ctx.counters.frames++
    this.ctx.counters.bytes += data.length
    this.push(frame)
    return undefined
  }

  private boundary(b: Boundary): void {
    if (this.state === 'header' && this.headFilled === 0) return
    let text: string
    if (this.state === 'header') {
      text = `${this.headFilled} of ${this.head.length} header bytes dropped`
    } else {
      const header = this.header!
      const got = this.head.length + header.extra - this.skipLeft + this.bodyFilled
      text = `${got} of ${this.head.length + header.extra + header.length} bytes dropped`
    }
    this.ctx.counters.drops++
    this.reset()
    this.emit('warning', new FramePipeError('ERR_UNEXPECTED_EOF', `peer ${b.peer} left mid-frame, ${text}`, { stage: this.ctx.name }))
  }

  private reset(): void {
    this.state = 'header'
    this.headFilled = 0
    this.skipLeft = 0
    this.header = undefined
    this.body = undefined
    this.bodyFilled = 0
  }

  private badInput(value: unknown, where: string): FramePipeError {
    return new FramePipeError('ERR_BAD_FRAME', `expected bytes (Buffer, Uint8Array, Buffer[] or Boundary) but received ${describeRecord(value)}${where}: unprefix takes bytes`, { stage: this.ctx.name })
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}
