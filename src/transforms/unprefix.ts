// Bytes back into frames: the stream face of FrameParser (src/wire/length-parser.ts),
// which holds the two-state, zero-copy parser and header=auto's detection.

import { Transform, type TransformCallback } from 'node:stream'
import { FramePipeError } from '../core/errors.js'
import { DEFAULT_CLOCK_SKEW, handOn, isBoundary, isPeerStart, type Boundary, type Frame } from '../core/frame.js'
import { BodyPool } from '../core/body-pool.js'
import { notBytes } from '../core/checks.js'
import { stageWarnings } from '../core/warnings.js'
import { FrameParser } from '../wire/length-parser.js'
import { UNPREFIX_HEADERS, type UnprefixHeader } from '../wire/headers.js'
import { defineStage } from '../core/spec.js'
import { DEFRAMER, stageFactory, type Deframer, type StageContext } from '../core/stage.js'
import type { FramePipeError as UnprefixWarning } from '../core/errors.js'

/** What a fault in a peer's bytes does: end that peer (when the byte source can), or the pipeline. */
export const UNPREFIX_ON_ERROR = ['drop', 'fail'] as const
export type UnprefixOnError = (typeof UNPREFIX_ON_ERROR)[number]

export interface UnprefixOptions {
  /** Length header: u32be (seed 003), u32le, ii (seed 001), i64le (seed 000b), native (frame-pipe, carries seq/timestamp/size/format), ascii (seed 002: decimal digits, ended by the payload's first byte, which must not be a digit), auto (recognised from each peer's first bytes: native by its magic, the others only before JPEG/PNG/WebP payloads; an 'info' event names it) (default u32be) */
  header?: UnprefixHeader
  /** Largest frame accepted; a header announcing more is a fault of the peer, found before any memory is set aside for the body (bytes; default 64MiB) */
  maxFrameBytes?: number
  /** A fault in a peer's bytes (bad header, CRC mismatch, a frame over maxFrameBytes, bytes header=auto cannot read): drop = when the byte source can end that peer alone (tcp-server, tcp-client reconnect=true), hang up on it, drop the rest of its bytes, count it in badPeers and go on with the next peer; fail = end the pipeline with the error (default drop) */
  onError?: UnprefixOnError
  /** header=native: a sender's timestamp further than this from our clock (or not a number) is replaced by the arrival time and counted in badTimestamps, so a peer's clock never names or rotates recordings; 0 = take timestamps as sent (milliseconds; default 3600s) */
  maxClockSkew?: number
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
      doc: 'Largest frame accepted; a header announcing more is a fault of the peer, found before any memory is set aside for the body',
    },
    onError: {
      type: 'enum',
      values: UNPREFIX_ON_ERROR,
      default: 'drop',
      doc: "A fault in a peer's bytes (bad header, CRC mismatch, a frame over maxFrameBytes, bytes header=auto cannot read): drop = when the byte source can end that peer alone (tcp-server, tcp-client reconnect=true), hang up on it, drop the rest of its bytes, count it in badPeers and go on with the next peer; fail = end the pipeline with the error",
    },
    maxClockSkew: {
      type: 'duration',
      min: 0,
      default: DEFAULT_CLOCK_SKEW,
      doc: "header=native: a sender's timestamp further than this from our clock (or not a number) is replaced by the arrival time and counted in badTimestamps, so a peer's clock never names or rotates recordings; 0 = take timestamps as sent",
    },
  },
  faults:
    'a bad header, CRC mismatch, oversize frame or unreadable bytes end that peer only when the byte source marks its peers (tcp-server; tcp-client reconnect=true): the connection is closed, counted in badPeers, one rate-limited warning, the next peer is served; from other sources (stdin, files, tcp-client without reconnect) or with onError=fail it ends the pipeline (exit 1)',
  create(o, ctx) {
    return new Unprefixer(o, ctx)
  },
})

export const unprefix = stageFactory<UnprefixOptions, Transform, UnprefixEvents>(spec)

/** Frames may be up to maxFrameBytes each: queue few on the readable side. */
const BUFFERED_FRAMES = 2

export class Unprefixer extends Transform {
  private readonly ctx: StageContext
  private readonly parser: FrameParser
  private readonly onError: UnprefixOnError
  private readonly warn: ReturnType<typeof stageWarnings>
  /** The current peer's start marker, when its source can hang up on it alone. */
  private start: Boundary | undefined
  /** The current peer was cut off for a fault: its bytes up to its end Boundary are dropped. */
  private discarding = false

