// Writing packets to byte streams: the pieces of a [header, payload] packet go
// out in one writev (cork/uncork) without being joined, and the caller learns
// whether the writable wants more.

import { Transform, type TransformCallback, type Writable } from 'node:stream'
import { FramePipeError } from './errors.js'
import { isBoundary, packetLength, type ByteChunk, type Packet } from './frame.js'
import { notBytes } from './checks.js'
import { newCounters, passOn, tagStage, type Framer, type StageContext, type Staged } from './stage.js'

/**
 * Write every piece of `packet` to `out` (a socket, a file stream, stdout).
 * `done` runs once the last piece has been handed on. Returns false when `out`
 * is above its highWaterMark: wait for 'drain' before writing more.
 */
export function writePacket(out: Writable, packet: Packet, done?: (err?: Error | null) => void): boolean {
  if (Buffer.isBuffer(packet)) return out.write(packet, done)
  // Empty pieces (a header before an empty payload) are skipped: they would cost a write each.
  let last = -1
  let pieces = 0
  for (let i = 0; i < packet.length; i++) {
    if (packet[i]!.length > 0) {
      last = i
      pieces++
    }
  }
  if (last < 0) {
    if (done) process.nextTick(done)
    return !out.writableNeedDrain
  }
  if (pieces === 1) return out.write(packet[last]!, done)
  out.cork()
  let ok = true
  for (let i = 0; i <= last; i++) {
    const piece = packet[i]!
    if (piece.length === 0) continue
    ok = out.write(piece, i === last ? done : undefined)
  }
  out.uncork()
  return ok
}

/**
 * A sink's input record as bytes: through the prefix fused into the sink
 * when there is one (see Framer in core/stage.ts), which makes each frame its
 * packet and refuses anything else in its own words; otherwise the record
 * itself, which must be bytes or a Boundary.
 */
export function bytesOf(record: unknown, framer: Framer | undefined, stage: string): ByteChunk | FramePipeError {
  if (framer) return framer(record)
  if (isBoundary(record)) return record
  return notBytes(stage, record) ?? (record as Packet)
}

export interface PacketWriterOptions {
  /** End `out` when the stream ends (default true); stdout is not ended. */
  end?: boolean
  /** Turn an error of `out` into the stage's one-line error. */
  describeError?: (err: Error) => Error
}

/**
 * A sink that writes packets into a byte Writable with backpressure: the
 * write callback is held until `out` drains. Boundary markers are skipped
 * (passed on, not written). Passes each packet on after writing it.
 */
export class PacketWriter extends Transform {
  private readonly out: Writable
  private readonly ctx: StageContext
  private readonly endOut: boolean
  private readonly describeError: (err: Error) => Error
  /** The write callback held until 'drain'. */
  private waiting: (() => void) | null = null
  /** We ended `out` ourselves: its 'close' is expected. */
  private ending = false
  /** Packets whose last piece `out` has not yet completed. */
  private unfinished = 0
  /** Set by _flush when `out` stays open: runs once nothing is unfinished. */
  private whenWritten: (() => void) | null = null

  constructor(out: Writable, ctx: StageContext, options: PacketWriterOptions = {}) {
    // Packets may be whole frames: hold few.
    super({ objectMode: true, highWaterMark: 2 })
    this.out = out
    this.ctx = ctx
    this.endOut = options.end ?? true
    this.describeError =
      options.describeError ?? ((err) => new FramePipeError('ERR_IO', `write failed: ${err.message}`, { stage: ctx.name, cause: err }))
    out.on('drain', this.onDrain)
    out.on('error', this.onError)
    out.on('close', this.onClose)
  }

  override _transform(chunk: ByteChunk, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (isBoundary(chunk)) {
      passOn(this, chunk)
      return callback()
    }
    const bad = notBytes(this.ctx.name, chunk)
    if (bad) return callback(bad)
    if (this.out.destroyed || this.out.writableEnded) {
      return callback(new FramePipeError('ERR_IO', 'the output was closed before the stream ended', { stage: this.ctx.name }))
    }
    this.unfinished++
    const ok = writePacket(this.out, chunk, this.onWritten)
    this.ctx.counters.frames++
    this.ctx.counters.bytes += packetLength(chunk)
    passOn(this, chunk)
    if (ok) callback()
    else this.waiting = () => callback()
  }

  override _flush(callback: TransformCallback): void {
    if (!this.endOut) {
      // Nothing marks the end on an open writable: wait until it has completed every write.
      if (this.unfinished === 0) return callback()
      this.whenWritten = () => callback()
      return
    }
    this.ending = true
    this.out.end(() => callback())
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.waiting = null
    this.whenWritten = null
    this.out.off('drain', this.onDrain)
    this.out.off('error', this.onError)
    this.out.off('close', this.onClose)
    callback(err)
  }

  private readonly onDrain = (): void => {
    const resume = this.waiting
    this.waiting = null
    resume?.()
  }

  private readonly onWritten = (): void => {
    if (--this.unfinished === 0 && this.whenWritten) {
      const done = this.whenWritten
      this.whenWritten = null
      done()
    }
  }

  private readonly onError = (err: Error): void => {
    this.destroy(this.describeError(err))
  }

  private readonly onClose = (): void => {
    // Closed under us (not by our own end()): anything held can never be written.
    if (!this.ending && !this.destroyed) {
      this.destroy(new FramePipeError('ERR_IO', 'the output was closed before the stream ended', { stage: this.ctx.name }))
    }
  }
}

/**
 * Write prefix's output (or any byte edge) into your own Writable, e.g. a
 * file stream or an HTTP response, respecting its backpressure. The returned
 * stream is a sink stage named 'writable' that can end a checked pipeline.
 */
export function toWritable(writable: Writable, options: PacketWriterOptions = {}): Staged<Transform> {
  const counters = newCounters()
  const stream = new PacketWriter(writable, { name: 'writable', counters }, options)
  return tagStage(stream, { name: 'writable', kind: 'sink', input: 'bytes', output: 'bytes', counters })
}
