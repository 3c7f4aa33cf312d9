// The length-prefix parser behind `unprefix`, `cmd-client` and
// `snapshot-client`, free of any stream so that a transport can feed it its
// socket's bytes directly. A two-state parser (header, then body): header
// bytes gather in a small preallocated buffer; a body that lies inside one
// chunk is handed on as a zero-copy view, any other body is read into one
// buffer of its announced length (bounded beforehand by the length check):
// from the owner's pool when it gives one (unprefix: core/body-pool.ts, the
// frame's last holder gives it back), else a fresh one.

import { BodyPool, MIN_POOLED_BYTES } from '../core/body-pool.js'
import { crc32 } from '../core/builtins.js'
import { FramePipeError, FrameTooLargeError, UnexpectedEofError } from '../core/errors.js'
import { now, saneTimestamp, sniffFormat, type Boundary, type Frame } from '../core/frame.js'
import type { Counters } from '../core/stage.js'
import { detectHeader, DETECT_LIMIT } from './detect-header.js'
import type { ByteParser, ByteParserOptions } from './parser.js'
import {
  ASCII_MAX_DIGITS,
  decodeHeader,
  HEADER_BYTES,
  hex,
  hex32,
  isDigit,
  isFixedFormat,
  plain,
  type DecodedHeader,
  type HeaderFormat,
  type UnprefixHeader,
} from './headers.js'

export interface FrameParserOptions extends ByteParserOptions {
  header: UnprefixHeader
  /** frames, bytes and drops are counted here. */
  counters: Counters
  onFrame(frame: Frame): void
  /** Something was dropped and counted (a frame cut by a Boundary); the stream goes on. */
  onWarning?(err: FramePipeError): void
  /** Worth a log line (the format auto detected). */
  onInfo?(message: string): void
  /**
   * Native headers carry the sender's capture time: one that is not within
   * this many ms of our clock (or not a number) is replaced by the arrival
   * time and counted in `badTimestamps`. Undefined: taken as sent.
   */
  maxClockSkew?: number
  /**
   * Bodies that span chunks are read into buffers from this pool, and each
   * such frame gets a `release` that gives its buffer back (Frame.release).
   * Only for a stage that hands its frames on with handOn, so that a frame
   * seen by two consumers is never given back. Unset: a fresh buffer per body.
   */
  pool?: BodyPool
}

const EMPTY = Buffer.alloc(0)
// Below this many bytes a loop beats Buffer#copy's call overhead (1-byte chunks).
const SMALL_COPY = 16

type State = 'detect' | 'header' | 'skip' | 'body'

/**
 * A header announcing more than maxFrameBytes whose bytes are printable text
 * (seed 003's server writes 'Unknown command' into its image stream): say so.
 */
export class TextInStreamError extends FrameTooLargeError {
  readonly text: string
  constructor(stage: string, size: number, limit: number, text: string) {
    super(stage, size, limit)
    this.text = text
    this.message += `; the header bytes are the text "${text}": the peer wrote text into the byte stream`
  }
}

export class FrameParser implements ByteParser {
  private readonly auto: boolean
  private format: HeaderFormat | undefined
  private readonly maxFrameBytes: number
  private readonly stage: string
  private readonly counters: Counters
  private readonly onFrame: FrameParserOptions['onFrame']
  private readonly onWarning: FrameParserOptions['onWarning']
  private readonly onInfo: FrameParserOptions['onInfo']
  private readonly maxClockSkew: number | undefined
  private readonly pool: BodyPool | undefined
  /** The peer whose bytes are being parsed, when the byte source names it: frames carry it (Frame.peer). */
  peer: string | undefined
  /** A bad timestamp was reported for the current peer: further ones are only counted. */
  private clockWarned = false
  private state: State
  /** Fixed formats: the header bytes gathered so far. */
  private head: Buffer = EMPTY
  private headFilled = 0
  /** ascii: digits read so far and their value. */
  private digits = ''
  private skipLeft = 0
  private header: DecodedHeader | undefined
  /** Set only while a body spans chunks. */
  private body: Buffer | undefined
  /** The pool's buffer that `body` is the start of, when it came from the pool. */
  private pooled: Buffer | undefined
  private bodyFilled = 0
  /** auto: the peer's first bytes, until the format is known. */
  private seen: Buffer = EMPTY
  private seenLength = 0
  /** Sequence numbers for formats whose header carries none. */
  private nextSeq = 0

