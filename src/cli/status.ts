// The live status line (like ffmpeg's) and `--json` stats, both read from the
// stages' counters; stage events (clients joining, warnings) become log lines.

import type { Stream } from 'node:stream'
import { stageInfo, type Counters } from '../core/stage.js'
import { LATENCY, measuresLatency, type LatencySummary } from '../core/stats.js'
import { eventLevel, shows, type LogLevel } from './log.js'

export interface StageSnapshot {
  name: string
  counters: Counters
}

export interface StatusSnapshot {
  /** Seconds since the pipeline started. */
  elapsed: number
  /** Frames (or packets) handled by the sink. */
  frames: number
  /** Frames per second over the last interval (the whole run in the final snapshot). */
  fps: number
  /** Bytes handled by the sink. */
  bytes: number
  bytesPerSec: number
  /** Frames dropped by any stage's policy (slow clients, rate caps, lost connections). */
  drops: number
  /** Connected peers over all network stages. */
  clients: number
  /** End-to-end latency (ms: mean, max, p50/p95/p99) measured by the last stage that measures it (stats, http); null when none does or no frame carried a timestamp. */
  latencyMs: LatencySummary | null
  /** Peers cut off for what they sent (a bad header, CRC, size, or a payload the pipeline cannot take), over all stages. */
  badPeers: number
  stages: StageSnapshot[]
  final: boolean
}

export interface StatusOptions {
  /** Where the status line and log lines go (stderr). */
  log: NodeJS.WriteStream | NodeJS.WritableStream
  /** Redraw a status line in place: only when `log` is a TTY. */
  live: boolean
  /** Write JSON lines here (one per interval and a final one), or nowhere. */
  json?: NodeJS.WritableStream
  intervalMs?: number
  /** What reaches `log`: info (default) shows event lines, the status line and the summary; warning only warnings; error and quiet none of these. */
  level?: LogLevel
}

const LOGGED_EVENTS = ['listening', 'client', 'warning', 'connect', 'disconnect', 'retry', 'segment', 'ffmpeg', 'info', 'message'] as const

export class StatusReporter {
  private readonly stages: Stream[]
  private readonly options: StatusOptions
  private readonly started = performance.now()
  private last = { t: performance.now(), frames: 0, bytes: 0 }
  private timer: NodeJS.Timeout | undefined
  private lineShown = false
  private readonly level: LogLevel

  constructor(stages: Stream[], options: StatusOptions) {
    this.stages = stages
    this.level = options.level ?? 'info'
    // The live line is information: only at info and debug.
    this.options = { ...options, live: options.live && shows(this.level, 'info') }
    for (const stream of stages) {
      const name = stageInfo(stream)?.name ?? 'stage'
      for (const event of LOGGED_EVENTS)
        stream.on(event, (detail: unknown) => this.logLine(prefixed(name, describeEvent(event, detail)), eventLevel(event)))
    }
  }

  start(): void {
    if (!this.options.live && !this.options.json) return
    this.timer = setInterval(() => this.tick(), this.options.intervalMs ?? 500)
    this.timer.unref()
  }

  /**
   * Stop the timer and print the final summary (one line, TTY or not, at
   * info level; `summary: false` leaves it out, e.g. when nothing ran). The
   * final JSON line is written whatever the level.
   */
  finish(opts: { summary?: boolean } = {}): StatusSnapshot {
    clearInterval(this.timer)
    const snap = this.snapshot(true)
    this.clearLine()
    if (opts.summary !== false && shows(this.level, 'info')) this.options.log.write(formatStatus(snap) + '\n')
    this.options.json?.write(JSON.stringify(snap) + '\n')
    return snap
  }

  /** A line on the log, when the level shows `level` (default info). */
  logLine(text: string, level: 'error' | 'warning' | 'info' | 'debug' = 'info'): void {
    if (!shows(this.level, level)) return
    this.clearLine()
    this.options.log.write(text + '\n')
  }

  /** No stage has counted a frame or a byte: the pipeline failed before anything flowed. */
  nothingRan(): boolean {
    return this.stages.every((s) => {
      const c = stageInfo(s)?.counters
      return !c || (c.frames === 0 && c.bytes === 0)
    })
  }

