// Stage declarations: each stage file declares its name, kind, ports and
// options once. The registry, the CLI parser, `frame-pipe inspect`, the README
// tables and option validation for the TypeScript API all read these records.

import type { Duplex, Stream } from 'node:stream'
import { readFileSync } from 'node:fs'
import { InvalidOptionError, describeValue } from './errors.js'

/** Per-stage numbers for the status line and `--json`: frames (or packets), bytes, frames dropped by policy, plus stage-specific gauges such as `clients`. */
export interface Counters {
  frames: number
  bytes: number
  drops: number
  [gauge: string]: number
}

/** What a stage's factory gets besides its options: its name (for messages) and the counters it keeps. */
export interface StageContext {
  name: string
  counters: Counters
}

export type StageKind = 'source' | 'transform' | 'sink'
/** What flows on an edge: Frame objects, or bytes (ByteChunk: Buffer, Buffer[] packets, Boundary); 'any' for taps and sinks that take either. */
export type PortType = 'frames' | 'bytes' | 'any'

interface OptionBase<T> {
  doc: string
  default?: T
  /** The option has no sensible default: the user must give it. */
  required?: boolean
}
export type OptionSpec =
  | (OptionBase<number> & { type: 'int'; min?: number; max?: number })
  | (OptionBase<number> & { type: 'number'; min?: number; max?: number })
  | (OptionBase<string> & { type: 'string' })
  | (OptionBase<boolean> & { type: 'boolean' })
  | (OptionBase<string> & { type: 'enum'; values: readonly string[] })
  /**
   * Milliseconds in the TypeScript API (a number); on the command line a
   * duration with a unit, `500ms`, `2s`, `1.5m`, `1h`, and a bare number is
   * SECONDS, as ffmpeg reads `-t 15`.
   */
  | (OptionBase<number> & { type: 'duration'; min?: number; max?: number })
  /** Bytes; the CLI takes `65536`, `64k`, `64KiB`, `16MiB`, `1GiB`. */
  | (OptionBase<number> & { type: 'size'; min?: number; max?: number })
  /**
   * A password, token or key: `@FILE` reads it from a file, `env:NAME` from an
   * environment variable, so it never has to be on a command line (where `ps`
   * shows it to every user); any other text is the secret itself. The value is
   * never printed: not in errors, `inspect`, logs or `--json`. '' means none.
   */
  | (OptionBase<string> & { type: 'secret' })

export type OptionSpecs<O> = { [K in keyof Required<O>]-?: OptionSpec }

export interface StageSpec<O = any, S extends Stream = Stream> {
  name: string
  kind: StageKind
  /** What the stage consumes; sources consume nothing. */
  input: PortType | null
  /** What the stage produces on its readable side; for sinks, what it passes on (documented in `passes`). */
  output: PortType | null
  description: string
  /** For sinks: what each record on the readable side is (sinks chain and can be observed). */
  passes?: string
  /**
   * For stages that face a network peer (or take what one sent): what a
   * misbehaving peer costs (that peer alone, or the pipeline) and what is
   * bounded by which option. `frame-pipe inspect` and the README show it.
   */
  faults?: string
  options: OptionSpecs<O>
  create(options: Required<O>, ctx: StageContext): S
}

/** A stage as the catalog describes it: everything but its factory (plain data, src/catalog.json). */
export type CatalogEntry = Omit<StageSpec, 'create'>

/** Declare a stage; `S` is the stream type its factory returns (sources: Readable, others: Duplex). */
export function defineStage<O, S extends Stream = Duplex>(spec: StageSpec<O, S>): StageSpec<O, S> {
  return spec
}

/** Fill defaults, reject unknown options and check every value against its spec. */
export function resolveOptions<O>(spec: Pick<StageSpec<O>, 'name' | 'options'>, given: Partial<O> | undefined): Required<O> {
  const specs = spec.options as Record<string, OptionSpec>
  const out: Record<string, unknown> = {}
  const input = (given ?? {}) as Record<string, unknown>
  for (const key of Object.keys(input)) {
    if (!(key in specs) && input[key] !== undefined) {
      const hint = closest(key, Object.keys(specs))
      throw new InvalidOptionError(spec.name, key, `unknown option '${key}'${hint ? ` (did you mean '${hint}'?)` : ''}`)
    }
  }
  for (const [key, opt] of Object.entries(specs)) {
    const value = input[key]
    if (value === undefined) {
      if (opt.required) throw new InvalidOptionError(spec.name, key, `option '${key}' is required: ${opt.doc}`)
      out[key] = opt.default
      continue
    }
    checkValue(spec.name, key, opt, value)
    out[key] = opt.type === 'secret' ? readSecret(spec.name, key, value as string) : value
  }
  return out as Required<O>
}

