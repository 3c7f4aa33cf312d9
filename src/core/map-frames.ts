// Write your own 1:1 stage as a function: draw an overlay, filter frames,
// fix up metadata. The function gets one frame and returns the frame to pass
// on (the same object or a new one), or null/undefined to drop it.
//
// Built on through2's async form, which routes a rejection (or a synchronous
// throw) into the transform callback, so a failing function becomes a
// pipeline error instead of an uncaught exception or a hang, and the next
// frame is only taken once the previous one is done (order is kept, one frame
// in flight).
//
// Typing: through2 5 is typed against readable-stream 4, which ships no types
// here, so its factories return `any`. We type the result as Node's Transform.
// That is sound because readable-stream 4 is Node 18's own stream code
// (same Transform API: push, destroy(err), errored, readableFlowing, async
// iteration, highWaterMarks on both sides), and Node's `stream/promises`
// pipeline and `finished` duck-type on `_readableState`/`_writableState`,
// so errors propagate and destroy every stage, and backpressure holds (checked
// in test/map-frames.test.ts). The one difference: `instanceof
// stream.Transform` is false, which nothing here relies on.
//
// through2 recognises the async form by `fn instanceof AsyncFunction`, so the
// wrapper below must stay a native `async` function (tsconfig targets ES2022);
// down-levelled to a generator it would be called as a classic transform and
// never call back.

import type { Transform } from 'node:stream'
import { objectTransform } from 'through2'
import { FramePipeError } from './errors.js'
import { isFrame, type Frame } from './frame.js'
import { newCounters, tagStage, type Staged } from './stage.js'
import { describeRecord, expectFrame } from './checks.js'

/** What a map function returns: the frame to pass on, or null/undefined to drop it. */
export type MapResult = Frame | null | undefined
export type MapFunction = (frame: Frame) => MapResult | Promise<MapResult>

export interface MapFramesOptions {
  /** Stage name, shown in errors and on the status line. Default 'map'. */
  name?: string
  /** Frames queued on each side of the stage. Default 2: frames can be megabytes each. */
  highWaterMark?: number
}

/**
 * A transform stage (frames in, frames out) that runs `fn` on each frame, one
 * at a time and in order. Returning null or undefined drops the frame and
 * counts it in `drops`. A throw or rejection stops the pipeline with a
 * FramePipeError whose message starts with the stage name (other errors are
 * wrapped as ERR_BAD_FRAME with the original as `cause`).
 */
export function mapFrames(fn: MapFunction, options: MapFramesOptions = {}): Staged<Transform> {
  const name = options.name ?? 'map'
  const highWaterMark = options.highWaterMark ?? 2
  if (typeof fn !== 'function') {
    throw new FramePipeError('ERR_INVALID_OPTION', `expected a function for fn but received ${describeRecord(fn)}`, { stage: name })
  }
  if (!Number.isInteger(highWaterMark) || highWaterMark < 1) {
    throw new FramePipeError(
      'ERR_INVALID_OPTION',
      `expected integer >= 1 for highWaterMark but received ${describeRecord(highWaterMark)}`,
      { stage: name },
    )
  }
  const counters = newCounters()

  const stream: Transform = objectTransform({ highWaterMark }, async (record: unknown): Promise<Frame | undefined> => {
    const chunk = expectFrame(name, record)
    if (chunk instanceof FramePipeError) throw chunk
    // The function may keep the frame's pixels: they must not go back to a pool (see Frame.release).
    chunk.release = undefined
    let out: MapResult
    try {
      out = await fn(chunk)
    } catch (err) {
      throw asStageError(name, err)
    }
    if (out === null || out === undefined) {
      counters.drops++
      return undefined
    }
    if (!isFrame(out)) {
      throw new FramePipeError(
        'ERR_BAD_FRAME',
        `the function returned ${describeRecord(out)} for frame ${chunk.seq}; return a Frame, or null to drop it`,
        { stage: name },
      )
    }
    counters.frames++
    counters.bytes += out.data.length
    return out
  })
  return tagStage(stream, { name, kind: 'transform', input: 'frames', output: 'frames', counters })
}

/** The error the pipeline sees: always a FramePipeError whose message starts with the stage name. */
function asStageError(name: string, err: unknown): FramePipeError {
  if (err instanceof FramePipeError) {
    if (err.stage !== undefined) return err
    return new FramePipeError(err.code, err.message, { stage: name, cause: err })
  }
  const message = err instanceof Error ? err.message : String(err)
  return new FramePipeError('ERR_BAD_FRAME', message, { stage: name, cause: err })
}
