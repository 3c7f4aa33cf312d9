// JPEG marker knowledge, in one place: the marker codes, which markers carry
// a length, the walk over marker segments, what the frame header (SOF) says,
// and whether a buffer is a whole JPEG. The streaming MJPEG parser, the AVI
// and MP4 recorders and the http sink all read JPEGs through this file.
//
// Structure: SOI first; then marker segments, each FF + code + a 2-byte
// length that counts itself (APPn, DQT, DHT, SOFn, DRI, COM, …), except the
// standalone markers TEM and RST0-7; any number of extra FF fill bytes may
// precede a marker code. After SOS comes entropy-coded data, where FF00 is a
// stuffed FF, FFD0-FFD7 are restart markers, FF FF… are fill bytes, and any
// other marker ends the scan (EOI, or another segment in a progressive JPEG).
// Walking segments by their lengths is what keeps an EXIF thumbnail (a whole
// JPEG, FFD9 included, inside APP1) from being taken for the image.

export const MARKER = 0xff
export const SOI = 0xd8
export const EOI = 0xd9
export const SOS = 0xda
const TEM = 0x01

/** SOF payload bytes read: precision (1), height (2), width (2), components (1). */
export const SOF_HEAD = 6

/** What the SOF marker of a JPEG says; 0 when the image has no SOF. */
export interface JpegInfo {
  width: number
  height: number
  /** Colour components: 1 (grey), 3 (YCbCr/RGB) or 4 (CMYK). */
  components: number
}

/** RST0-RST7, which may stand inside entropy-coded data. */
export function isRestart(code: number): boolean {
  return code >= 0xd0 && code <= 0xd7
}

/** Markers that stand alone, without a length: TEM and RST0-7 (SOI and EOI have none either, but begin and end an image: callers handle them apart). */
export function isStandalone(code: number): boolean {
  return code === TEM || isRestart(code)
}

/** SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range. */
export function isSof(code: number): boolean {
  return code >= 0xc0 && code <= 0xcf && code !== 0xc4 && code !== 0xc8 && code !== 0xcc
}

/** The SOF_HEAD bytes of a SOF payload starting at `at`. */
export function sofInfo(b: Buffer, at: number): JpegInfo {
  return { height: b.readUInt16BE(at + 1), width: b.readUInt16BE(at + 3), components: b[at + 5]! }
}

/** The buffer starts with SOI and has room for a marker after it. */
function startsJpeg(b: Buffer): boolean {
  return b.length >= 4 && b[0] === MARKER && b[1] === SOI
}

/**
 * Position of the code of the marker at `pos`, past any fill bytes (extra
 * FFs); -1 when `pos` holds no FF or the buffer ends before the code.
 */
function markerCode(b: Buffer, pos: number): number {
  if (b[pos] !== MARKER) return -1
  let at = pos + 1
  while (at < b.length && b[at] === MARKER) at++
  return at < b.length ? at : -1
}

/** The length of the segment whose marker code is at `at` (its 2 length bytes included); -1 when the buffer ends first or the length is below 2. */
function segmentLength(b: Buffer, at: number): number {
  if (at + 2 >= b.length) return -1
  const length = b.readUInt16BE(at + 1)
  return length < 2 ? -1 : length
}

/**
 * Width, height and components of a JPEG from its SOF marker, walking the
 * marker segments by their lengths (so an EXIF thumbnail's SOF is never
 * taken for the image's). Undefined when `b` is not a JPEG or has no SOF
 * before its first scan. Cheap: reads headers only, a few dozen bytes of a
 * typical file.
 */
export function jpegSize(b: Buffer): JpegInfo | undefined {
  if (!startsJpeg(b)) return undefined
  let pos = 2
  for (;;) {
    const at = markerCode(b, pos)
    if (at < 0) return undefined
    const code = b[at]!
    if (code === SOS || code === EOI) return undefined
    if (code === SOI || isStandalone(code)) {
      pos = at + 1
      continue
    }
    const length = segmentLength(b, at)
    if (length < 0) return undefined
    if (isSof(code)) return length >= 2 + SOF_HEAD && at + 3 + SOF_HEAD <= b.length ? sofInfo(b, at + 3) : undefined
    pos = at + 1 + length
  }
}