function checkValue(stage: string, key: string, opt: OptionSpec, value: unknown): void {
  const fail = (expected: string): never => {
    // A secret's value is never shown, not even a wrong one: it may be the real secret misplaced.
    const received = opt.type === 'secret' ? `a value of type ${typeof value}` : describeValue(value)
    throw new InvalidOptionError(stage, key, `expected ${expected} for ${key} but received ${received}`)
  }
  switch (opt.type) {
    case 'int':
    case 'number':
    case 'duration':
    case 'size': {
      const integral = opt.type !== 'number' && opt.type !== 'duration'
      const noun = opt.type === 'int' || opt.type === 'size' ? 'integer' : opt.type === 'duration' ? 'duration' : 'number'
      const unit = opt.type === 'size' ? ' bytes' : ''
      // Durations say their unit on every bound and on the value (`>= 10ms … received 5ms`):
      // the CLI reads a bare number as seconds, the API as milliseconds.
      const show = opt.type === 'duration' ? formatDuration : String
      const range =
        opt.min !== undefined && opt.max !== undefined
          ? ` between ${show(opt.min)} and ${show(opt.max)}${unit}`
          : opt.min !== undefined
            ? ` >= ${show(opt.min)}${unit}`
            : opt.max !== undefined
              ? ` <= ${show(opt.max)}${unit}`
              : ''
      if (typeof value !== 'number' || !Number.isFinite(value) || (integral && !Number.isInteger(value))) fail(`${noun}${range}`)
      if ((opt.min !== undefined && (value as number) < opt.min) || (opt.max !== undefined && (value as number) > opt.max)) {
        if (opt.type === 'duration') {
          throw new InvalidOptionError(stage, key, `expected ${noun}${range} for ${key} but received ${formatDuration(value as number)}`)
        }
        fail(`${noun}${range}`)
      }
      return
    }
    case 'string':
    case 'secret':
      if (typeof value !== 'string') fail('string')
      return
    case 'boolean':
      if (typeof value !== 'boolean') fail('boolean')
      return
    case 'enum':
      if (typeof value !== 'string' || !opt.values.includes(value)) {
        const hint = typeof value === 'string' ? closest(value, opt.values) : undefined
        fail(`one of ${opt.values.join(', ')}${hint ? ` (did you mean '${hint}'?)` : ''}`)
      }
  }
}

/** A file holding a secret is small; anything bigger is a wrong path, not a key. */
const MAX_SECRET_BYTES = 64 * 1024

/**
 * The secret a `secret` option names: `@FILE` is the file's content (one
 * trailing newline removed, as `echo` and editors leave one), `env:NAME` the
 * variable's value, anything else is taken as it is. Errors name the file or
 * variable, never the value.
 */
export function readSecret(stage: string, key: string, value: string): string {
  if (value.startsWith('env:')) {
    const name = value.slice(4)
    const found = process.env[name]
    if (!name || found === undefined || found === '') {
      throw new InvalidOptionError(stage, key, `${key}=env:${name}: the environment variable ${name || '(empty name)'} is not set`)
    }
    return found
  }
  if (value.startsWith('@')) {
    const path = value.slice(1)
    let data: Buffer
    try {
      data = readFileSync(path)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      const why =
        code === 'ENOENT'
          ? 'no such file'
          : code === 'EACCES'
            ? 'permission denied'
            : code === 'EISDIR'
              ? 'it is a directory'
              : (err as Error).message
      throw new InvalidOptionError(stage, key, `${key}=@${path}: cannot read the secret file (${why})`)
    }
    if (data.length > MAX_SECRET_BYTES) {
      throw new InvalidOptionError(
        stage,
        key,
        `${key}=@${path}: the file has ${data.length} bytes, more than a secret (${MAX_SECRET_BYTES}): is it the right file?`,
      )
    }
    const text = data.toString('utf8').replace(/\r?\n$/, '')
    if (text === '') throw new InvalidOptionError(stage, key, `${key}=@${path}: the secret file is empty`)
    return text
  }
  return value
}

/** True when a secret option's command-line text is the secret itself (visible in `ps`), not `@FILE` or `env:NAME`. */
export function isLiteralSecret(text: string): boolean {
  return text !== '' && !text.startsWith('@') && !text.startsWith('env:')
}

