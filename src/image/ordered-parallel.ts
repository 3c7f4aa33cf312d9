// The ordered parallel transform behind the sharp-based stages (jpeg, png,
// webp, decode, resize): up to `concurrency` frames in work at once (sharp
// runs each on a libuv thread), results in input order, backpressure kept.
//
// Why not mississippi.parallel (parallel-transform 1.x)? Checked with Node 20's
// `stream/promises` pipeline: errors do reject the pipeline and it ends
// properly, but it is built on readable-stream 2, and
//  - its destroy() is old-style: it ignores the error argument, only emits
//    'close' and leaves `destroyed` false, so `stage.destroy(err)` reports
//    nothing and a torn-down stage still looks alive;
//  - it is not async-iterable (`for await (const f of jpeg())` throws);
//  - it pushes finished results without looking at push()'s answer and has a
//    highWaterMark of max(n, 16) on each side: with a slow consumer about 30
//    frames sat inside one stage with concurrency 2 (trap 4: 16 multi-MB frames).
// The class below is the smallest replacement on Node's own Transform.

import { Transform, type TransformCallback } from 'node:stream'
import { handOn, type Frame } from '../core/frame.js'
import type { StageContext } from '../core/stage.js'
import { FramePipeError } from '../core/errors.js'
import { fromPeer, rejectFrame } from '../core/checks.js'
import { stageWarnings } from '../core/warnings.js'
import { checkFrame } from './sharp.js'

/** Work on one frame: the output frame, or null to drop it (the stage counts the drop). */
export type FrameWork = (frame: Frame) => Promise<Frame | null>

interface Slot {
  done: boolean
  frame: Frame | null
  /** Dropped and counted already (a peer's frame that failed). */
  counted?: boolean
}

/**
 * Runs `work` on up to `concurrency` frames at once and emits results in
 * input order. At most `concurrency` frames are in flight or waiting for an
 * earlier one to finish, plus the readable buffer (`concurrency` frames) and
 * one frame in the writable buffer: a slow consumer holds the writer back
 * instead of letting frames pile up. The first failed frame destroys the
 * stage with its error; results still in flight after that are discarded.
 * A network peer's frame that fails (bytes sharp cannot read) is only
 * dropped, counted in drops and rejected, with a rate-limited warning.
 */
export class OrderedParallel extends Transform {
  private readonly queue: Slot[] = []
  private pendingWrite: TransformCallback | null = null
  private pendingFlush: TransformCallback | null = null
  private readonly warn: ReturnType<typeof stageWarnings>

  constructor(
    private readonly ctx: StageContext,
    private readonly concurrency: number,
    private readonly work: FrameWork,
  ) {
    super({ objectMode: true, readableHighWaterMark: concurrency, writableHighWaterMark: 1 })
    this.warn = stageWarnings(this, ctx.name)
  }

  override _transform(chunk: unknown, _enc: BufferEncoding, callback: TransformCallback): void {
    const bad = checkFrame(this.ctx.name, chunk)
    if (bad) return callback(bad)
    const slot: Slot = { done: false, frame: null }
    this.queue.push(slot)
    // A synchronous throw in `work` becomes a rejection like any other.
    Promise.resolve(chunk as Frame)
      .then(this.work)
      .then(
        (frame) => {
          slot.done = true
          slot.frame = frame
          this.drain()
        },
        (err: unknown) => {
          const frame = chunk as Frame
          if (fromPeer(frame) && err instanceof FramePipeError && !this.destroyed) {
            // A peer's bad bytes cost that frame, not the stage.
            rejectFrame(this.ctx.counters, this.warn, frame, err)
            slot.done = true
            slot.counted = true
            this.drain()
            return
          }
          // After the first error (or a teardown from elsewhere) the stage is
          // destroyed and its outcome is decided; later failures of frames that
          // were already in flight have nobody left to tell.
          if (!this.destroyed) this.destroy(err as Error)
        },
      )
    // Results are pushed later, from promise callbacks, so Transform cannot see
    // them when it decides whether to hold the write callback: this stage holds
    // it itself, until fewer than `concurrency` frames are in flight and the
    // reader has room (or asks for more: see _read).
    this.pendingWrite = callback
    this.releaseWrite(false)
  }

  override _read(size: number): void {
    // The reader asks for more: its buffer is about to drop below the mark,
    // even if it is not below yet (Readable calls _read before it takes the chunk).
    // Release first: Transform may park the released callback until a _read,
    // and super._read is that _read.
    this.releaseWrite(true)
    super._read(size)
  }

  override _flush(callback: TransformCallback): void {
    if (this.queue.length === 0) return callback()
    this.pendingFlush = callback
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // sharp work cannot be cancelled; drop the references so its results are ignored.
    this.queue.length = 0
    this.pendingWrite = null
    this.pendingFlush = null
    callback(err)
  }

  private drain(): void {
    if (this.destroyed) return
    while (this.queue.length > 0 && this.queue[0]!.done) {
      const { frame, counted } = this.queue.shift()!
      if (frame === null) {
        if (!counted) this.ctx.counters.drops++
        continue
      }
      this.ctx.counters.frames++
      this.ctx.counters.bytes += frame.data.length
      this.push(handOn(this, frame))
    }
    this.releaseWrite(false)
    if (this.pendingFlush && this.queue.length === 0) {
      const cb = this.pendingFlush
      this.pendingFlush = null
      cb()
    }
  }

  /** Take the next frame when fewer than `concurrency` are in flight and the readable side has room (or the reader asked). */
  private releaseWrite(readerAsked: boolean): void {
    if (!this.pendingWrite || this.queue.length >= this.concurrency) return
    if (!readerAsked && this.readableLength >= this.readableHighWaterMark) return
    const cb = this.pendingWrite
    this.pendingWrite = null
    cb()
  }
}

/** Build the ordered parallel stage of a sharp-based transform. */
export function sharpStage(ctx: StageContext, concurrency: number, work: FrameWork): Transform {
  return new OrderedParallel(ctx, concurrency, work)
}
