// `unprefix header=auto`: recognise a peer's length header from its first
// bytes. Every format is tried as if it were the right one, walking frame to
// frame over the bytes seen so far: a format stays a candidate while each
// length fits maxFrameBytes and each payload starts with a JPEG, PNG or WebP
// signature (native needs none: its magic is evidence enough). Lengths alone
// cannot tell u32le from ii or u32be from u32le on arbitrary payloads, so
// auto decides only on image payloads and otherwise asks for `header=`.

import { FramePipeError } from '../core/errors.js'
import {
  ASCII_MAX_DIGITS,
  decodeHeader,
  HEADER_BYTES,
  hex,
  isDigit,
  NATIVE_HEADER_BYTES,
  NATIVE_VERSION,
  type HeaderFormat,
} from './headers.js'

/** Order of the candidates in messages. */
export const AUTO_FORMATS: readonly HeaderFormat[] = ['native', 'u32be', 'u32le', 'ii', 'i64le', 'ascii']

/**
 * Bytes held while two formats both still fit (u32be and u32le can, when a
 * length's low byte is 0..4): enough for a few frames of either reading.
 * Beyond it the stream is called ambiguous.
 */
export const DETECT_LIMIT = 2 ** 20

// FF D8 FF; 89 'PNG' CR LF SUB LF; 'RIFF' <size> 'WEBP' (-1: any byte).
const MAGIC = Buffer.from('FRMP', 'latin1')