/** Turn the text of `key=value` from the command line into the option's type; validation follows in resolveOptions. */
export function parseOptionText(stage: string, key: string, opt: OptionSpec, text: string | true): unknown {
  const bad = (expected: string): never => {
    throw new InvalidOptionError(stage, key, `expected ${expected} for ${key} but received '${text}'`)
  }
  if (text === true) {
    if (opt.type === 'boolean') return true
    return bad(`${key}=<${opt.type}>`)
  }
  switch (opt.type) {
    case 'int':
      return /^[-+]?\d+$/.test(text) ? Number(text) : bad('integer')
    case 'number':
      return /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(text) ? Number(text) : bad('number')
    case 'boolean': {
      const t = text.toLowerCase()
      if (['true', 'yes', 'on', '1'].includes(t)) return true
      if (['false', 'no', 'off', '0'].includes(t)) return false
      return bad('boolean (true/false)')
    }
    case 'duration':
      return parseDuration(text) ?? bad('duration such as 500ms, 2s, 1.5m (a bare number is seconds)')
    case 'size':
      return parseSize(text) ?? bad('size such as 65536, 64KiB, 16MiB')
    default:
      return text
  }
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
/**
 * Milliseconds from the command-line text of a duration: `500ms`, `2s`,
 * `1.5m`, `1h`, or `[HH:]MM:SS[.m]`; a bare number is seconds (`15` = 15 s),
 * as ffmpeg reads it.
 */
export function parseDuration(text: string): number | undefined {
  const clock = /^(?:(\d+):)?([0-5]?\d):([0-5]?\d(?:\.\d+)?)$/.exec(text.trim())
  if (clock) {
    // ffmpeg's [HH:]MM:SS[.m…] form, e.g. -t 00:01:30.
    return Math.round(((Number(clock[1] ?? 0) * 60 + Number(clock[2])) * 60 + Number(clock[3])) * 1e6) / 1000
  }
  const m = /^(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)?$/.exec(text.trim())
  if (!m) return undefined
  // Rounded to a microsecond: 0.1 * 1000 must not read as 100.00000000000001 ms.
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 's']! * 1000) / 1000
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 2 ** 20,
  mb: 1e6,
  mib: 2 ** 20,
  g: 2 ** 30,
  gb: 1e9,
  gib: 2 ** 30,
}
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim())
  if (!m) return undefined
  const mult = SIZE_UNITS[m[2]!.toLowerCase()]
  if (mult === undefined) return undefined
  const n = Number(m[1]) * mult
  return Number.isInteger(n) ? n : Math.round(n)
}

export function formatDefault(opt: OptionSpec): string {
  if (opt.required) return '(required)'
  if (opt.default === undefined) return ''
  if (opt.type === 'size') return formatBytes(opt.default)
  if (opt.type === 'duration') return formatDuration(opt.default)
  if (opt.type === 'secret') return opt.default ? '(set)' : '(none)'
  if (opt.type === 'string' && opt.default === '') return "''"
  return String(opt.default)
}

export function formatType(opt: OptionSpec): string {
  if (opt.type === 'enum') return opt.values.join(' \\| ')
  if (opt.type === 'duration') {
    const range = opt.min !== undefined || opt.max !== undefined ? ` ${fmtBound(opt.min)}..${fmtBound(opt.max)}` : ''
    return `duration${range}`
  }
  const range =
    opt.type !== 'string' && opt.type !== 'boolean' && opt.type !== 'secret' && (opt.min !== undefined || opt.max !== undefined)
      ? ` ${opt.min ?? ''}..${opt.max ?? ''}`
      : ''
  return opt.type + range
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30 && n % 2 ** 30 === 0) return `${n / 2 ** 30}GiB`
  if (n >= 2 ** 20 && n % 2 ** 20 === 0) return `${n / 2 ** 20}MiB`
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024}KiB`
  return String(n)
}

/** A duration as the CLI reads it back: `2s`, `1.5s`, `500ms`, `0s`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s'
  if (ms >= 1000 && Number.isInteger(ms / 100)) return `${ms / 1000}s`
  return `${ms}ms`
}

function fmtBound(ms: number | undefined): string {
  return ms === undefined ? '' : formatDuration(ms)
}

/** The candidate nearest to `word` by edit distance, when it is near enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestScore = Infinity
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase())
    if (d < bestScore) {
      bestScore = d
      best = c
    }
  }
  return best !== undefined && bestScore <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.length]!
}