  constructor(o: FrameParserOptions) {
    this.auto = o.header === 'auto'
    this.maxFrameBytes = o.maxFrameBytes
    this.stage = o.stage ?? 'length-prefix'
    this.counters = o.counters
    this.onFrame = o.onFrame
    this.onWarning = o.onWarning
    this.onInfo = o.onInfo
    this.maxClockSkew = o.maxClockSkew
    this.pool = o.pool
    this.state = 'header'
    if (o.header === 'auto') this.state = 'detect'
    else this.use(o.header)
  }

  /** The header format in use; undefined while auto is still looking. */
  get headerFormat(): HeaderFormat | undefined {
    return this.format
  }

  /** Nothing of a frame is held: the bytes so far ended at a frame boundary. */
  idle(): boolean {
    return (this.state === 'header' && this.headFilled === 0 && this.digits === '') || (this.state === 'detect' && this.seenLength === 0)
  }

  feed(buf: Buffer): FramePipeError | undefined {
    if (this.state === 'detect') return this.detect(buf, false)
    let pos = 0
    const end = buf.length
    while (pos < end) {
      if (this.state === 'header') {
        if (this.format === 'ascii') {
          while (pos < end && isDigit(buf[pos]!)) {
            if (this.digits.length === ASCII_MAX_DIGITS) {
              return this.bad(`ascii header has more than ${ASCII_MAX_DIGITS} digits (${this.digits}${String.fromCharCode(buf[pos]!)}…)`)
            }
            this.digits += String.fromCharCode(buf[pos++]!)
          }
          if (pos === end) return undefined
          if (this.digits === '') {
            return this.bad(`ascii header must start with a decimal digit, found ${hex(buf.subarray(pos, pos + 4))}`)
          }
          const err = this.onHeader(plain(Number(this.digits)))
          if (err) return err
          continue
        }
        const head = this.head
        const stop = Math.min(end, pos + head.length - this.headFilled)
        while (pos < stop) head[this.headFilled++] = buf[pos++]!
        if (this.headFilled < head.length) return undefined
        const header = decodeHeader(this.format as Exclude<HeaderFormat, 'ascii'>, head, this.stage)
        if (header instanceof FramePipeError) return header
        const err = this.onHeader(header)
        if (err) return err
      } else if (this.state === 'skip') {
        const n = Math.min(this.skipLeft, end - pos)
        pos += n
        this.skipLeft -= n
        if (this.skipLeft === 0) {
          const err = this.startBody()
          if (err) return err
        }
      } else if (this.state === 'body') {
        const length = this.header!.length
        if (this.body === undefined) {
          if (end - pos >= length) {
            const err = this.finish(buf.subarray(pos, pos + length))
            if (err) return err
            pos += length
            continue
          }
          if (this.pool !== undefined && length >= MIN_POOLED_BYTES) {
            this.pooled = this.pool.take(length)
            this.body = this.pooled.subarray(0, length)
          } else {
            this.body = Buffer.allocUnsafe(length)
          }
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
          const pooled = this.pooled
          this.body = undefined
          this.pooled = undefined
          this.bodyFilled = 0
          const err = this.finish(body, pooled)
          if (err) return err
        }
      } else {
        return this.detect(buf.subarray(pos), false)
      }
    }
    return undefined
  }

  /** The end of the input: what is left must be nothing, or it is reported. */
  end(): FramePipeError | undefined {
    if (this.state === 'detect') {
      if (this.seenLength === 0) return undefined
      const err = this.decide(true)
      if (err) return err
      if (this.state === 'detect') {
        return new FramePipeError(
          'ERR_UNEXPECTED_EOF',
          `stream ended after ${this.seenLength} bytes, too few for header=auto to recognise the header format`,
          { stage: this.stage },
        )
      }
    }
    if (this.state === 'header') {
      if (this.format === 'ascii') {
        if (this.digits === '') return undefined
        const length = Number(this.digits)
        // "0" then the end: an empty frame, complete.
        if (length === 0) return this.onHeader(plain(0))
        return new UnexpectedEofError(this.stage, 'a frame body', length)
      }
      if (this.headFilled === 0) return undefined
      return new UnexpectedEofError(this.stage, `a ${this.format} header`, this.head.length - this.headFilled)
    }
    if (this.state === 'body') return new UnexpectedEofError(this.stage, 'a frame body', this.header!.length - this.bodyFilled)
    return new UnexpectedEofError(this.stage, `a ${this.format} header`, this.skipLeft)
  }

