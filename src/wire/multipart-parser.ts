// Split a multipart/x-mixed-replace byte stream (MJPEG over HTTP, as IP
// cameras, mjpg-streamer and the `http` sink send it) into its parts.
//
//   --BOUNDARY\r\n
//   Content-Type: image/jpeg\r\n
//   Content-Length: 5120\r\n          (optional)
//   \r\n
//   <5120 bytes of JPEG>\r\n
//   --BOUNDARY\r\n …
//
// A part with Content-Length is read by count: a zero-copy view when it lies
// inside one chunk, exactly one allocation (of a length already checked
// against maxFrameBytes) otherwise. A part without it ends at the next
// boundary: the search keeps views on the chunks (small chunks are packed
// into blocks so a trickle of 1-byte chunks does not become millions of
// views), carries only the last |delimiter|-1 bytes across chunk edges, so
// every byte is looked at a bounded number of times, and gives up once more
// than maxFrameBytes are held.
//
// Real cameras bend the format, and the parser bends with them: the boundary
// parameter may already start with `--`; lines may end in LF alone; CRLFs may
// precede the boundary or be missing before it; the boundary may be missing
// from the Content-Type (the first `--…` line is taken); a JPEG may follow the
// boundary line with no headers at all. Anything else out of place (garbage
// after a part, an overlong header block, a mangled boundary line) is counted
// in `corrupt` and skipped up to the next boundary. Errors are returned, never
// thrown: only a part over maxFrameBytes, or a stream with no boundary to
// find, stops the parser.

import { FramePipeError, FrameTooLargeError } from '../core/errors.js'
import { MARKER as JPEG_MARKER } from './jpeg.js'
import { CutFrameError, type ByteParser, type ByteParserOptions } from './parser.js'

/** maxFrameBytes: the largest part accepted; a bigger Content-Length, or a part without one that grows past this, is an error. */
export interface MultipartParserOptions extends ByteParserOptions {
  /** The boundary parameter of the Content-Type (leading `--` allowed); null or '': take the first `--…` line. */
  boundary?: string | null
  /** Largest block of part headers; a longer one is treated as corruption (default 16 KiB). */
  maxHeaderBytes?: number
  /** Called with the part's body (a view or a fresh buffer, never reused by the parser) and its headers (names lower-case). */
  onPart(body: Buffer, headers: PartHeaders): void
  /** Called each time the parser skips bytes to resynchronise; `reason` is one line. */
  onCorrupt?(reason: string): void
}

export type PartHeaders = ReadonlyMap<string, string>

const CR = 0x0d
const LF = 0x0a
const DASH = 0x2d
const SP = 0x20
const TAB = 0x09
/** A boundary line longer than this is not one. */
const MAX_LINE = 256
/** Without a boundary in the Content-Type, give up when none appears within this many bytes. */
const SNIFF_LIMIT = 64 * 1024
/** Chunks smaller than this are copied into a block instead of being kept as views. */
const SMALL = 1024
const BLOCK = 16 * 1024
/** At most this many extra dashes before `--name` belong to the delimiter (a boundary parameter that began with `--`). */
const MAX_EXTRA_DASHES = 8
const EMPTY = Buffer.alloc(0)
const NO_HEADERS: PartHeaders = new Map()

type State = 'sniff' | 'seek' | 'line' | 'headers' | 'length' | 'search'

/** The boundary parameter of a Content-Type header (quotes removed), or null when it has none. */
export function boundaryFromContentType(contentType: string | undefined): string | null {
  if (!contentType) return null
  const m = /;\s*boundary\s*=\s*(?:"([^"]*)"|([^;\s]+))/i.exec(contentType)
  const value = (m?.[1] ?? m?.[2] ?? '').trim()
  return value === '' ? null : value
}

export class MultipartParser implements ByteParser {
  /** Parts handed to onPart. */
  parts = 0
  /** Times bytes were skipped to find the next boundary. */
  corrupt = 0
  /** Parts cut short by end(). */
  truncated = 0

