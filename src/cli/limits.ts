// `--frames N` and `--duration T` for any pipeline: both end it through the
// clean stop path (stopPipeline: sources stop, what is in flight drains, sinks
// flush), as the first Ctrl-C does, and the command exits 0.
//
// --frames is exact: a limiter goes on the LAST edge of the pipeline that
// carries frames (before the sink for `… ! jpeg ! files`, between unprefix and
// files for `tcp-server ! unprefix ! files`, before prefix for
// `… ! jpeg ! prefix ! tcp-server`). It lets N frames through, then stops the
// pipeline and lets nothing more through: frames still on their way from the
// source are dropped there. So the stage after it receives exactly N frames.
// A pipeline that carries only bytes has no frames to count: refused.

import { Transform, type Stream, type TransformCallback } from 'node:stream'
import { FramePipeError } from '../core/errors.js'
import { handOn, isFrame } from '../core/frame.js'
import { stopPipeline } from '../core/pipeline.js'
import { stageInfo, tagStage, type Staged } from '../core/stage.js'
import type { PortType } from '../core/spec.js'

/** Passes `limit` frames, then calls `reached` once and drops everything after. */
export class FrameLimit extends Transform {
  private readonly limit: number
  private readonly reached: () => void
  private passed = 0

  constructor(limit: number, reached: () => void) {
    super({ objectMode: true, highWaterMark: 1 })
    this.limit = limit
    this.reached = reached
  }

  override _transform(chunk: unknown, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.passed >= this.limit) return cb()
    if (isFrame(chunk)) this.passed++
    cb(null, isFrame(chunk) ? handOn(this, chunk) : chunk)
    if (this.passed === this.limit && isFrame(chunk)) this.reached()
  }
}

/**
 * Where a frame limiter goes, from the stages' output ports (an 'any' stage
 * passes on what it takes): the index after the last stage whose output is
 * frames, or -1 when no edge carries frames.
 */
export function limiterIndex(outputs: readonly (PortType | null | undefined)[]): number {
  let flowing: PortType | null = null
  let at = -1
  for (let i = 0; i < outputs.length - 1; i++) {
    const out = outputs[i] ?? 'any'
    flowing = out === 'any' ? (flowing ?? 'any') : out
    if (flowing === 'frames') at = i + 1
  }
  return at
}

/** Refuse --frames on a pipeline with nothing to count, before any stage is created. */
export function checkFrameLimit(outputs: readonly (PortType | null | undefined)[]): void {
  if (limiterIndex(outputs) < 0) {
    throw new FramePipeError(
      'ERR_INVALID_OPTION',
      `--frames counts frames, and this pipeline carries only bytes: cut them into frames with unprefix, or use --duration`,
    )
  }
}

export interface Limits {
  /** Frames to let through; undefined = no limit. */
  frames?: number
  /** Milliseconds before the pipeline is stopped; undefined = no limit. */
  duration?: number
}

/**
 * The streams to run: `stages` with a limiter inserted for `frames`, and a
 * `start()` that arms the duration timer; `dispose()` clears it. `say` logs
 * why the pipeline is stopping.
 */
export function applyLimits(
  stages: Staged<Stream>[],
  limits: Limits,
  say: (line: string) => void,
): { streams: Stream[]; start(): void; dispose(): void } {
  let stopped = false
  const stop = (why: string): void => {
    if (stopped) return
    stopped = true
    say(`frame-pipe: ${why}: stopping, flushing sinks`)
    stopPipeline(stages)
  }
  const streams: Stream[] = [...stages]
  if (limits.frames !== undefined) {
    const outputs = stages.map((s) => stageInfo(s)?.output)
    checkFrameLimit(outputs)
    const at = limiterIndex(outputs)
    const n = limits.frames
    const limiter = tagStage(new FrameLimit(n, () => stop(`${n} frame${n === 1 ? '' : 's'} (--frames)`)), {
      name: 'frames-limit',
      kind: 'transform',
      input: 'frames',
      output: 'frames',
    })
    streams.splice(at, 0, limiter)
  }
  let timer: NodeJS.Timeout | undefined
  return {
    streams,
    start() {
      if (limits.frames === 0) stop('0 frames (--frames)')
      const ms = limits.duration
      if (ms === undefined) return
      timer = setTimeout(() => stop(`${formatSeconds(ms)} (--duration)`), ms)
      // The pipeline keeps the process alive; this timer alone must not.
      timer.unref()
    },
    dispose() {
      clearTimeout(timer)
    },
  }
}

function formatSeconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${ms / 1000} s`
}
