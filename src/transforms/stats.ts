// A measuring tap: passes everything through unchanged and reports frames,
// bytes, rates and end-to-end latency (now − frame.timestamp) over a sliding
// window, as 'stats' events and optionally one line on stderr per interval.

import { Transform, type Duplex, type TransformCallback } from 'node:stream'
import { isBoundary, isFrame, now, packetLength, type ByteChunk } from '../core/frame.js'
import { defineStage } from '../core/spec.js'
import { stageFactory, type StageContext } from '../core/stage.js'

export interface StatsOptions {
  interval?: number
  window?: number
  log?: boolean
}

/** What a 'stats' event carries. */
export interface StatsSnapshot {
  /** Frames (or packets on a byte edge) seen since the start. */
  frames: number
  /** Payload bytes seen since the start. */
  bytes: number
  /** Frames per second over the window. */
  fps: number
  bytesPerSec: number
  /** End-to-end latency of the Frames in the window; null when none carried a timestamp (byte edges). */
  latencyMs: { mean: number; max: number } | null
}

export const spec = defineStage<StatsOptions, Duplex>({
  name: 'stats',
  kind: 'transform',
  input: 'any',
  output: 'any',
  description: 'Pass everything through and measure frames, bytes, fps and latency',
  options: {
    interval: { type: 'duration', min: 10, default: 1000, doc: "How often to emit a 'stats' event (and a log line); one more is emitted at the end" },
    window: { type: 'duration', min: 10, default: 1000, doc: 'Span that fps, bytesPerSec and latency are measured over (sliding, in tenths)' },
    log: { type: 'boolean', default: false, doc: 'Write each snapshot as one line to stderr' },
  },
  create(o, ctx) {
    return new StatsTap(o, ctx)
  },
})

export const stats = stageFactory(spec)

const BUCKETS = 10

interface Bucket {
  id: number
  frames: number
  bytes: number
  latencySum: number
  latencyCount: number
  latencyMax: number
}

/**
 * Counts over a sliding window kept in BUCKETS + 1 time buckets, so memory
 * stays fixed at any rate. A snapshot covers the full buckets of the last
 * window plus the current partial one, and divides by exactly that span.
 * Times are milliseconds on any monotonic clock (tests pass their own).
 */
export class SlidingStats {
  private readonly width: number
  private readonly ring: Bucket[]
  private readonly t0: number
  private frames = 0
  private bytes = 0

  constructor(windowMs: number, startTime: number) {
    this.width = windowMs / BUCKETS
    this.t0 = startTime
    this.ring = Array.from({ length: BUCKETS + 1 }, () => ({ id: -1, frames: 0, bytes: 0, latencySum: 0, latencyCount: 0, latencyMax: -Infinity }))
  }

  /** Record one frame/packet of `bytes` at time `t`; `latency` in ms when known. */
  add(t: number, bytes: number, latency?: number): void {
    this.frames++
    this.bytes += bytes
    const id = Math.max(0, Math.floor((t - this.t0) / this.width))
    const b = this.ring[id % this.ring.length]!
    if (b.id !== id) {
      b.id = id
      b.frames = b.bytes = b.latencySum = b.latencyCount = 0
      b.latencyMax = -Infinity
    }
    b.frames++
    b.bytes += bytes
    if (latency !== undefined && Number.isFinite(latency)) {
      b.latencySum += latency
      b.latencyCount++
      if (latency > b.latencyMax) b.latencyMax = latency
    }
  }

  snapshot(t: number): StatsSnapshot {
    const current = Math.max(0, Math.floor((t - this.t0) / this.width))
    const oldest = current - BUCKETS
    let frames = 0
    let bytes = 0
    let latencySum = 0
    let latencyCount = 0
    let latencyMax = -Infinity
    for (const b of this.ring) {
      if (b.id < oldest || b.id > current) continue
      frames += b.frames
      bytes += b.bytes
      latencySum += b.latencySum
      latencyCount += b.latencyCount
      if (b.latencyMax > latencyMax) latencyMax = b.latencyMax
    }
    const span = (t - Math.max(this.t0, this.t0 + oldest * this.width)) / 1000
    return {
      frames: this.frames,
      bytes: this.bytes,
      fps: span > 0 ? frames / span : 0,
      bytesPerSec: span > 0 ? bytes / span : 0,
      latencyMs: latencyCount > 0 ? { mean: latencySum / latencyCount, max: latencyMax } : null,
    }
  }
}

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

  override _transform(chunk: unknown, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!isBoundary(chunk)) {
      const frame = isFrame(chunk)
      const bytes = frame ? chunk.data.length : packetLength(chunk as ByteChunk)
      const latency = frame && Number.isFinite(chunk.timestamp) ? now() - chunk.timestamp : undefined
      this.window.add(performance.now(), bytes, latency)
      this.ctx.counters.frames++
      this.ctx.counters.bytes += bytes
    }
    cb(null, chunk)
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

/** One line: `stats: 300 frames, 27.6 MiB, 30.0 fps, 2.8 MiB/s, latency 1.2 ms mean, 3.4 ms max`. */
export function formatSnapshot(name: string, s: StatsSnapshot): string {
  const latency = s.latencyMs ? `, latency ${s.latencyMs.mean.toFixed(1)} ms mean, ${s.latencyMs.max.toFixed(1)} ms max` : ''
  return `${name}: ${s.frames} frames, ${human(s.bytes)}, ${s.fps.toFixed(1)} fps, ${human(s.bytesPerSec)}/s${latency}`
}

function human(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${Math.round(n)} B`
}
