// Length headers shared by `prefix` (encode) and `unprefix` (decode). Five
// formats speak the seeds' wires; `native` is frame-pipe's own, which carries
// the frame's metadata and an optional CRC-32 of the payload.

import { crc32 } from '../core/builtins.js'
import { FramePipeError } from '../core/errors.js'
import { FRAME_FORMATS, type Frame, type FrameFormat } from '../core/frame.js'

export const HEADER_FORMATS = ['u32be', 'u32le', 'ii', 'i64le', 'native', 'ascii'] as const
export type HeaderFormat = (typeof HEADER_FORMATS)[number]
/** Formats whose header has a fixed size (ascii's is 1..10 digits, ended by the payload's first byte). */
export const FIXED_HEADER_FORMATS = ['u32be', 'u32le', 'ii', 'i64le', 'native'] as const
export type FixedHeaderFormat = (typeof FIXED_HEADER_FORMATS)[number]
/** What `unprefix` accepts: every format, or `auto` to recognise it from each peer's first bytes. */
export const UNPREFIX_HEADERS = [...HEADER_FORMATS, 'auto'] as const
export type UnprefixHeader = (typeof UNPREFIX_HEADERS)[number]

/** ascii: at most this many digits (9 999 999 999 is more than any maxFrameBytes). */
export const ASCII_MAX_DIGITS = 10

export function isFixedFormat(format: string): format is FixedHeaderFormat {
  return (FIXED_HEADER_FORMATS as readonly string[]).includes(format)
}

export function isDigit(byte: number): boolean {
  return byte >= 0x30 && byte <= 0x39
}

export const NATIVE_MAGIC = 0x46524d50 // "FRMP"
export const NATIVE_VERSION = 1
export const NATIVE_HEADER_BYTES = 40
export const NATIVE_FLAG_CRC = 0x01
/** Index = the format byte of a native header. */
export const NATIVE_FORMAT_CODES: readonly FrameFormat[] = ['unknown', 'raw', 'jpeg', 'png', 'webp']

/** Bytes a reader gathers before it can decode a header. A native header may announce more (see DecodedHeader.extra). */
export const HEADER_BYTES: Readonly<Record<FixedHeaderFormat, number>> = {
  u32be: 4,
  u32le: 4,
  ii: 8,
  i64le: 8,
  native: NATIVE_HEADER_BYTES,
}

/** Largest payload each format can announce; a sender refuses bigger frames. */
export const MAX_ENCODABLE: Readonly<Record<HeaderFormat, number>> = {
  u32be: 2 ** 32 - 1,
  u32le: 2 ** 32 - 1,
  ii: 2 ** 31 - 1,
  i64le: Number.MAX_SAFE_INTEGER,
  native: 2 ** 32 - 1,
  ascii: 10 ** ASCII_MAX_DIGITS - 1,
}

/** Frame metadata carried by a native header. */
export type FrameMeta = Omit<Frame, 'data'>

export interface DecodedHeader {
  /** Payload length. Exact up to 2^53; only i64le can announce more, and that is far above any maxFrameBytes. */
  length: number
  /** Header bytes after the fixed part, which this reader skips (native H > 40). */
  extra: number
  /** CRC-32 the payload must have, or -1 when the header carries none. */
  crc: number
  /** Native only. */
  meta: FrameMeta | undefined
}

/** A sender's check: can `format` announce a payload of `length` bytes? */
export function checkSendLength(format: HeaderFormat, length: number, stage: string): FramePipeError | undefined {
  const max = MAX_ENCODABLE[format]
  if (length <= max) return undefined
  return new FramePipeError('ERR_BAD_FRAME', `frame of ${length} bytes is too large for the ${format} header (at most ${max})`, { stage })
}

/**
 * The header to send before `frame.data`: a fresh small Buffer (Node slices
 * it from its shared pool, so every byte is written explicitly).
 */
