// Pacing for sources: an absolute schedule (frame n is due at start + n/fps,
// so timer lateness never accumulates into drift) and a Readable base that
// produces one frame per _read, so a slow consumer slows the source instead of
// piling frames up.

import { Readable } from 'node:stream'
import type { Frame } from './frame.js'
import type { StageContext } from './stage.js'

export class Pacer {
  /** Milliseconds between frames; 0 means no pacing. */
  readonly interval: number
  private start = -1
  private n = 0

  constructor(fps: number) {
    this.interval = fps > 0 ? 1000 / fps : 0
  }

  /**
   * Milliseconds until the next frame is due (0: now). When more than one
   * frame behind (a slow consumer, a blocked event loop), the schedule is
   * moved to now: we catch up by at most one frame instead of bursting.
   */
  wait(): number {
    if (this.interval === 0) return 0
    const t = performance.now()
    if (this.start < 0) {
      this.start = t
      return 0
    }
    const due = this.start + this.n * this.interval
    if (t - due > this.interval) {
      this.start = t - this.n * this.interval
      return 0
    }
    return Math.max(0, due - t)
  }

  /** Count one frame produced. */
  tick(): void {
    this.n++
  }
}

type State = 'idle' | 'waiting' | 'producing' | 'ended'

/**
 * An unpaced source lets the event loop turn at least this often (ms), not
 * after every frame: relaying 8,000 frames of a 47 KB JPEG over loopback TCP,
 * the sender's send time was a median 410 ms against 432 ms with a turn per
 * frame (8 alternating runs), and other stages' I/O still waits no longer
 * than this.
 */
const YIELD_MS = 2

/**
 * A source that makes one frame each time the consumer asks, at most `fps`
 * per second. Subclasses implement `produce()` and `exhausted()`; `stop()`
 * ends the stream after the frame being produced, if any.
 */
export abstract class PacedSource extends Readable {
  protected readonly ctx: StageContext
  private readonly pacer: Pacer
  private state: State = 'idle'
  private stopping = false
  private timer: NodeJS.Timeout | undefined
  private immediate: NodeJS.Immediate | undefined
  /** performance.now() when _read last let the event loop turn (setImmediate). */
  private lastYield = -Infinity

  constructor(fps: number, ctx: StageContext) {
    // One frame buffered: frames can be megabytes, and a live source should
    // not run ahead of its consumer.
    super({ objectMode: true, highWaterMark: 1 })
    this.ctx = ctx
    this.pacer = new Pacer(fps)
  }

  /** The next frame; null ends the stream. May be async. Errors destroy the stream. */
  protected abstract produce(): Frame | null | Promise<Frame | null>

  /** True when there is nothing more to produce (checked before waiting for the next slot). */
  protected abstract exhausted(): boolean

  /** End cleanly after the frame in progress (if any); what is buffered still drains. */
  stop(): void {
    if (this.destroyed) return
    this.stopping = true
    if (this.state !== 'producing') this.finish()
  }

  override _read(): void {
    if (this.state !== 'idle') return
    if (this.stopping || this.exhausted()) {
      this.finish()
      return
    }
    this.state = 'waiting'
    const wait = this.pacer.wait()
    if (wait > 0) {
      this.timer = setTimeout(() => this.fire(), wait)
      return
    }
    const t = performance.now()
    if (t - this.lastYield < YIELD_MS) this.fire()
    else {
      // Due now, but the event loop has not had a turn for YIELD_MS: give
      // timers and I/O (a stop() from a signal handler, a socket's drain) theirs.
      this.lastYield = t
      this.immediate = setImmediate(() => this.fire())
    }
  }

  private fire(): void {
    this.timer = undefined
    this.immediate = undefined
    if (this.state !== 'waiting') return
    this.state = 'producing'
    this.pacer.tick()
    let result: Frame | null | Promise<Frame | null>
    try {
      result = this.produce()
    } catch (err) {
      this.destroy(err as Error)
      return
    }
    if (result instanceof Promise)
      result.then(
        (frame) => this.deliver(frame),
        (err: Error) => this.destroy(err),
      )
    else this.deliver(result)
  }

  private deliver(frame: Frame | null): void {
    if (this.destroyed || this.state === 'ended') return
    if (frame === null) {
      this.finish()
      return
    }
    this.state = 'idle'
    this.ctx.counters.frames++
    this.ctx.counters.bytes += frame.data.length
    this.push(frame)
    if (this.stopping) this.finish()
  }

  private finish(): void {
    if (this.state === 'ended' || this.destroyed) return
    this.clearTimers()
    this.state = 'ended'
    this.push(null)
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer)
    if (this.immediate) clearImmediate(this.immediate)
    this.timer = undefined
    this.immediate = undefined
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.clearTimers()
    this.state = 'ended'
    cb(err)
  }
}
