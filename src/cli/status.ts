// The live status line (like ffmpeg's) and `--json` stats, both read from the
// stages' counters; stage events (clients joining, warnings) become log lines.

import type { Stream } from 'node:stream'
import { stageInfo, type Counters } from '../core/stage.js'

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
}

const LOGGED_EVENTS = ['listening', 'client', 'warning', 'connect', 'disconnect', 'retry', 'segment', 'ffmpeg', 'info', 'message'] as const

export class StatusReporter {
  private readonly stages: Stream[]
  private readonly options: StatusOptions
  private readonly started = performance.now()
  private last = { t: performance.now(), frames: 0, bytes: 0 }
  private timer: NodeJS.Timeout | undefined
  private lineShown = false

  constructor(stages: Stream[], options: StatusOptions) {
    this.stages = stages
    this.options = options
    for (const stream of stages) {
      const name = stageInfo(stream)?.name ?? 'stage'
      for (const event of LOGGED_EVENTS) stream.on(event, (detail: unknown) => this.logLine(prefixed(name, describeEvent(event, detail))))
    }
  }

  start(): void {
    if (!this.options.live && !this.options.json) return
    this.timer = setInterval(() => this.tick(), this.options.intervalMs ?? 500)
    this.timer.unref()
  }

  /** Stop the timer and print the final summary (always one line, TTY or not). */
  finish(): StatusSnapshot {
    clearInterval(this.timer)
    const snap = this.snapshot(true)
    this.clearLine()
    this.options.log.write(formatStatus(snap) + '\n')
    this.options.json?.write(JSON.stringify(snap) + '\n')
    return snap
  }

  logLine(text: string): void {
    this.clearLine()
    this.options.log.write(text + '\n')
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
      badPeers: stages.reduce((n, s) => n + (s.counters.badPeers ?? 0), 0),
      stages,
      final,
    }
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
    const a = detail as { address?: string; port?: number } | number | undefined
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