  private readonly maxFrameBytes: number
  private readonly stage: string
  private readonly onPart: (body: Buffer, headers: PartHeaders) => void
  private readonly onCorrupt: ((reason: string) => void) | undefined
  private readonly head: Buffer
  private state: State
  /** `--` + boundary name; null until sniffed. */
  private delim: Buffer | null = null
  /** The last |delim|-1 bytes of the searched region in its first half, room for as many of the next chunk in its second. */
  private edge: Buffer = EMPTY
  private carryLen = 0
  /** seek: non-whitespace before the boundary is corruption (after a part, not in the preamble). */
  private strict = false
  private flagged = false
  /** seek: bytes skipped so far, and the offset of the first one that is not line-end filler (-1: none). */
  private seekPos = 0
  private junkAt = -1
  private lineLen = 0
  private lineDashes = 0
  private lineOther = 0
  private headLen = 0
  private headLineStart = 0
  private sniffed = 0
  private sniffOverflow = false
  private headers: PartHeaders = NO_HEADERS
  /** length: the announced body length, and its buffer once the body spans chunks. */
  private need = 0
  private body: Buffer | undefined
  private filled = 0
  /** search: the body so far as views and packed blocks, and its length. */
  private pieces: Buffer[] = []
  private kept = 0
  private block: Buffer | undefined
  private blockLen = 0

  constructor(options: MultipartParserOptions) {
    this.maxFrameBytes = options.maxFrameBytes
    this.stage = options.stage ?? 'multipart'
    this.onPart = options.onPart
    this.onCorrupt = options.onCorrupt
    this.head = Buffer.allocUnsafe(Math.max(MAX_LINE, options.maxHeaderBytes ?? 16 * 1024))
    const name = (options.boundary ?? '').trim().replace(/^-+/, '')
    if (name === '') {
      this.state = 'sniff'
    } else {
      this.setBoundary(name)
      this.state = 'seek'
    }
  }

  /** Bytes held for the part in progress (for tests and monitoring). */
  get buffered(): number {
    if (this.state === 'length') return this.body ? this.need : 0
    if (this.state === 'search') return this.kept + this.blockLen
    return this.headLen
  }

  /** Parse the next chunk of the stream. Returns the error that stops the parser, if any. */
  feed(buf: Buffer): FramePipeError | undefined {
    let pos = 0
    while (pos < buf.length) {
      let next: number | FramePipeError
      switch (this.state) {
        case 'sniff':
          next = this.sniff(buf, pos)
          break
        case 'seek':
          next = this.seek(buf, pos)
          break
        case 'line':
          next = this.line(buf, pos)
          break
        case 'headers':
          next = this.readHeaders(buf, pos)
          break
        case 'length':
          next = this.readCounted(buf, pos)
          break
        case 'search':
          next = this.readUntilBoundary(buf, pos)
          break
      }
      if (typeof next !== 'number') return next
      pos = next
    }
    return undefined
  }

  /** The stream ended: a part in progress is dropped (counted in truncated) and returned as the error. */
  end(): CutFrameError | undefined {
    let dropped = 0
    let inPart = true
    if (this.state === 'length') dropped = this.body ? this.filled : 0
    else if (this.state === 'search') dropped = this.kept + this.blockLen
    else if (this.state === 'headers') dropped = this.headLen
    else inPart = false
    const cut = inPart && (dropped > 0 || this.state === 'length')
    this.body = undefined
    this.pieces = []
    this.block = undefined
    this.toSeek(false)
    if (!cut) return undefined
    this.truncated++
    return new CutFrameError(this.stage, 'a part', dropped)
  }

  // ------------------------------------------------------------- states

  private setBoundary(name: string): void {
    this.delim = Buffer.from('--' + name, 'latin1')
    this.edge = Buffer.allocUnsafe(2 * (this.delim.length - 1))
  }

