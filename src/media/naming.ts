// File-name patterns for sinks and recorders: `frame-%06d.{ext}`,
// `cam-{seq}.{ext}`, `camera{time}.avi`, `{date}_{time}/frame-%06d.{ext}`.
// A pattern is compiled once into literal parts and token functions, so bad
// patterns fail when the stage is created and naming a frame is a join.
// FrameNamer adds the running counter and the segment clock (rotation every
// N seconds, as seed 004's recorder does) on top of a compiled pattern.

import type { FrameFormat } from '../core/frame.js'
import { FramePipeError } from '../core/errors.js'

/** What a file name can be made of. */
export interface NameVars {
  /** Running index of the file (`start` + files written so far, or so far in this segment). */
  index: number
  /** frame.seq */
  seq: number
  /** Extension for the frame's format, without the dot. */
  ext: string
  /** Milliseconds since the epoch that the time tokens show (the frame's timestamp, or its segment's start). */
  timestamp: number
}

export interface NameFn {
  (vars: NameVars): string
  /** The pattern has at least one time token ({ms} {date} {time} {Y} {M} {D} {h} {m} {s}). */
  readonly usesTime: boolean
  /** The pattern has %d or %0Nd. */
  readonly usesIndex: boolean
  /** What the pattern's time tokens read at `timestamp`, joined: equal keys mean equal time text in the name. */
  timeKey(timestamp: number): string
}

/** Local-time fields of one timestamp, computed once per name. */
interface TimeParts {
  ms: number
  Y: string
  M: string
  D: string
  h: string
  m: string
  s: string
}

function timeParts(timestamp: number): TimeParts {
  // A timestamp that is not a time (NaN from a broken sender) names by our clock, never `NaN-NaN`.
  if (!Number.isFinite(timestamp) || Math.abs(timestamp) > MAX_DATE_MS) timestamp = Date.now()
  const d = new Date(timestamp)
  const two = (n: number) => String(n).padStart(2, '0')
  return {
    ms: Math.floor(timestamp),
    Y: String(d.getFullYear()).padStart(4, '0'),
    M: two(d.getMonth() + 1),
    D: two(d.getDate()),
    h: two(d.getHours()),
    m: two(d.getMinutes()),
    s: two(d.getSeconds()),
  }
}

/** The largest time a Date holds (±100 000 000 days from 1970). */
const MAX_DATE_MS = 8.64e15

/** `{name}` tokens that do not depend on time. */
const TOKENS: Record<string, (v: NameVars) => string> = {
  seq: (v) => String(v.seq),
  ext: (v) => v.ext,
}

/** `{name}` time tokens, in local time (the TZ of the process). */
const TIME_TOKENS: Record<string, (t: TimeParts) => string> = {
  ms: (t) => String(t.ms),
  date: (t) => `${t.Y}-${t.M}-${t.D}`,
  time: (t) => `${t.h}-${t.m}-${t.s}`,
  Y: (t) => t.Y,
  M: (t) => t.M,
  D: (t) => t.D,
  h: (t) => t.h,
  m: (t) => t.m,
  s: (t) => t.s,
}

export const NAME_TOKENS: readonly string[] = [
  '%d',
  '%0Nd',
  '%%',
  ...Object.keys(TOKENS).map((k) => `{${k}}`),
  ...Object.keys(TIME_TOKENS).map((k) => `{${k}}`),
]

const EXTENSIONS: Record<FrameFormat, string> = { jpeg: 'jpg', png: 'png', webp: 'webp', raw: 'raw', unknown: 'bin' }

export function extensionFor(format: FrameFormat): string {
  return EXTENSIONS[format] ?? 'bin'
}

type Part =
  { kind: 'literal'; text: string } | { kind: 'var'; fn: (v: NameVars) => string } | { kind: 'time'; fn: (t: TimeParts) => string }

