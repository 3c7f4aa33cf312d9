// Bytes back into frames: the stream face of FrameParser (src/wire/length-parser.ts),
// which holds the two-state, zero-copy parser and header=auto's detection.

import { Transform, type TransformCallback } from 'node:stream'
import { FramePipeError } from '../core/errors.js'
import { isBoundary, type Frame } from '../core/frame.js'
import { notBytes } from '../core/checks.js'
import { FrameParser } from '../wire/length-parser.js'
import { UNPREFIX_HEADERS, type UnprefixHeader } from '../wire/headers.js'
import { defineStage } from '../core/spec.js'
import { stageFactory, type StageContext } from '../core/stage.js'
import type { FramePipeError as UnprefixWarning } from '../core/errors.js'

export interface UnprefixOptions {
  header?: UnprefixHeader
  maxFrameBytes?: number
}

/** Events of unprefix (see core/events.ts): a skipped frame is a warning; a header format found by auto-detection is info. */
export interface UnprefixEvents {
  warning: UnprefixWarning
  info: { message: string }
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
      values: UNPREFIX_HEADERS,
      default: 'u32be',
      doc:
        'Length header: u32be (seed 003), u32le, ii (seed 001), i64le (seed 000b), native (frame-pipe, carries seq/timestamp/size/format), ' +
        "ascii (seed 002: decimal digits, ended by the payload's first byte, which must not be a digit), " +
        "auto (recognised from each peer's first bytes: native by its magic, the others only before JPEG/PNG/WebP payloads; an 'info' event names it)",
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

export const unprefix = stageFactory<UnprefixOptions, Transform, UnprefixEvents>(spec)

export class Unprefixer extends Transform {
  private readonly ctx: StageContext
  private readonly parser: FrameParser

  constructor(o: Required<UnprefixOptions>, ctx: StageContext) {
    // Frames may be up to maxFrameBytes each: queue few on the readable side.
    super({ objectMode: true, readableHighWaterMark: 2 })
    this.ctx = ctx
    this.parser = new FrameParser({
      ...o,
      stage: ctx.name,
      counters: ctx.counters,
      onFrame: (frame: Frame) => {
        this.push(frame)
      },
      onWarning: (err) => {
        this.emit('warning', err)
      },
      onInfo: (message) => {
        this.emit('info', { message })
      },
    })
  }

  override _transform(chunk: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (Buffer.isBuffer(chunk)) {
      callback(this.parser.feed(chunk))
    } else if (chunk instanceof Uint8Array) {
      callback(this.parser.feed(asBuffer(chunk)))
    } else if (Array.isArray(chunk)) {
      for (const piece of chunk as unknown[]) {
        const err = piece instanceof Uint8Array ? this.parser.feed(asBuffer(piece)) : this.badInput(piece, ' inside a packet')
        if (err) return callback(err)
      }
      callback()
    } else if (isBoundary(chunk)) {
      callback(this.parser.boundary(chunk))
    } else {
      callback(this.badInput(chunk, ''))
    }
  }

  override _flush(callback: TransformCallback): void {
    callback(this.parser.end())
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.parser.release()
    callback(err)
  }

  private badInput(value: unknown, where: string): FramePipeError {
    const err = notBytes(this.ctx.name, value, 'frames need no unprefix')!
    if (where) err.message += where
    return err
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}