export function encodeHeader(format: HeaderFormat, frame: Frame, checksum: boolean, stage: string): Buffer | FramePipeError {
  const length = frame.data.length
  const tooLarge = checkSendLength(format, length, stage)
  if (tooLarge) return tooLarge
  switch (format) {
    case 'u32be': {
      const h = Buffer.allocUnsafe(4)
      view(h).setUint32(0, length)
      return h
    }
    case 'u32le': {
      const h = Buffer.allocUnsafe(4)
      h.writeUInt32LE(length, 0)
      return h
    }
    case 'ii': {
      const h = Buffer.allocUnsafe(8)
      h.writeInt32LE(length, 0)
      h.writeInt32LE(length, 4)
      return h
    }
    case 'i64le': {
      const h = Buffer.allocUnsafe(8)
      h.writeUInt32LE(length % 2 ** 32, 0)
      h.writeUInt32LE(Math.floor(length / 2 ** 32), 4)
      return h
    }
    case 'native':
      return encodeNative(frame, checksum, stage)
    case 'ascii':
      return encodeAscii(frame, stage)
  }
}

/**
 * seed 002: the length as decimal digits, nothing else. The receiver finds
 * the end of the digits at the payload's first byte, so that byte must not be
 * a digit (JPEG, PNG and WebP start with FF, 89 and 'R'), and a payload
 * cannot be empty (the next frame's digits would join this length).
 */
function encodeAscii(frame: Frame, stage: string): Buffer | FramePipeError {
  const data = frame.data
  if (data.length === 0) {
    return new FramePipeError(
      'ERR_BAD_FRAME',
      `frame seq ${frame.seq} is empty; the ascii header cannot carry an empty frame (the next frame's digits would join its length)`,
      { stage },
    )
  }
  if (isDigit(data[0]!)) {
    return new FramePipeError(
      'ERR_BAD_FRAME',
      `frame seq ${frame.seq} starts with the digit '${String.fromCharCode(data[0]!)}'; the ascii header needs payloads that do not start with a digit (JPEG, PNG and WebP never do)`,
      { stage },
    )
  }
  return Buffer.from(String(data.length), 'latin1')
}

function encodeNative(frame: Frame, checksum: boolean, stage: string): Buffer | FramePipeError {
  const bad = (what: string) => new FramePipeError('ERR_BAD_FRAME', `frame seq ${frame.seq} has ${what}`, { stage })
  if (!isUint(frame.width, 2 ** 32 - 1)) return bad(`width ${frame.width}; the native header holds an integer 0..4294967295`)
  if (!isUint(frame.height, 2 ** 32 - 1)) return bad(`height ${frame.height}; the native header holds an integer 0..4294967295`)
  if (!isUint(frame.channels, 255)) return bad(`channels ${frame.channels}; the native header holds an integer 0..255`)
  const code = NATIVE_FORMAT_CODES.indexOf(frame.format)
  if (code < 0) return bad(`format '${frame.format}'; the native header knows ${FRAME_FORMATS.join(', ')}`)
  if (slabUsed + NATIVE_HEADER_BYTES > SLAB_BYTES) newSlab()
  const at = slabUsed
  slabUsed += NATIVE_HEADER_BYTES
  const v = slabView
  v.setUint32(at, NATIVE_MAGIC)
  v.setUint8(at + 4, NATIVE_VERSION)
  v.setUint8(at + 5, checksum ? NATIVE_FLAG_CRC : 0)
  v.setUint16(at + 6, NATIVE_HEADER_BYTES)
  v.setUint32(at + 8, frame.data.length)
  v.setUint32(at + 12, frame.seq >>> 0)
  v.setFloat64(at + 16, frame.timestamp)
  v.setUint32(at + 24, frame.width)
  v.setUint32(at + 28, frame.height)
  v.setUint8(at + 32, code)
  v.setUint8(at + 33, frame.channels)
  v.setUint16(at + 34, 0)
  v.setUint32(at + 36, checksum ? crc32(frame.data) : 0)
  return slab.subarray(at, at + NATIVE_HEADER_BYTES)
}

// Native headers are cut from slabs, each with one DataView: a DataView made
// per header cost about 2 µs in a sender's first seconds (V8 makes it in the
// runtime until the caller is optimised), more than the rest of the header.
// A slab stays alive while a header cut from it waits to be written.
const SLAB_BYTES = 16 * 1024
let slab = Buffer.alloc(0)
let slabView = new DataView(slab.buffer, slab.byteOffset, 0)
let slabUsed = SLAB_BYTES

