// Counts over a sliding window: frames, bytes, rates and end-to-end latency.
// The stats tap and the http viewer's /stats read them.

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