const SIGNATURES: ReadonlyArray<readonly number[]> = [
  [0xff, 0xd8, 0xff],
  [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
  [0x52, 0x49, 0x46, 0x46, -1, -1, -1, -1, 0x57, 0x45, 0x42, 0x50],
]

/**
 * Does the payload of `length` bytes at `start` begin with an image
 * signature? `match`: the offset just past the signature; `pending`: the bytes
 * up to `available` still allow one; `deadAt`: the offset by which the last
 * possible signature was excluded.
 */
function imageStart(
  b: Buffer,
  start: number,
  length: number,
  available: number,
): { match: number } | { pending: true } | { deadAt: number } {
  let pending = false
  let deadAt = start + 1
  for (const sig of SIGNATURES) {
    if (sig.length > length) continue
    const end = Math.min(available, start + sig.length)
    let mismatch = -1
    for (let i = start; i < end && mismatch < 0; i++) {
      const want = sig[i - start]!
      if (want >= 0 && b[i] !== want) mismatch = i
    }
    if (mismatch >= 0) {
      deadAt = Math.max(deadAt, mismatch + 1)
      continue
    }
    if (end === start + sig.length) return { match: end }
    pending = true
  }
  return pending ? { pending: true } : { deadAt }
}

/**
 * How `b` reads as a stream of one format, as offsets: the reading dies once
 * `deadAt` bytes have arrived (Infinity: not within `b`), and a frame's header
 * and signature were seen once each offset of `verifiedAt` had arrived.
 * Offsets, not a verdict on all of `b`, make the decision independent of how
 * the bytes were chunked: it is taken at the first offset where it can be.
 */
interface Walk {
  format: HeaderFormat
  deadAt: number
  verifiedAt: number[]
  /** Offset by which the first length header was found plausible (Infinity: never). */
  headerFitsAt: number
  /** The bytes end exactly where a frame ends. */
  complete: boolean
}

function walk(format: HeaderFormat, b: Buffer, maxFrameBytes: number): Walk {
  const w: Walk = { format, deadAt: Infinity, verifiedAt: [], headerFitsAt: Infinity, complete: false }
  const n = b.length
  const dead = (at: number): Walk => {
    w.deadAt = at
    return w
  }
  let pos = 0
  for (;;) {
    if (pos === n) {
      w.complete = pos > 0
      return w
    }
    let payload: number
    let length: number
    let headerEnd: number
    if (format === 'ascii') {
      let digits = 0
      let value = 0
      while (pos + digits < n && isDigit(b[pos + digits]!)) {
        if (digits === ASCII_MAX_DIGITS) return dead(pos + digits + 1)
        value = value * 10 + b[pos + digits]! - 0x30
        digits++
      }
      if (pos + digits === n) return w
      headerEnd = pos + digits + 1
      // prefix never writes an empty ascii frame: its digits would join the next length.
      if (digits === 0 || value === 0 || value > maxFrameBytes) return dead(headerEnd)
      payload = pos + digits
      length = value
    } else if (format === 'native') {
      const have = n - pos
      for (let i = 0; i < Math.min(4, have); i++) if (b[pos + i] !== MAGIC[i]) return dead(pos + i + 1)
      if (have < 8) return w
      if (b[pos + 4] !== NATIVE_VERSION || b.readUInt16BE(pos + 6) < NATIVE_HEADER_BYTES) return dead(pos + 8)
      // Magic, version and header length: as good as a signature.
      if (pos === 0) w.headerFitsAt = 8
      w.verifiedAt.push(pos + 8)
      if (have < 12) return w
      length = b.readUInt32BE(pos + 8)
      if (length > maxFrameBytes) return dead(pos + 12)
      payload = pos + b.readUInt16BE(pos + 6)
      headerEnd = pos + 12
    } else {
      const size = HEADER_BYTES[format]
      if (n - pos < size) return w
      headerEnd = pos + size
      const header = decodeHeader(format, b.subarray(pos, headerEnd), 'auto')
      if (header instanceof FramePipeError || header.length > maxFrameBytes) return dead(headerEnd)
      payload = headerEnd
      length = header.length
    }
    if (pos === 0 && w.headerFitsAt === Infinity) w.headerFitsAt = headerEnd
    if (format !== 'native' && length > 0) {
      const m = imageStart(b, payload, length, n)
      if ('deadAt' in m) return dead(m.deadAt)
      if ('pending' in m) return w
      w.verifiedAt.push(m.match)
    }
    pos = payload + length
    if (pos > n) return w
  }
}

export type Verdict =
  | { kind: 'wait' }
  | { kind: 'found'; format: HeaderFormat }
  /** The peer's bytes ended before any format could be told (only with `final`). */
  | { kind: 'short' }
  | { kind: 'error'; error: FramePipeError }

/**
 * Which header format the stream starting with `b` uses. `final`: no more
 * bytes will come from this peer (end of stream or a Boundary), so a format
 * that ends exactly at a frame end wins a tie.
 */
export function detectHeader(b: Buffer, final: boolean, maxFrameBytes: number, stage: string): Verdict {
  const walks = AUTO_FORMATS.map((f) => walk(f, b, maxFrameBytes))
  const offsets = new Set<number>()
  for (const w of walks) {
    if (w.deadAt <= b.length) offsets.add(w.deadAt)
    for (const v of w.verifiedAt) offsets.add(v)
  }
  for (const k of [...offsets].sort((x, y) => x - y)) {
    const alive = walks.filter((w) => w.deadAt > k)
    if (alive.length === 0) return { kind: 'error', error: noFit(b.subarray(0, k), walks, stage) }
    const found = choose(alive, k)
    if (found) return { kind: 'found', format: found }
  }
  const alive = walks.filter((w) => w.deadAt > b.length)
  if (final) {
    const complete = alive.filter((w) => w.complete && w.verifiedAt.length > 0)
    if (complete.length === 1) return { kind: 'found', format: complete[0]!.format }
    if (complete.length > 1) return { kind: 'error', error: ambiguous(b, complete, stage) }
    return { kind: 'short' }
  }
  if (b.length >= DETECT_LIMIT) return { kind: 'error', error: ambiguous(b, alive, stage) }
  return { kind: 'wait' }
}

/** The format to use once `k` bytes have arrived, if the readings still alive then allow a choice. */
function choose(alive: readonly Walk[], k: number): HeaderFormat | undefined {
  const verified = (w: Walk) => w.verifiedAt.filter((v) => v <= k).length
  if (alive.length === 1) return verified(alive[0]!) > 0 ? alive[0]!.format : undefined
  const ranked = alive.map((w) => ({ w, v: verified(w) })).sort((x, y) => y.v - x.v)
  // Two frames in a row of one reading while every other reading is still
  // inside its first payload: those readings would need that payload to hold
  // a valid-looking header and image signature.
  if (ranked[0]!.v >= 2 && ranked.slice(1).every((r) => r.v <= 1)) return ranked[0]!.w.format
  return undefined
}

function firstBytes(b: Buffer): string {
  return `the first ${b.length} byte${b.length === 1 ? '' : 's'} (${hex(b.subarray(0, 16))}${b.length > 16 ? ' …' : ''})`
}

function noFit(b: Buffer, walks: readonly Walk[], stage: string): FramePipeError {
  const fits = walks.filter((w) => w.headerFitsAt <= b.length).map((w) => w.format)
  const why =
    fits.length === 0
      ? `fit none of ${AUTO_FORMATS.join(', ')}`
      : `fit the length header of ${fits.join(', ')}, but no JPEG, PNG or WebP signature starts the payload, so auto cannot choose`
  return new FramePipeError('ERR_BAD_HEADER', `header=auto cannot recognise ${firstBytes(b)}: they ${why}; give header= explicitly`, {
    stage,
  })
}

function ambiguous(b: Buffer, walks: readonly Walk[], stage: string): FramePipeError {
  return new FramePipeError(
    'ERR_BAD_HEADER',
    `header=auto cannot choose: ${firstBytes(b)} fit ${walks.map((w) => w.format).join(', ')} equally well; give header= explicitly`,
    { stage },
  )
}
