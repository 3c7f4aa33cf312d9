// File-name patterns for sinks: `frame-%06d.{ext}`, `cam-{seq}.{ext}`.
// A pattern is compiled once into literal parts and token functions, so bad
// patterns fail when the stage is created and naming a frame is a join.
// New tokens (e.g. dates from `timestamp`) are one entry in TOKENS.

import type { FrameFormat } from '../frame.js'
import { FramePipeError } from '../errors.js'

/** What a file name can be made of. */
export interface NameVars {
  /** Running index of the file (`start` + files written so far). */
  index: number
  /** frame.seq */
  seq: number
  /** Extension for the frame's format, without the dot. */
  ext: string
  /** frame.timestamp, ms since the epoch; for date/time tokens. */
  timestamp: number
}

export type NameFn = (vars: NameVars) => string

/** `{name}` tokens. */
const TOKENS: Record<string, (v: NameVars) => string> = {
  seq: (v) => String(v.seq),
  ext: (v) => v.ext,
}

export const NAME_TOKENS: readonly string[] = ['%d', '%0Nd', '%%', ...Object.keys(TOKENS).map((k) => `{${k}}`)]

const EXTENSIONS: Record<FrameFormat, string> = { jpeg: 'jpg', png: 'png', webp: 'webp', raw: 'raw', unknown: 'bin' }

export function extensionFor(format: FrameFormat): string {
  return EXTENSIONS[format] ?? 'bin'
}

/**
 * Compile a pattern: `%d` is the index, `%0Nd` the index zero-padded to N
 * digits, `%%` a literal %, `{seq}` frame.seq, `{ext}` the extension. Any
 * other `%` or `{` sequence is refused with ERR_INVALID_OPTION.
 */
export function compilePattern(pattern: string, stage?: string, option = 'pattern'): NameFn {
  const fail = (why: string): never => {
    throw new FramePipeError('ERR_INVALID_OPTION', `${why} in ${option} '${pattern}' (tokens: ${NAME_TOKENS.join(' ')})`, { stage })
  }
  if (pattern === '') fail('empty file name')
  const parts: Array<string | ((v: NameVars) => string)> = []
  let literal = ''
  const flush = () => {
    if (literal) parts.push(literal)
    literal = ''
  }
  for (let i = 0; i < pattern.length; ) {
    const ch = pattern[i]!
    if (ch === '%') {
      const m = /^%(?:%|d|0(\d{1,2})d)/.exec(pattern.slice(i))
      if (!m) fail(`unknown %-token at position ${i} (write %% for a literal %)`)
      if (m![0] === '%%') {
        literal += '%'
      } else {
        flush()
        const width = m![1] === undefined ? 0 : Number(m![1])
        parts.push(width ? (v) => String(v.index).padStart(width, '0') : (v) => String(v.index))
      }
      i += m![0].length
    } else if (ch === '{') {
      const end = pattern.indexOf('}', i)
      const name = end < 0 ? undefined : pattern.slice(i + 1, end)
      const token = name !== undefined && Object.hasOwn(TOKENS, name) ? TOKENS[name] : undefined
      if (!token) fail(end < 0 ? `unclosed '{' at position ${i}` : `unknown token {${name}}`)
      flush()
      parts.push(token!)
      i = end + 1
    } else {
      literal += ch
      i++
    }
  }
  flush()
  return (v) => {
    let out = ''
    for (const p of parts) out += typeof p === 'string' ? p : p(v)
    return out
  }
}
