// Cap the frame rate by keeping the latest frame: a viewer wants the newest
// picture, not a queue of old ones. Input is never held back; frames that
// arrive faster than the cap replace the pending one and are counted as drops.

import { Duplex } from 'node:stream'
import { handOn, isFrame, type Frame } from '../core/frame.js'
import { defineStage } from '../core/spec.js'
import { stageFactory, type StageContext } from '../core/stage.js'

export interface RateOptions {
  /** At most one frame per 1/fps slot. One frame is kept pending: a newer one replaces it (drop, counted), also while downstream is slow, so the frame sent is always the newest; the pending frame is sent at the end (default 10) */
  fps?: number
}

export const spec = defineStage<RateOptions, Duplex>({
  name: 'rate',
  kind: 'transform',
  input: 'frames',
  output: 'frames',
  description: 'Limit the frame rate, keeping the latest frame and dropping the ones in between',
  options: {
    fps: {
      type: 'number',
      min: 0.001,
      default: 10,
      doc: 'At most one frame per 1/fps slot. One frame is kept pending: a newer one replaces it (drop, counted), also while downstream is slow, so the frame sent is always the newest; the pending frame is sent at the end',
    },
  },
  create(o, ctx) {
    return new RateLimiter(o, ctx)
  },
})

export const rate = stageFactory(spec)

class RateLimiter extends Duplex {
  private readonly ctx: StageContext
  private readonly interval: number
  /** performance.now() of the next free slot. */
  private nextSlot = -Infinity
  private pending: Frame | undefined
  private timer: NodeJS.Timeout | undefined
  /** push() said the readable buffer is full: wait for _read. */
  private blocked = false

  constructor(o: Required<RateOptions>, ctx: StageContext) {
    super({ objectMode: true, highWaterMark: 1 })
    this.ctx = ctx
    this.interval = 1000 / o.fps
  }

  override _write(frame: Frame, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.pending) this.ctx.counters.drops++
    this.pending = frame
    this.tryEmit()
    // Always accept at once: holding the callback would make upstream wait,
    // and the frame we then send would be older than the newest available.
    cb()
  }

  override _read(): void {
    this.blocked = false
    this.tryEmit()
  }

  private tryEmit(): void {
    if (!this.pending || this.blocked || this.destroyed) return
    const t = performance.now()
    if (t >= this.nextSlot) {
      const slot = this.nextSlot
      // Within a slot of the grid: stay on it (a steady cadence, no drift from
      // timer lateness); further behind (idle, or blocked): restart at now.
      this.nextSlot = t - slot < this.interval ? slot + this.interval : t + this.interval
      this.send()
    } else if (!this.timer) {
      this.timer = setTimeout(
        () => {
          this.timer = undefined
          this.tryEmit()
        },
        Math.max(1, Math.ceil(this.nextSlot - t)),
      )
    }
  }

  private send(): void {
    const frame = this.pending!
    this.pending = undefined
    this.ctx.counters.frames++
    this.ctx.counters.bytes += isFrame(frame) ? frame.data.length : 0
    if (!this.push(isFrame(frame) ? handOn(this, frame) : frame)) this.blocked = true
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.clearTimer()
    // The newest frame is not lost at the end, even if its slot has not come.
    if (this.pending) this.send()
    this.push(null)
    cb()
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.clearTimer()
    this.pending = undefined
    cb(err)
  }
}