  /** No boundary given: the first line that starts with `--` is the delimiter. */
  private sniff(buf: Buffer, pos: number): number | FramePipeError {
    const nl = buf.indexOf(LF, pos)
    const stop = nl < 0 ? buf.length : nl + 1
    const n = stop - pos
    this.sniffed += n
    if (!this.sniffOverflow) {
      if (this.headLen + n > MAX_LINE) {
        this.sniffOverflow = true
      } else {
        buf.copy(this.head, this.headLen, pos, stop)
        this.headLen += n
      }
    }
    if (nl >= 0) {
      if (!this.sniffOverflow) {
        const line = this.head.toString('latin1', 0, this.headLen).trim()
        // Names may end in dashes, so a first line that is a close delimiter (`--name--`) would be misread; streams do not start with one.
        const name = line.startsWith('--') ? line.slice(2).replace(/^-+/, '') : ''
        if (name !== '' && !/\s/.test(name)) {
          this.setBoundary(name)
          this.toHeaders()
          return stop
        }
      }
      this.headLen = 0
      this.sniffOverflow = false
    }
    if (this.sniffed > SNIFF_LIMIT) {
      return new FramePipeError(
        'ERR_BAD_HEADER',
        `no multipart boundary in the Content-Type and no '--boundary' line in the first ${SNIFF_LIMIT} bytes`,
        { stage: this.stage },
      )
    }
    return stop
  }

  /** Skip to the next delimiter (preamble, the CRLF after a part, or garbage). */
  private seek(buf: Buffer, pos: number): number {
    const found = this.find(buf, pos)
    const base = this.seekPos
    if (this.strict && !this.flagged && this.junkAt < 0) {
      // The first byte that is not line-end filler; whether it is junk depends on where the delimiter starts.
      const stop = found ? pos + found.end : buf.length
      for (let i = pos; i < stop; i++) {
        const c = buf[i]!
        if (c !== CR && c !== LF && c !== SP && c !== TAB && c !== DASH) {
          this.junkAt = base + i - pos
          break
        }
      }
    }
    if (found) {
      if (this.strict && !this.flagged && this.junkAt >= 0 && this.junkAt < base + found.start)
        this.corrupted('unexpected bytes after a part')
      this.toLine()
      return pos + found.end
    }
    this.seekPos = base + buf.length - pos
    // Bytes older than the carried tail can no longer begin a delimiter: report now rather than at the next boundary.
    if (this.strict && !this.flagged && this.junkAt >= 0 && this.junkAt < this.seekPos - (this.delim!.length - 1)) {
      this.flagged = true
      this.corrupted('unexpected bytes after a part')
    }
    this.remember(buf, pos)
    return buf.length
  }

  /** The rest of the delimiter line: empty (headers follow), `--` (the last part) or corruption. */
  private line(buf: Buffer, pos: number): number {
    while (pos < buf.length) {
      const c = buf[pos++]!
      if (c === LF) {
        if (this.lineOther > 0) {
          this.corrupted('a boundary line with trailing bytes')
          this.toSeek(true)
        } else if (this.lineDashes > 0) {
          // The close delimiter; a server may still start over after it.
          this.toSeek(false)
        } else {
          this.toHeaders()
        }
        return pos
      }
      if (++this.lineLen > MAX_LINE) {
        this.corrupted('an overlong boundary line')
        this.toSeek(true)
        return pos
      }
      if (c === DASH) this.lineDashes++
      else if (c !== CR && c !== SP && c !== TAB) this.lineOther++
    }
    return pos
  }

  private readHeaders(buf: Buffer, pos: number): number | FramePipeError {
    if (this.headLen === 0 && buf[pos] === JPEG_MARKER) {
      // A JPEG right after the boundary line: a camera that sends no part headers.
      this.headers = NO_HEADERS
      this.toSearch()
      return pos
    }
    while (pos < buf.length) {
      const nl = buf.indexOf(LF, pos)
      const stop = nl < 0 ? buf.length : nl + 1
      const n = stop - pos
      if (this.headLen + n > this.head.length) {
        this.corrupted(`part headers longer than ${this.head.length} bytes`)
        this.toSeek(true)
        return pos
      }
      buf.copy(this.head, this.headLen, pos, stop)
      this.headLen += n
      pos = stop
      if (nl < 0) return pos
      const len = this.headLen - 1 - this.headLineStart
      if (len === 0 || (len === 1 && this.head[this.headLineStart] === CR)) return this.startBody(pos)
      this.headLineStart = this.headLen
    }
    return pos
  }

