// Rate-limited warnings, shared by every stage that warns about what a peer
// sends: a flood of bad datagrams, garbage commands or refused connections
// must not become a flood of log lines. Each kind of warning (a key) may say
// `burst` lines per `interval`; further ones are held back and counted, and
// the next line that goes out says how many were.

import { FramePipeError, type ErrorCode } from './errors.js'

export interface RateLimitOptions {
  /** Lines of one key per window. */
  burst?: number
  /** The window, in milliseconds. */
  interval?: number
  clock?: () => number
}

/** Keys remembered at once: keys name kinds of warnings, not peers, so this is never reached in practice. */
const MAX_KEYS = 256

interface Window {
  start: number
  sent: number
  held: number
}

/** Decides which lines go out: `pass(key)` is the count held back before this line, or undefined when this line is held back too. */
export class RateLimit {
  private readonly burst: number
  private readonly interval: number
  private readonly clock: () => number
  private readonly windows = new Map<string, Window>()

  constructor(o: RateLimitOptions = {}) {
    this.burst = o.burst ?? 10
    this.interval = o.interval ?? 1000
    this.clock = o.clock ?? Date.now
  }

  pass(key = ''): number | undefined {
    const t = this.clock()
    let w = this.windows.get(key)
    if (!w) {
      if (this.windows.size >= MAX_KEYS) this.windows.delete(this.windows.keys().next().value!)
      w = { start: t, sent: 0, held: 0 }
      this.windows.set(key, w)
    }
    if (t - w.start >= this.interval) {
      w.start = t
      w.sent = 0
    }
    if (w.sent >= this.burst) {
      w.held++
      return undefined
    }
    w.sent++
    const held = w.held
    w.held = 0
    return held
  }
}

/** ` (3 more held back since the last warning)`, or '' for none. */
export function heldBack(held: number): string {
  return held > 0 ? ` (${held} more held back since the last warning)` : ''
}

/**
 * Emit at most one message per `intervalMs`; the next one emitted says how
 * many were held back. The first always goes out at once.
 */
export function throttle(emit: (message: string) => void, intervalMs = 1000, clock: () => number = Date.now): (message: string) => void {
  const limit = new RateLimit({ burst: 1, interval: intervalMs, clock })
  return (message) => {
    const held = limit.pass()
    if (held !== undefined) emit(message + heldBack(held))
  }
}

/** What a stage's warn() needs of the stage: its name and its 'warning' event. */
export interface WarningOwner {
  emit(event: string, ...args: unknown[]): boolean
}

/**
 * A stage's rate-limited 'warning' events, each a FramePipeError whose
 * message starts with the stage name once (the CLI prints it as it is).
 * `key` separates kinds of warnings; by default the error code is the key.
 */
export function stageWarnings(
  owner: WarningOwner,
  stage: string,
  o: RateLimitOptions = {},
): (message: string, code?: ErrorCode, key?: string) => void {
  const limit = new RateLimit(o)
  return (message, code = 'ERR_NETWORK', key = code) => {
    const held = limit.pass(key)
    if (held === undefined) return
    owner.emit('warning', new FramePipeError(code, message + heldBack(held), { stage }))
  }
}