  snapshot(final = false): StatusSnapshot {
    const t = performance.now()
    const stages = this.stages.map((s) => {
      const info = stageInfo(s)
      return { name: info?.name ?? '?', counters: { ...(info?.counters ?? { frames: 0, bytes: 0, drops: 0 }) } }
    })
    const sink = stages[stages.length - 1]!.counters
    const elapsed = (t - this.started) / 1000
    const dt = final ? elapsed : (t - this.last.t) / 1000
    const dFrames = final ? sink.frames : sink.frames - this.last.frames
    const dBytes = final ? sink.bytes : sink.bytes - this.last.bytes
    if (!final) this.last = { t, frames: sink.frames, bytes: sink.bytes }
    return {
      elapsed,
      frames: sink.frames,
      fps: dt > 0 ? dFrames / dt : 0,
      bytes: sink.bytes,
      bytesPerSec: dt > 0 ? dBytes / dt : 0,
      drops: stages.reduce((n, s) => n + s.counters.drops, 0),
      clients: stages.reduce((n, s) => n + (s.counters.clients ?? 0), 0),
      latencyMs: this.latency(),
      badPeers: stages.reduce((n, s) => n + (s.counters.badPeers ?? 0), 0),
      stages,
      final,
    }
  }

  private latency(): LatencySummary | null {
    for (let i = this.stages.length - 1; i >= 0; i--) {
      const s = this.stages[i]
      if (measuresLatency(s)) return s[LATENCY]()
    }
    return null
  }

  private tick(): void {
    const snap = this.snapshot()
    if (this.options.live) {
      this.options.log.write('\r' + formatStatus(snap) + '\x1b[K')
      this.lineShown = true
    }
    this.options.json?.write(JSON.stringify(snap) + '\n')
  }

  private clearLine(): void {
    if (this.lineShown) {
      this.options.log.write('\r\x1b[K')
      this.lineShown = false
    }
  }
}

export function formatStatus(s: StatusSnapshot): string {
  const parts = [
    `frames=${String(s.frames).padStart(6)}`,
    `fps=${s.fps.toFixed(1).padStart(6)}`,
    `size=${formatSize(s.bytes).padStart(10)}`,
    `rate=${(formatSize(s.bytesPerSec) + '/s').padStart(12)}`,
    `drops=${s.drops}`,
  ]
  if (s.stages.some((st) => st.counters.clients !== undefined)) parts.push(`clients=${s.clients}`)
  const l = s.latencyMs
  if (l) parts.push(`latency(p50/p95/p99)=${l.p50.toFixed(1)}/${l.p95.toFixed(1)}/${l.p99.toFixed(1)}ms`)
  // Shown once there is one: a line that changes only under attack.
  if (s.badPeers > 0) parts.push(`badPeers=${s.badPeers}`)
  parts.push(`time=${formatClock(s.elapsed)}`)
  return (s.final ? 'done: ' : '') + parts.join(' ')
}

export function formatSize(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)}GiB`
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(2)}MiB`
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)}KiB`
  return `${Math.round(bytes)}B`
}

function formatClock(seconds: number): string {
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${s.toFixed(1).padStart(4, '0')}`
}

/** `stage: text`, once: an error's message already starts with its stage's name. */
function prefixed(stage: string, text: string): string {
  return text.startsWith(`${stage}: `) ? text : `${stage}: ${text}`
}

function describeEvent(event: string, detail: unknown): string {
  if (event === 'listening') {
    const a = detail as { address?: string; port?: number; url?: string } | number | undefined
    // A server with a URL (the http viewer) shows it whole, so a terminal makes it clickable.
    if (typeof a === 'object' && a?.url) return `viewer at ${a.url}`
    return typeof a === 'number' ? `listening on port ${a}` : `listening on ${a?.address ?? '?'}:${a?.port ?? '?'}`
  }
  if (detail instanceof Error) return detail.message
  if (typeof detail === 'string') return detail
  if (detail && typeof detail === 'object') {
    const d = detail as Record<string, unknown>
    if (event === 'client')
      return `client ${String(d.peer ?? '?')} ${d.event === 'leave' ? 'left' : 'joined'}${d.reason ? ` (${String(d.reason)})` : ''}`
    if (typeof d.message === 'string') return d.message
    return `${event} ${Object.entries(d)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(' ')}`
  }
  return event
}