/**
 * Compile a pattern: `%d` is the index, `%0Nd` the index zero-padded to N
 * digits, `%%` a literal %, `{seq}` frame.seq, `{ext}` the extension, and the
 * time tokens `{ms}` (epoch milliseconds), `{date}` (YYYY-MM-DD), `{time}`
 * (HH-MM-SS), `{Y}` `{M}` `{D}` `{h}` `{m}` `{s}` (zero-padded) in local time.
 * Any other `%` or `{` sequence is refused with ERR_INVALID_OPTION.
 */
export function compilePattern(pattern: string, stage?: string, option = 'pattern'): NameFn {
  const fail = (why: string): never => {
    throw new FramePipeError('ERR_INVALID_OPTION', `${why} in ${option} '${pattern}' (tokens: ${NAME_TOKENS.join(' ')})`, { stage })
  }
  if (pattern === '') fail('empty file name')
  const parts: Part[] = []
  let literal = ''
  let usesIndex = false
  const flush = () => {
    if (literal) parts.push({ kind: 'literal', text: literal })
    literal = ''
  }
  for (let i = 0; i < pattern.length;) {
    const ch = pattern[i]!
    if (ch === '%') {
      const m = /^%(?:%|d|0(\d{1,2})d)/.exec(pattern.slice(i))
      if (!m) fail(`unknown %-token at position ${i} (write %% for a literal %)`)
      if (m![0] === '%%') {
        literal += '%'
      } else {
        flush()
        usesIndex = true
        const width = m![1] === undefined ? 0 : Number(m![1])
        parts.push({ kind: 'var', fn: width ? (v) => String(v.index).padStart(width, '0') : (v) => String(v.index) })
      }
      i += m![0].length
    } else if (ch === '{') {
      const end = pattern.indexOf('}', i)
      const name = end < 0 ? undefined : pattern.slice(i + 1, end)
      if (name !== undefined && Object.hasOwn(TOKENS, name)) {
        flush()
        parts.push({ kind: 'var', fn: TOKENS[name]! })
      } else if (name !== undefined && Object.hasOwn(TIME_TOKENS, name)) {
        flush()
        parts.push({ kind: 'time', fn: TIME_TOKENS[name]! })
      } else {
        fail(end < 0 ? `unclosed '{' at position ${i}` : `unknown token {${name}}`)
      }
      i = end + 1
    } else {
      literal += ch
      i++
    }
  }
  flush()
  const timeFns = parts.flatMap((p) => (p.kind === 'time' ? [p.fn] : []))
  const usesTime = timeFns.length > 0
  const name = (v: NameVars): string => {
    const t = usesTime ? timeParts(v.timestamp) : undefined
    let out = ''
    for (const p of parts) out += p.kind === 'literal' ? p.text : p.kind === 'var' ? p.fn(v) : p.fn(t!)
    return out
  }
  const timeKey = (timestamp: number): string => {
    const t = timeParts(timestamp)
    return timeFns.map((fn) => fn(t)).join('\0')
  }
  return Object.assign(name, { usesTime, usesIndex, timeKey })
}

export interface FrameNamerOptions {
  pattern: string
  /** First value of the %d counter. */
  start?: number
  /** Segment length in milliseconds; 0: no segments, time tokens show each frame's own timestamp. */
  segment?: number
  /** For error messages. */
  stage?: string
  option?: string
}

/**
 * When a frame starts a new time segment: when its timestamp is `segment`
 * ms or more from the current segment's first frame, either way (a clock
 * stepped back counts). A network peer's timestamps (checked against our
 * clock where they enter, maxClockSkew) drive this too, but a peer whose
 * clock jumps about must not get a file per frame: for frames from a peer, a
 * new segment starts at most once per half a segment of our own clock.
 * Frames made here (a camera, files being replayed) follow their timestamps
 * alone. A timestamp that is not a number never starts a segment.
 */
export class SegmentClock {
  /** The current segment's first timestamp; undefined before the first frame. */
  start: number | undefined
  private lastPeerStart = -Infinity
  private readonly segment: number
  private readonly clock: () => number

