// Counts over a sliding window: frames, bytes, rates and end-to-end latency
// (mean, max and the p50/p95/p99 quantiles). The stats tap, the http viewer's
// /stats and /metrics, and the CLI's status line read them.

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
  latencyMs: LatencySummary | null
}

/**
 * Latency over a window, in milliseconds. mean and max cover every frame of
 * the window; the quantiles cover its most recent LATENCY_SAMPLES frames
 * (all of them below 4096 frames per window, e.g. 30 fps over 1 s).
 */
export interface LatencySummary {
  mean: number
  max: number
  /** Median (nearest rank). */
  p50: number
  p95: number
  p99: number
}

/**
 * A stage that measures end-to-end latency (the stats tap, the http sink)
 * answers this method; the CLI's status line and `--json` read it.
 */
export const LATENCY = Symbol.for('frame-pipe.latency')
export interface MeasuresLatency {
  [LATENCY](): LatencySummary | null
}

export function measuresLatency(stream: unknown): stream is MeasuresLatency {
  return typeof (stream as Partial<MeasuresLatency> | null)?.[LATENCY] === 'function'
}

const BUCKETS = 10
/** Latency samples kept for the quantiles: a ring of the most recent ones, so memory is fixed at any rate (64 KiB). */
export const LATENCY_SAMPLES = 4096

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
  private latencySum = 0
  private latencyCount = 0
  /** Ring of the last LATENCY_SAMPLES latencies and the bucket each fell in. */
  private readonly samples = new Float64Array(LATENCY_SAMPLES)
  private readonly sampleBucket = new Float64Array(LATENCY_SAMPLES)
  private sampleCount = 0
  private readonly scratch = new Float64Array(LATENCY_SAMPLES)

  constructor(windowMs: number, startTime: number) {
    this.width = windowMs / BUCKETS
    this.t0 = startTime
    this.ring = Array.from({ length: BUCKETS + 1 }, () => ({
      id: -1,
      frames: 0,
      bytes: 0,
      latencySum: 0,
      latencyCount: 0,
      latencyMax: -Infinity,
    }))
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
      this.latencySum += latency
      this.latencyCount++
      const at = this.sampleCount++ % LATENCY_SAMPLES
      this.samples[at] = latency
      this.sampleBucket[at] = id
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
      latencyMs: latencyCount > 0 ? { mean: latencySum / latencyCount, max: latencyMax, ...this.quantiles(oldest, current) } : null,
    }
  }

  /** Latency since the start (ms and frames that carried a timestamp): a Prometheus summary's _sum and _count. */
  latencyTotals(): { sum: number; count: number } {
    return { sum: this.latencySum, count: this.latencyCount }
  }

  /** Nearest-rank quantiles of the ring's samples that fall in buckets oldest..current. */
  private quantiles(oldest: number, current: number): { p50: number; p95: number; p99: number } {
    const kept = Math.min(this.sampleCount, LATENCY_SAMPLES)
    let n = 0
    for (let i = 0; i < kept; i++) {
      const id = this.sampleBucket[i]!
      if (id >= oldest && id <= current) this.scratch[n++] = this.samples[i]!
    }
    const sorted = this.scratch.subarray(0, n).sort()
    const rank = (q: number): number => sorted[Math.max(0, Math.ceil(q * n) - 1)] ?? 0
    return { p50: rank(0.5), p95: rank(0.95), p99: rank(0.99) }
  }
}

/** The quantiles of `values` by nearest rank (a reference for tests and one-off summaries). */
export function nearestRank(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? 0
}
