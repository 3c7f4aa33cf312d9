// A measuring tap: passes everything through unchanged and reports frames,
// bytes, rates and end-to-end latency (now − frame.timestamp: mean, max,
// p50/p95/p99) over a sliding window, as 'stats' events and optionally one
// line on stderr per interval.

import { Transform, type Duplex, type TransformCallback } from 'node:stream'
import { handOn, isBoundary, isFrame, now, packetLength, type ByteChunk } from '../core/frame.js'
import { defineStage } from '../core/spec.js'
import { stageFactory, type StageContext } from '../core/stage.js'
import { LATENCY, SlidingStats, type LatencySummary, type StatsSnapshot } from '../core/stats.js'

export type { LatencySummary, StatsSnapshot }

export interface StatsOptions {
  /** How often to emit a 'stats' event (and a log line); one more is emitted at the end (milliseconds; default 1s) */
  interval?: number
  /** Span that fps, bytesPerSec and latency are measured over (sliding, in tenths) (milliseconds; default 1s) */
  window?: number
  /** Write each snapshot as one line to stderr (default false) */
  log?: boolean
}

/** Events of stats (see core/events.ts): a snapshot every interval and one at the end. */
export interface StatsEvents {
  stats: StatsSnapshot
}

export const spec = defineStage<StatsOptions, Duplex>({
  name: 'stats',
  kind: 'transform',
  input: 'any',
  output: 'any',
  description: 'Pass everything through and measure frames, bytes, fps and latency',
  options: {
    interval: {
      type: 'duration',
      min: 10,
      default: 1000,
      doc: "How often to emit a 'stats' event (and a log line); one more is emitted at the end",
    },
    window: {
      type: 'duration',
      min: 10,
      default: 1000,
      doc: 'Span that fps, bytesPerSec and latency are measured over (sliding, in tenths)',
    },
    log: { type: 'boolean', default: false, doc: 'Write each snapshot as one line to stderr' },
  },
  create(o, ctx) {
    return new StatsTap(o, ctx)
  },
})

export const stats = stageFactory<StatsOptions, Duplex, StatsEvents>(spec)

export class StatsTap extends Transform {
  private readonly o: Required<StatsOptions>
  private readonly ctx: StageContext
  private readonly window: SlidingStats
  private timer: NodeJS.Timeout | undefined

  constructor(o: Required<StatsOptions>, ctx: StageContext) {
    // A tap adds no buffering of its own; it passes backpressure straight through.
    super({ objectMode: true, highWaterMark: 1 })
    this.o = o
    this.ctx = ctx
    this.window = new SlidingStats(o.window, performance.now())
    this.timer = setInterval(() => this.report(), o.interval)
    // Measuring must not keep a process alive on its own.
    this.timer.unref()
  }

  /** The numbers as of now. */
  snapshot(): StatsSnapshot {
    return this.window.snapshot(performance.now())
  }

  /** For the CLI's status line and `--json` (see LATENCY). */
  [LATENCY](): LatencySummary | null {
    return this.snapshot().latencyMs
  }

  override _transform(chunk: unknown, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!isBoundary(chunk)) {
      const frame = isFrame(chunk)
      const bytes = frame ? chunk.data.length : packetLength(chunk as ByteChunk)
      const latency = frame && Number.isFinite(chunk.timestamp) ? now() - chunk.timestamp : undefined
      this.window.add(performance.now(), bytes, latency)
      this.ctx.counters.frames++
      this.ctx.counters.bytes += bytes
    }
    cb(null, isFrame(chunk) ? handOn(this, chunk) : chunk)
  }

  override _flush(cb: TransformCallback): void {
    this.stopTimer()
    this.report()
    cb()
  }

  private report(): void {
    const s = this.snapshot()
    this.ctx.counters.fps = s.fps
    this.emit('stats', s)
    if (this.o.log) process.stderr.write(formatSnapshot(this.ctx.name, s) + '\n')
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.stopTimer()
    cb(err)
  }
}

/** One line: `stats: 300 frames, 27.6 MiB, 30.0 fps, 2.8 MiB/s, latency p50 1.1 / p95 2.0 / p99 3.1 ms, 1.2 ms mean, 3.4 ms max`. */
export function formatSnapshot(name: string, s: StatsSnapshot): string {
  const l = s.latencyMs
  const latency = l
    ? `, latency p50 ${l.p50.toFixed(1)} / p95 ${l.p95.toFixed(1)} / p99 ${l.p99.toFixed(1)} ms, ${l.mean.toFixed(1)} ms mean, ${l.max.toFixed(1)} ms max`
    : ''
  return `${name}: ${s.frames} frames, ${human(s.bytes)}, ${s.fps.toFixed(1)} fps, ${human(s.bytesPerSec)}/s${latency}`
}

function human(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${Math.round(n)} B`
}