  constructor(segment: number, clock: () => number = () => performance.now()) {
    this.segment = segment
    this.clock = clock
  }

  /** A segment starts at `timestamp` (the first frame, or a new file for another reason). */
  begin(timestamp: number, peer = false): void {
    if (Number.isFinite(timestamp) || this.start === undefined) this.start = timestamp
    if (peer) this.lastPeerStart = this.clock()
  }

  /** Whether the frame at `timestamp` starts a new segment; when it does, the segment starts there. */
  due(timestamp: number, peer = false): boolean {
    const s = this.start
    if (s === undefined || !Number.isFinite(s)) {
      this.begin(timestamp, peer)
      return true
    }
    if (this.segment <= 0 || !(Math.abs(timestamp - s) >= this.segment)) return false
    if (peer) {
      const t = this.clock()
      if (t - this.lastPeerStart < this.segment / 2) return false
    }
    this.begin(timestamp, peer)
    return true
  }
}

/** How many segments' time keys FrameNamer remembers to keep names unique; far more than a clock ever revisits. */
const REMEMBERED_KEYS = 1024

/**
 * Names one file per frame from a pattern, a running counter and, with
 * `segment`, a segment clock driven by the frames' timestamps:
 *
 * - A segment starts with the first frame, and a new one with the first frame
 *   whose timestamp is `segment` ms or more after the current segment's start
 *   (or `segment` ms or more before it: a clock stepped back).
 * - Time tokens show the segment's start, so a segment's files share their
 *   time text (`{date}_{time}/frame-%06d.{ext}` puts each segment in its own
 *   folder). Without `segment` they show each frame's own timestamp.
 * - The %d counter restarts at `start` in each segment when the pattern has a
 *   time token; otherwise it runs on across segments. When a new segment's
 *   time tokens read the same as an earlier one's (two segments starting in
 *   the same second with `{time}`), the counter continues where that segment
 *   stopped instead, so a pattern with %d never repeats a name in one run.
 */
export class FrameNamer {
  readonly pattern: NameFn
  private readonly start: number
  private readonly segment: number
  private next: number
  private readonly clock: SegmentClock
  private currentKey: string | undefined
  /** Counter value where each recent segment's time key left off (insertion order = age). */
  private readonly keys = new Map<string, number>()
  /** Segments started so far. */
  segments = 0

  constructor(o: FrameNamerOptions) {
    this.pattern = compilePattern(o.pattern, o.stage, o.option)
    this.start = o.start ?? 0
    this.segment = o.segment ?? 0
    this.clock = new SegmentClock(this.segment)
    this.next = this.start
  }

  /** Start of the current segment (ms since the epoch), when segments are on and a frame has been named. */
  get currentSegmentStart(): number | undefined {
    return this.segment > 0 ? this.clock.start : undefined
  }

  /** The name for the next frame; advances the counter and, when due, the segment. `peer`: the frame came from a network peer (see SegmentClock). */
  name(frame: { seq: number; ext: string; timestamp: number; peer?: string }): string {
    let timestamp = frame.timestamp
    if (this.segment > 0) {
      if (this.clock.due(timestamp, frame.peer !== undefined)) this.startSegment(this.clock.start!)
      timestamp = this.clock.start!
    }
    return this.pattern({ index: this.next++, seq: frame.seq, ext: frame.ext, timestamp })
  }

  private startSegment(timestamp: number): void {
    this.segments++
    if (!this.pattern.usesTime) return
    if (this.currentKey !== undefined) {
      this.keys.delete(this.currentKey)
      this.keys.set(this.currentKey, this.next)
      if (this.keys.size > REMEMBERED_KEYS) this.keys.delete(this.keys.keys().next().value!)
    }
    const key = this.pattern.timeKey(timestamp)
    this.currentKey = key
    this.next = this.keys.get(key) ?? this.start
  }
}