  constructor(o: Required<UnprefixOptions>, ctx: StageContext) {
    super({ objectMode: true, readableHighWaterMark: BUFFERED_FRAMES })
    this.ctx = ctx
    this.onError = o.onError
    this.warn = stageWarnings(this, ctx.name)
    this.parser = new FrameParser({
      header: o.header,
      maxFrameBytes: o.maxFrameBytes,
      maxClockSkew: o.maxClockSkew > 0 ? o.maxClockSkew : undefined,
      stage: ctx.name,
      counters: ctx.counters,
      // Frames go on through handOn (here and in a fused source's outlet), as the pool requires.
      pool: new BodyPool(),
      onFrame: (frame: Frame) => {
        this.out(frame)
      },
      onWarning: (err) => {
        // A peer that cuts its frames, or whose clock is off, on every connection must not flood the log.
        this.warn(withoutStage(err, ctx.name), err.code)
      },
      onInfo: (message) => {
        this.emit('info', { message })
      },
    })
  }

  override _transform(chunk: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    callback(this.deframe(chunk))
  }

  /**
   * One record of the byte stream (bytes, a packet, a Boundary): frames go to
   * `out`; a fault ends its peer or, returned, the pipeline.
   */
  private deframe(chunk: unknown): FramePipeError | undefined {
    if (Buffer.isBuffer(chunk)) {
      // The one per-chunk cost of per-peer faults: this branch.
      if (this.discarding) return undefined
      const err = this.parser.feed(chunk)
      return err && this.fault(err)
    } else if (chunk instanceof Uint8Array) {
      if (this.discarding) return undefined
      return this.fault(this.parser.feed(asBuffer(chunk)))
    } else if (Array.isArray(chunk)) {
      for (const piece of chunk as unknown[]) {
        if (!(piece instanceof Uint8Array)) return this.badInput(piece, ' inside a packet')
        if (this.discarding) continue
        const err = this.fault(this.parser.feed(asBuffer(piece)))
        if (err) return err
      }
      return undefined
    } else if (isBoundary(chunk)) {
      return this.boundary(chunk)
    }
    return this.badInput(chunk, '')
  }

  /** Where frames go: pushed, or to the byte source that fused this stage (DEFRAMER). */
  private out = (frame: Frame): void => {
    this.push(handOn(this, frame))
  }

  /**
   * Right after a byte source that feeds a parser itself (tcp-server),
   * pipeline() hands it this instead of running the stream (see
   * core/pipeline.ts): the same parsing, faults, counters and events.
   */
  readonly [DEFRAMER]: Deframer = {
    buffered: BUFFERED_FRAMES,
    feed: (record) => this.deframe(record),
    end: () => this.parser.end(),
    attach: (out) => {
      this.out = out
    },
  }

  private boundary(b: Boundary): FramePipeError | undefined {
    if (b.reason === 'start') {
      // Bytes of a previous peer left without an end marker (a hand-made source): dropped as at an end.
      const err = this.discarding || this.parser.idle() ? undefined : this.parser.boundary({ ...b, peer: this.parser.peer ?? b.peer })
      this.discarding = false
      this.start = isPeerStart(b) && this.onError === 'drop' ? b : undefined
      this.parser.peer = b.peer
      return err
    }
    // Auto-detection decides on a peer's last bytes here: a fault it finds is that peer's too.
    const err = this.discarding ? undefined : this.fault(this.parser.boundary(b))
    this.discarding = false
    this.start = undefined
    this.parser.peer = undefined
    return err
  }

  /**
   * A fault in the current peer's bytes: when its source can end that peer
   * alone, hang up on it, count and warn, and drop the rest of its bytes;
   * otherwise the fault ends the pipeline.
   */
  private fault(err: FramePipeError | undefined): FramePipeError | undefined {
    if (!err) return undefined
    const start = this.start
    if (!start) return err
    // Created at the first: the status line shows it once there is one.
    this.ctx.counters.badPeers = (this.ctx.counters.badPeers ?? 0) + 1
    this.discarding = true
    this.parser.discardPeer()
    const why = withoutStage(err, this.ctx.name)
    start.hangUp!(`${this.ctx.name}: ${why}`)
    this.warn(`peer ${start.peer} cut off: ${why}`, err.code, 'peer')
    return undefined
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

/** An error's message without the `stage: ` it starts with. */
function withoutStage(err: Error, stage: string): string {
  return err.message.startsWith(`${stage}: `) ? err.message.slice(stage.length + 2) : err.message
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}