/** Width and height of a JPEG whose SOF states both (jpegSize, neither 0), or undefined. */
export function jpegDimensions(b: Buffer): { width: number; height: number } | undefined {
  const info = jpegSize(b)
  return info && info.width > 0 && info.height > 0 ? { width: info.width, height: info.height } : undefined
}

/**
 * Is a buffer a whole JPEG? The seeds' UDP wire carries no sequence numbers,
 * so the image itself is the last line of defence against lost, repeated or
 * foreign chunks: SOI first, EOI last and nowhere else, every marker segment
 * inside the buffer, and in entropy-coded data every 0xFF followed by a
 * stuffed 0x00, a restart marker or fill. One pass, no decode, no allocation.
 */
export function isCompleteJpeg(b: Buffer): boolean {
  const n = b.length
  if (!startsJpeg(b) || b[n - 2] !== MARKER || b[n - 1] !== EOI) return false
  let pos = 2
  for (;;) {
    const at = markerCode(b, pos)
    if (at < 0) return false
    const m = b[at]!
    if (m === EOI) return at + 1 === n
    if (m === SOI || m === 0x00) return false
    if (isStandalone(m)) {
      pos = at + 1
      continue
    }
    const length = segmentLength(b, at)
    if (length < 0 || at + 1 + length > n) return false
    pos = at + 1 + length
    if (m === SOS) {
      pos = skipEntropyData(b, pos)
      if (pos < 0) return false
    }
  }
}

/** Position of the marker that ends the scan starting at `pos`, or -1 when the buffer ends first. */
function skipEntropyData(b: Buffer, pos: number): number {
  const n = b.length
  for (;;) {
    const ff = b.indexOf(MARKER, pos)
    if (ff < 0 || ff + 1 >= n) return -1
    const next = b[ff + 1]!
    if (next === 0x00 || isRestart(next)) pos = ff + 2
    else if (next === MARKER) pos = ff + 1
    else return ff
  }
}

/** What a decoder needs to know before it commits to a JPEG: its frame header, and whether colour management applies. */
export interface JpegHeader extends JpegInfo {
  /** The SOF marker code: 0xC0 baseline, 0xC1 extended, 0xC2 progressive, others (lossless, arithmetic, hierarchical) are rare. */
  sof: number
  /** Bits per sample: 8, or 12 (and 16 for lossless). */
  precision: number
  /** An embedded ICC profile (APP2 'ICC_PROFILE'): a decoder that manages colour treats the pixels differently. */
  icc: boolean
}

const APP2 = 0xe2
const ICC_TAG = 'ICC_PROFILE\0'

/**
 * The header of a JPEG read up to its first scan: the SOF (jpegSize's walk,
 * the same rules) plus whether an APP2 segment carries an ICC profile.
 * Undefined when `b` is not a JPEG, or has no SOF before its first scan.
 * Reads headers only; no allocation beyond the result.
 */
export function jpegHeader(b: Buffer): JpegHeader | undefined {
  if (!startsJpeg(b)) return undefined
  let found: Omit<JpegHeader, 'icc'> | undefined
  let icc = false
  let pos = 2
  for (;;) {
    const at = markerCode(b, pos)
    if (at < 0) return undefined
    const code = b[at]!
    if (code === SOS) return found && { ...found, icc }
    if (code === EOI) return undefined
    if (code === SOI || isStandalone(code)) {
      pos = at + 1
      continue
    }
    const length = segmentLength(b, at)
    if (length < 0) return undefined
    if (isSof(code) && !found) {
      if (length < 2 + SOF_HEAD || at + 3 + SOF_HEAD > b.length) return undefined
      found = { ...sofInfo(b, at + 3), sof: code, precision: b[at + 3]! }
    } else if (code === APP2 && length >= 2 + ICC_TAG.length && b.toString('latin1', at + 3, at + 3 + ICC_TAG.length) === ICC_TAG) {
      icc = true
    }
    pos = at + 1 + length
  }
}