function newSlab(): void {
  slab = Buffer.allocUnsafeSlow(SLAB_BYTES)
  slabView = new DataView(slab.buffer, slab.byteOffset, SLAB_BYTES)
  slabUsed = 0
}

/**
 * A big-endian view of a header's bytes. DataView's accessors are V8 builtins,
 * fast from the first call; Buffer's readUInt32BE/readDoubleBE are
 * JavaScript that runs interpreted until V8 optimises it: over a relay's
 * first 3,000 frames they cost about 12 ms of a 40-byte header.
 */
function view(buf: Buffer): DataView {
  // A parser decodes every header from the same buffer: keep its view.
  if (buf !== viewed) {
    viewed = buf
    lastView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  }
  return lastView
}

let viewed: Buffer | undefined
let lastView: DataView

function isUint(value: number, max: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= max
}

/** Decode the HEADER_BYTES[format] bytes of `buf` starting at 0. The caller checks the length against its limit. */
export function decodeHeader(format: FixedHeaderFormat, buf: Buffer, stage: string): DecodedHeader | FramePipeError {
  switch (format) {
    case 'u32be':
      return plain(view(buf).getUint32(0))
    case 'u32le':
      return plain(buf.readUInt32LE(0))
    case 'ii': {
      const a = buf.readInt32LE(0)
      const b = buf.readInt32LE(4)
      if (a !== b)
        return new FramePipeError('ERR_BAD_HEADER', `ii header holds two different lengths (${a} and ${b}); they must be equal`, { stage })
      if (a < 0) return new FramePipeError('ERR_BAD_HEADER', `ii header announces a negative length (${a})`, { stage })
      return plain(a)
    }
    case 'i64le': {
      const high = buf.readInt32LE(4)
      if (high < 0)
        return new FramePipeError('ERR_BAD_HEADER', `i64le header announces a negative length (${buf.readBigInt64LE(0)})`, { stage })
      return plain(high * 2 ** 32 + buf.readUInt32LE(0))
    }
    case 'native':
      return decodeNative(buf, stage)
  }
}

export function plain(length: number): DecodedHeader {
  return { length, extra: 0, crc: -1, meta: undefined }
}

function decodeNative(buf: Buffer, stage: string): DecodedHeader | FramePipeError {
  const v = view(buf)
  if (v.getUint32(0) !== NATIVE_MAGIC) {
    return badHeader(stage, `native header starts with ${hex(buf.subarray(0, 4))}, not the magic 46 52 4d 50 ("FRMP")`)
  }
  const version = buf[4]!
  if (version !== NATIVE_VERSION)
    return badHeader(stage, `native header version ${version} is not supported (this reader reads version ${NATIVE_VERSION})`)
  const headerLength = v.getUint16(6)
  if (headerLength < NATIVE_HEADER_BYTES)
    return badHeader(stage, `native header length ${headerLength} is less than the ${NATIVE_HEADER_BYTES} bytes of version 1`)
  const flags = buf[5]!
  const code = buf[32]!
  return {
    length: v.getUint32(8),
    extra: headerLength - NATIVE_HEADER_BYTES,
    crc: flags & NATIVE_FLAG_CRC ? v.getUint32(36) : -1,
    meta: {
      seq: v.getUint32(12),
      timestamp: v.getFloat64(16),
      width: v.getUint32(24),
      height: v.getUint32(28),
      // A format code this reader does not know still frames a valid payload.
      format: NATIVE_FORMAT_CODES[code] ?? 'unknown',
      channels: buf[33]!,
    },
  }
}

function badHeader(stage: string, what: string): FramePipeError {
  return new FramePipeError('ERR_BAD_HEADER', what, { stage })
}

/** `46 52 4d 50` */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ')
}

/** `0x0a1b2c3d` */
export function hex32(n: number): string {
  return '0x' + (n >>> 0).toString(16).padStart(8, '0')
}