  /** One peer's bytes end here: a frame it cut short is dropped (warning, drops), never spliced to the next peer's bytes. */
  boundary(b: Boundary): FramePipeError | undefined {
    if (this.state === 'detect' && this.seenLength > 0) {
      const err = this.decide(true)
      if (err) return err
      if (this.state === 'detect') {
        this.drop(b, `${this.seenLength} bytes dropped before header=auto could recognise their format`)
        return undefined
      }
    }
    if (this.idle()) {
      this.nextPeer()
      return undefined
    }
    let text: string
    if (this.state === 'header') {
      text =
        this.format === 'ascii'
          ? `${this.digits.length} header digit${this.digits.length === 1 ? '' : 's'} dropped`
          : `${this.headFilled} of ${this.head.length} header bytes dropped`
    } else {
      const header = this.header!
      const size = this.headerSize()
      const got = size + header.extra - this.skipLeft + this.bodyFilled
      text = `${got} of ${size + header.extra + header.length} bytes dropped`
    }
    this.drop(b, text)
    return undefined
  }

  private drop(b: Boundary, text: string): void {
    this.counters.drops++
    this.nextPeer()
    this.onWarning?.(new FramePipeError('ERR_UNEXPECTED_EOF', `peer ${b.peer} left mid-frame, ${text}`, { stage: this.stage }))
  }

  /**
   * Forget the current peer's bytes after a fault (its connection is being
   * cut): the next bytes fed are the next peer's, parsed from a clean state.
   */
  discardPeer(): void {
    this.nextPeer()
  }

  /** Release what a destroyed stream held. */
  release(): void {
    this.body = undefined
    this.pooled = undefined
    this.header = undefined
    this.seen = EMPTY
  }

  private use(format: HeaderFormat): void {
    this.format = format
    this.head = isFixedFormat(format) ? Buffer.alloc(HEADER_BYTES[format]) : EMPTY
    this.state = 'header'
  }

  private headerSize(): number {
    return this.format === 'ascii' ? this.digits.length : this.head.length
  }

  /** auto: keep the peer's first bytes until one format fits, then parse them (and the rest of `buf`) with it. */
  private detect(buf: Buffer, final: boolean): FramePipeError | undefined {
    // Fast path: the first chunk alone usually decides, and is parsed without a copy.
    if (this.seenLength === 0) {
      const verdict = detectHeader(buf.length > DETECT_LIMIT ? buf.subarray(0, DETECT_LIMIT) : buf, final, this.maxFrameBytes, this.stage)
      if (verdict.kind === 'error') return verdict.error
      if (verdict.kind === 'found') {
        this.found(verdict.format)
        return this.feed(buf)
      }
    }
    let pos = 0
    while (pos < buf.length) {
      const n = Math.min(buf.length - pos, DETECT_LIMIT - this.seenLength)
      this.keep(buf.subarray(pos, pos + n))
      pos += n
      const err = this.decide(false)
      if (err) return err
      if (this.state !== 'detect') return pos < buf.length ? this.feed(buf.subarray(pos)) : undefined
    }
    return undefined
  }

  /** Decide from the bytes kept so far; on success they are parsed now. */
  private decide(final: boolean): FramePipeError | undefined {
    const seen = this.seen.subarray(0, this.seenLength)
    const verdict = detectHeader(seen, final, this.maxFrameBytes, this.stage)
    if (verdict.kind === 'error') return verdict.error
    if (verdict.kind !== 'found') return undefined
    this.seen = EMPTY
    this.seenLength = 0
    this.found(verdict.format)
    return this.feed(seen)
  }

  private found(format: HeaderFormat): void {
    this.use(format)
    this.onInfo?.(`header=auto detected header=${format}`)
  }