  private startBody(pos: number): number | FramePipeError {
    const headers = parseHeaders(this.head.toString('latin1', 0, this.headLineStart))
    this.headers = headers
    const text = headers.get('content-length')
    if (text !== undefined && /^\d{1,15}$/.test(text)) {
      const length = Number(text)
      if (length > this.maxFrameBytes) return new FrameTooLargeError(this.stage, length, this.maxFrameBytes)
      this.state = 'length'
      this.need = length
      this.body = undefined
      this.filled = 0
      if (length === 0) this.finishCounted(EMPTY)
      return pos
    }
    this.toSearch()
    return pos
  }

  private readCounted(buf: Buffer, pos: number): number {
    const need = this.need
    if (this.body === undefined) {
      if (buf.length - pos >= need) {
        this.finishCounted(buf.subarray(pos, pos + need))
        return pos + need
      }
      this.body = Buffer.allocUnsafe(need)
      this.filled = 0
    }
    const n = Math.min(need - this.filled, buf.length - pos)
    buf.copy(this.body, this.filled, pos, pos + n)
    this.filled += n
    if (this.filled === need) {
      const body = this.body
      this.body = undefined
      this.finishCounted(body)
    }
    return pos + n
  }

  private finishCounted(body: Buffer): void {
    const headers = this.headers
    this.toSeek(true)
    this.emit(body, headers)
  }

  /** A part without Content-Length: everything up to the line end before the next delimiter. */
  private readUntilBoundary(buf: Buffer, pos: number): number | FramePipeError {
    const found = this.find(buf, pos)
    if (!found) {
      this.keep(buf, pos)
      this.remember(buf, pos)
      if (this.kept + this.blockLen > this.maxFrameBytes + this.delim!.length + MAX_EXTRA_DASHES + 2) return this.tooLarge()
      return buf.length
    }
    this.flushBlock()
    const before = this.kept
    const end = this.trimDelimiterLine(before + found.start, buf, pos, before)
    if (end > this.maxFrameBytes) return this.tooLarge()
    const body = this.assemble(end, buf, pos, before)
    const headers = this.headers
    this.pieces = []
    this.kept = 0
    this.toLine()
    this.emit(body, headers)
    return pos + found.end
  }

  // ------------------------------------------------------------- helpers

  /**
   * The next delimiter at or after `pos`, also one that begins in the carried
   * bytes of earlier chunks: start and end relative to `pos` (start < 0 when
   * it began in an earlier chunk).
   */
  private find(buf: Buffer, pos: number): { start: number; end: number } | null {
    const delim = this.delim!
    if (this.carryLen > 0) {
      const n = Math.min(delim.length - 1, buf.length - pos)
      buf.copy(this.edge, this.carryLen, pos, pos + n)
      const i = this.edge.subarray(0, this.carryLen + n).indexOf(delim)
      if (i >= 0) return { start: i - this.carryLen, end: i - this.carryLen + delim.length }
    }
    const j = buf.indexOf(delim, pos)
    return j < 0 ? null : { start: j - pos, end: j - pos + delim.length }
  }

  /** Carry the last |delim|-1 bytes searched into the next chunk's search. */
  private remember(buf: Buffer, from: number): void {
    const keep = this.edge.length / 2
    const len = buf.length - from
    if (len >= keep) {
      buf.copy(this.edge, 0, buf.length - keep)
      this.carryLen = keep
      return
    }
    const old = Math.min(this.carryLen, keep - len)
    this.edge.copyWithin(0, this.carryLen - old, this.carryLen)
    buf.copy(this.edge, old, from)
    this.carryLen = old + len
  }

