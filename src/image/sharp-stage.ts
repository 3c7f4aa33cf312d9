// Shared machinery of the sharp-based stages (jpeg, png, webp, decode,
// resize): an ordered parallel transform, input checks and the small helpers
// that turn a Frame into a sharp pipeline and a sharp result into a Frame.
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
import sharp, { type OutputInfo, type Sharp } from 'sharp'
import { FramePipeError, type ErrorCode } from '../core/errors.js'
import { expectFrame } from '../core/checks.js'
import {   type Frame, type FrameFormat } from '../core/frame.js'
import type { OptionSpec } from '../core/spec.js'
import type { StageContext } from '../core/stage.js'

/** Work on one frame: the output frame, or null to drop it (the stage counts the drop). */
export type FrameWork = (frame: Frame) => Promise<Frame | null>

interface Slot {
  done: boolean
  frame: Frame | null
}

/**
 * Runs `work` on up to `concurrency` frames at once and emits results in
 * input order. At most `concurrency` frames are in flight or waiting for an
 * earlier one to finish, plus the readable buffer (`concurrency` frames) and
 * one frame in the writable buffer: a slow consumer holds the writer back
 * instead of letting frames pile up. The first failed frame destroys the
 * stage with its error; results still in flight after that are discarded.
 */
export class OrderedParallel extends Transform {
  private readonly queue: Slot[] = []
  private pendingWrite: TransformCallback | null = null
  private pendingFlush: TransformCallback | null = null

  constructor(
    private readonly ctx: StageContext,
    private readonly concurrency: number,
    private readonly work: FrameWork,
  ) {
    super({ objectMode: true, readableHighWaterMark: concurrency, writableHighWaterMark: 1 })
  }

  override _transform(chunk: unknown, _enc: BufferEncoding, callback: TransformCallback): void {
    const bad = checkFrame(this.ctx.name, chunk)
    if (bad) return callback(bad)
    const slot: Slot = { done: false, frame: null }
    this.queue.push(slot)
    // A synchronous throw in `work` becomes a rejection like any other.
    Promise.resolve(chunk as Frame).then(this.work).then(
      (frame) => {
        slot.done = true
        slot.frame = frame
        this.drain()
      },
      (err: unknown) => {
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
      const { frame } = this.queue.shift()!
      if (frame === null) {
        this.ctx.counters.drops++
        continue
      }
      this.ctx.counters.frames++
      this.ctx.counters.bytes += frame.data.length
      this.push(frame)
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

/** The `concurrency` option shared by the sharp stages. */
export const CONCURRENCY_OPTION: OptionSpec = {
  type: 'int', min: 1, max: 16, default: 2,
  doc: 'Frames encoded at once (each on a libuv thread); output order is input order. Up to this many frames wait inside the stage',
}

/** Why `chunk` cannot be processed, or undefined when it is a usable Frame. */
export function checkFrame(stage: string, chunk: unknown): FramePipeError | undefined {
  const frame = expectFrame(stage, chunk)
  if (frame instanceof FramePipeError) return frame
  if (frame.format !== 'raw') return undefined
  const { width, height, channels, data, seq } = frame
  if (!(width > 0 && height > 0 && Number.isInteger(width) && Number.isInteger(height))) {
    return new FramePipeError('ERR_BAD_FRAME', `raw frame ${seq} has dimensions ${width}x${height}; raw frames need a width and height`, { stage })
  }
  if (!(channels >= 1 && channels <= 4 && Number.isInteger(channels))) {
    return new FramePipeError('ERR_BAD_FRAME', `raw frame ${seq} has ${channels} channels; raw frames need 1 to 4`, { stage })
  }
  const expected = width * height * channels
  if (data.length !== expected) {
    return new FramePipeError('ERR_BAD_FRAME', `raw frame ${seq} is ${width}x${height}x${channels} = ${expected} bytes but carries ${data.length} bytes`, { stage })
  }
  return undefined
}

/** Default of `maxPixels`: 8K (7680x4320 = 33 Mpx) with room, against sharp's own limit of 268 Mpx (about 800 MB of RGB). */
export const MAX_PIXELS_DEFAULT = 50_000_000

/** The `maxPixels` option of the stages that decode encoded input (jpeg/png/webp when transcoding, resize; decode words its own doc). */
export const MAX_PIXELS_OPTION: OptionSpec = {
  type: 'int', min: 1, default: MAX_PIXELS_DEFAULT,
  doc: 'Largest image (width×height) decoded from encoded input; a bigger one is an error (ERR_DECODE), not an allocation',
}

/**
 * A sharp pipeline reading one frame: raw pixels described by the frame, or
 * an encoded image sharp recognises itself. An encoded image whose header
 * announces more than `maxPixels` pixels fails before anything is decoded
 * (a corrupt or hostile header must not allocate hundreds of MB). Raw frames
 * are already in memory, so the bound does not apply to them.
 */
export function sharpOf(frame: Frame, maxPixels: number): Sharp {
  if (frame.format === 'raw') {
    return sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: frame.channels as 1 | 2 | 3 | 4 } })
  }
  return sharp(frame.data, { limitInputPixels: maxPixels })
}

/** The output frame: new pixels or bytes, dimensions from sharp, seq and timestamp of the input. */
export function frameFrom(input: Frame, data: Buffer, info: OutputInfo, format: FrameFormat): Frame {
  return { data, format, width: info.width, height: info.height, channels: info.channels, seq: input.seq, timestamp: input.timestamp }
}

/**
 * Wrap a sharp failure as one line naming stage, frame and sharp's reason
 * (libvips repeats its warnings over several lines; the first says it).
 */
export function sharpError(code: ErrorCode, stage: string, verb: string, frame: Frame, err: unknown): FramePipeError {
  const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0]
  return new FramePipeError(code, `frame ${frame.seq} (${frame.data.length} bytes, format ${frame.format}) does not ${verb}: ${reason}`, { stage, cause: err })
}

/**
 * The error for a frame sharp failed on: ERR_DECODE with the image's
 * dimensions when an encoded frame is over `maxPixels`, otherwise
 * sharpError(code, …).
 */
export async function sharpFailure(code: ErrorCode, stage: string, verb: string, frame: Frame, err: unknown, maxPixels: number): Promise<FramePipeError> {
  if (frame.format === 'raw' || !/exceeds pixel limit/i.test(err instanceof Error ? err.message : String(err))) {
    return sharpError(code, stage, verb, frame, err)
  }
  // Read the header again (no pixels) to say how big the image claims to be.
  const size = await sharp(frame.data, { limitInputPixels: false }).metadata().then(
    ({ width, height }) => `is ${width}x${height} = ${width * height} pixels`,
    // It was readable a moment ago; if not now, the limit is still what sharp reported.
    () => 'has more pixels',
  )
  return new FramePipeError('ERR_DECODE', `frame ${frame.seq} (${frame.data.length} bytes, format ${frame.format}) ${size}, more than maxPixels (${maxPixels})`, { stage, cause: err })
}