  /** Append to `seen`, doubling its capacity: each byte is copied about twice in all, never per chunk. */
  private keep(bytes: Buffer): void {
    const need = this.seenLength + bytes.length
    if (need > this.seen.length) {
      const grown = Buffer.allocUnsafe(Math.min(DETECT_LIMIT, Math.max(64, need, this.seen.length * 2)))
      this.seen.copy(grown, 0, 0, this.seenLength)
      this.seen = grown
    }
    bytes.copy(this.seen, this.seenLength)
    this.seenLength = need
  }

  private onHeader(header: DecodedHeader): FramePipeError | undefined {
    if (header.length > this.maxFrameBytes) {
      const text = this.format === 'ascii' ? undefined : printable(this.head)
      return text === undefined
        ? new FrameTooLargeError(this.stage, header.length, this.maxFrameBytes)
        : new TextInStreamError(this.stage, header.length, this.maxFrameBytes, text)
    }
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

  /** A whole body: its frame goes out. `pooled`: the pool's buffer it lies in, given back when the frame is released. */
  private finish(data: Buffer, pooled?: Buffer): FramePipeError | undefined {
    const header = this.header!
    const meta = header.meta
    if (header.crc >= 0) {
      const actual = crc32(data)
      if (actual !== header.crc) {
        return new FramePipeError(
          'ERR_CHECKSUM',
          `CRC-32 mismatch in frame seq ${meta?.seq} (${data.length} bytes): expected ${hex32(header.crc)}, actual ${hex32(actual)}`,
          { stage: this.stage },
        )
      }
    }
    let frame: Frame
    if (meta) {
      // Spelled out, not spread: every frame gets the same shape as the others, which keeps the stages after this fast.
      const { format, width, height, channels, seq, timestamp } = meta
      frame = { data, format, width, height, channels, seq, timestamp }
      if (this.maxClockSkew !== undefined) this.checkClock(frame)
    } else {
      frame = { data, format: sniffFormat(data), width: 0, height: 0, channels: 0, seq: this.nextSeq, timestamp: now() }
      this.nextSeq = (this.nextSeq + 1) >>> 0
    }
    if (this.peer !== undefined) frame.peer = this.peer
    if (pooled !== undefined) {
      const pool = this.pool!
      frame.release = () => pool.give(pooled)
    }
    this.reset()
    this.counters.frames++
    this.counters.bytes += data.length
    this.onFrame(frame)
    return undefined
  }

  /** A sender's clock must not name and rotate our files: a timestamp far from ours is replaced by the arrival time. */
  private checkClock(frame: Frame): void {
    const arrival = now()
    const sent = frame.timestamp
    frame.timestamp = saneTimestamp(sent, arrival, this.maxClockSkew!)
    if (frame.timestamp === sent) return
    this.counters.badTimestamps = (this.counters.badTimestamps ?? 0) + 1
    if (this.clockWarned) return
    this.clockWarned = true
    const off = Number.isFinite(sent) ? `${Math.round((sent - arrival) / 1000)} s from our clock` : `not a time (${sent})`
    this.onWarning?.(
      new FramePipeError(
        'ERR_BAD_FRAME',
        `${this.peer ? `peer ${this.peer}: ` : ''}frame seq ${frame.seq} carries a timestamp ${off}, more than maxClockSkew (${this.maxClockSkew} ms): replaced by the arrival time (further ones are counted in badTimestamps)`,
        { stage: this.stage },
      ),
    )
  }

  private reset(): void {
    this.headFilled = 0
    this.digits = ''
    this.skipLeft = 0
    this.header = undefined
    this.body = undefined
    this.pooled = undefined
    this.bodyFilled = 0
    this.seen = EMPTY
    this.seenLength = 0
    this.state = 'header'
  }

  /** After a Boundary: the next peer may speak another format, so auto looks again. */
  private nextPeer(): void {
    this.reset()
    this.clockWarned = false
    if (this.auto) {
      this.state = 'detect'
      this.format = undefined
      this.head = EMPTY
    }
  }

  private bad(message: string): FramePipeError {
    return new FramePipeError('ERR_BAD_HEADER', message, { stage: this.stage })
  }
}

/** The header bytes as text when every one is printable ASCII, else undefined. */
function printable(bytes: Buffer): string | undefined {
  for (const b of bytes) if (b < 0x20 || b > 0x7e) return undefined
  return bytes.toString('latin1')
}