  /** Keep buf[from..] as part of the body: big chunks as views, small ones packed into a block. */
  private keep(buf: Buffer, from: number): void {
    const len = buf.length - from
    if (len === 0) return
    if (len >= SMALL) {
      this.flushBlock()
      this.pieces.push(buf.subarray(from))
      this.kept += len
      return
    }
    if (this.block && this.blockLen + len > this.block.length) this.flushBlock()
    this.block ??= Buffer.allocUnsafe(BLOCK)
    buf.copy(this.block, this.blockLen, from)
    this.blockLen += len
  }

  private flushBlock(): void {
    if (!this.block || this.blockLen === 0) return
    this.pieces.push(this.block.subarray(0, this.blockLen))
    this.kept += this.blockLen
    this.block = undefined
    this.blockLen = 0
  }

  /** Where the body ends, given where the delimiter starts: before `\n` or `\r\n`, and before extra dashes on the delimiter line. */
  private trimDelimiterLine(end: number, buf: Buffer, pos: number, before: number): number {
    const at = (i: number): number => this.byteAt(i, buf, pos, before)
    let k = end
    while (k > 0 && end - k < MAX_EXTRA_DASHES && at(k - 1) === DASH) k--
    if (k < end && (k === 0 || at(k - 1) === LF)) end = k
    if (end > 0 && at(end - 1) === LF) {
      end--
      if (end > 0 && at(end - 1) === CR) end--
    }
    return end
  }

  /** Byte `i` of the body in progress: in the kept pieces, or in `buf` from `pos` on. */
  private byteAt(i: number, buf: Buffer, pos: number, before: number): number {
    if (i >= before) return buf[pos + i - before]!
    let offset = before
    for (let p = this.pieces.length - 1; p >= 0; p--) {
      const piece = this.pieces[p]!
      offset -= piece.length
      if (i >= offset) return piece[i - offset]!
    }
    return -1
  }

  /** The first `length` bytes of the body: a view when it lies in `buf` alone, else one allocation. */
  private assemble(length: number, buf: Buffer, pos: number, before: number): Buffer {
    if (before === 0) return buf.subarray(pos, pos + length)
    const out = Buffer.allocUnsafe(length)
    let filled = 0
    for (const piece of this.pieces) {
      if (filled >= length) break
      const n = Math.min(piece.length, length - filled)
      piece.copy(out, filled, 0, n)
      filled += n
    }
    if (filled < length) buf.copy(out, filled, pos, pos + length - filled)
    return out
  }

  private tooLarge(): FramePipeError {
    return new FramePipeError(
      'ERR_FRAME_TOO_LARGE',
      `a part without Content-Length grew past maxFrameBytes (${this.maxFrameBytes}) before its boundary`,
      { stage: this.stage },
    )
  }

  private emit(body: Buffer, headers: PartHeaders): void {
    this.parts++
    this.onPart(body, headers)
  }

  private corrupted(reason: string): void {
    this.corrupt++
    this.onCorrupt?.(`${reason}; skipping to the next boundary`)
  }

  private toSeek(strict: boolean): void {
    this.state = this.delim ? 'seek' : 'sniff'
    this.strict = strict
    this.flagged = false
    this.seekPos = 0
    this.junkAt = -1
    this.carryLen = 0
    this.headLen = 0
  }

  private toLine(): void {
    this.state = 'line'
    this.lineLen = this.lineDashes = this.lineOther = 0
  }

  private toHeaders(): void {
    this.state = 'headers'
    this.headLen = 0
    this.headLineStart = 0
  }

  private toSearch(): void {
    this.state = 'search'
    this.pieces = []
    this.kept = 0
    this.block = undefined
    this.blockLen = 0
    this.carryLen = 0
  }
}

/** `Name: value` lines (LF or CRLF) into a map with lower-case names; lines without a colon are ignored. */
export function parseHeaders(text: string): Map<string, string> {
  const headers = new Map<string, string>()
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
  }
  return headers
}
