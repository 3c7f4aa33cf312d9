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
 * stuffed 0x00, fill, or the next restart marker in turn. One pass, no
 * decode, no allocation. The entropy-coded bytes themselves are arbitrary
 * here: a chunk moved inside them passes (isCleanJpeg reads them).
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
  // Restart markers count RST0..RST7 over and over: one out of turn means data lost, repeated or moved.
  let rst = 0
  for (;;) {
    const ff = b.indexOf(MARKER, pos)
    if (ff < 0 || ff + 1 >= n) return -1
    const next = b[ff + 1]!
    if (next === 0x00) pos = ff + 2
    else if (isRestart(next)) {
      if (next !== 0xd0 + rst) return -1
      rst = (rst + 1) & 7
      pos = ff + 2
    } else if (next === MARKER) pos = ff + 1
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

// ------------------------------------------------------------- entropy-coded data

/**
 * Is a buffer a whole JPEG whose entropy-coded data decodes cleanly? On top
 * of isCompleteJpeg: for baseline and extended Huffman JPEGs (SOF0, SOF1) every
 * Huffman code of every block is read against the image's own tables, no
 * block has more than 64 coefficients, restart markers come where the
 * restart interval puts them and in order, and each scan holds exactly the
 * blocks the frame header implies, up to its last byte. A datagram lost,
 * repeated or swapped inside the entropy data (which the marker walk cannot
 * see, its bytes being arbitrary) misaligns the codes, and this fails within
 * a few blocks of it. Pixels are not computed (no IDCT): one pass over the
 * bits. Progressive, lossless and arithmetic-coded JPEGs get the marker walk
 * only.
 */
export function isCleanJpeg(b: Buffer): boolean {
  if (!isCompleteJpeg(b)) return false
  return walkScans(b)
}

interface HuffTable {
  /** Codes of up to LOOKUP bits: (length << 8) | symbol, 0 = longer or invalid. */
  fast: Uint16Array
  /** For longer codes, by length 1..16: the largest code of that length (-1: none), and the index of its first symbol minus its first code. */
  maxcode: Int32Array
  delta: Int32Array
  symbols: Uint8Array
}

interface Component {
  id: number
  h: number
  v: number
  /** Quantisation table id. */
  tq: number
  /** Huffman table ids for the current scan. */
  dc: number
  ac: number
}

const LOOKUP = 9

function buildTable(counts: Uint8Array, symbols: Uint8Array): HuffTable | undefined {
  const fast = new Uint16Array(1 << LOOKUP)
  const maxcode = new Int32Array(18).fill(-1)
  const delta = new Int32Array(18)
  let code = 0
  let k = 0
  for (let len = 1; len <= 16; len++) {
    const n = counts[len - 1]!
    delta[len] = k - code
    for (let i = 0; i < n; i++) {
      if (len <= LOOKUP) {
        const shift = LOOKUP - len
        const base = code << shift
        for (let j = 0; j < 1 << shift; j++) fast[base + j] = (len << 8) | symbols[k]!
      }
      code++
      k++
    }
    if (n > 0) maxcode[len] = code - 1
    // More codes than this length can hold: not a Huffman table.
    if (code > 1 << len) return undefined
    code <<= 1
  }
  return { fast, maxcode, delta, symbols }
}

/** Walk every scan of a JPEG that isCompleteJpeg accepted; true when each decodes cleanly (or is of a kind not checked). */
function walkScans(b: Buffer): boolean {
  const dc: Array<HuffTable | undefined> = [undefined, undefined, undefined, undefined]
  const ac: Array<HuffTable | undefined> = [undefined, undefined, undefined, undefined]
  /** The DC quantiser of each quantisation table: it bounds the DC coefficients. */
  const dcQuant = [0, 0, 0, 0]
  let precision = 8
  let components: Component[] | undefined
  let width = 0
  let height = 0
  let restart = 0
  let pos = 2
  for (;;) {
    const at = markerCode(b, pos)
    if (at < 0) return false
    const m = b[at]!
    if (m === EOI) return true
    if (isStandalone(m)) {
      pos = at + 1
      continue
    }
    const length = segmentLength(b, at)
    const start = at + 3
    const end = at + 1 + length
    if (m === 0xc4) {
      // DHT: one or more tables.
      let p = start
      while (p < end) {
        if (p + 17 > end) return false
        const tc = b[p]! >> 4
        const th = b[p]! & 15
        const counts = b.subarray(p + 1, p + 17)
        let n = 0
        for (const c of counts) n += c
        if (tc > 1 || th > 3 || p + 17 + n > end) return false
        const table = buildTable(counts, b.subarray(p + 17, p + 17 + n))
        if (!table) return false
        ;(tc === 0 ? dc : ac)[th] = table
        p += 17 + n
      }
    } else if (m === 0xdb) {
      // DQT: one or more tables of 64 entries (8 or 16 bits); the first entry is the DC quantiser.
      let p = start
      while (p < end) {
        const wide = b[p]! >> 4
        const tq = b[p]! & 15
        const size = wide ? 128 : 64
        if (wide > 1 || tq > 3 || p + 1 + size > end) return false
        dcQuant[tq] = wide ? b.readUInt16BE(p + 1) : b[p + 1]!
        p += 1 + size
      }
    } else if (m === 0xdd) {
      if (length < 4) return false
      restart = b.readUInt16BE(start)
    } else if (isSof(m)) {
      // Only Huffman sequential (SOF0, SOF1) is walked; any other kind ends the checks here.
      if (m !== 0xc0 && m !== 0xc1) return true
      if (length < 8) return false
      precision = b[start]!
      height = b.readUInt16BE(start + 1)
      width = b.readUInt16BE(start + 3)
      const n = b[start + 5]!
      if (length < 8 + 3 * n || n === 0) return false
      // Height 0: set later by a DNL marker; not walked.
      if (height === 0 || width === 0) return true
      components = []
      for (let i = 0; i < n; i++) {
        const c = start + 6 + 3 * i
        const h = b[c + 1]! >> 4
        const v = b[c + 1]! & 15
        if (h < 1 || h > 4 || v < 1 || v > 4) return false
        if (b[c + 2]! > 3) return false
        components.push({ id: b[c]!, h, v, tq: b[c + 2]!, dc: 0, ac: 0 })
      }
    } else if (m === SOS) {
      if (!components) return false
      const n = b[start]!
      if (n < 1 || n > 4 || length < 6 + 2 * n) return false
      const scan: Component[] = []
      for (let i = 0; i < n; i++) {
        const c = components.find((x) => x.id === b[start + 1 + 2 * i])
        if (!c) return false
        c.dc = b[start + 2 + 2 * i]! >> 4
        c.ac = b[start + 2 + 2 * i]! & 15
        if (c.dc > 3 || c.ac > 3 || !dc[c.dc] || !ac[c.ac]) return false
        scan.push(c)
      }
      // A block's DC coefficient is the sum of its 64 samples (at most 2^(precision-1) each) over 8,
      // so at most 2^(precision+2), over its quantiser (one more for rounding). Misread data breaks it soon.
      const dcLimits = scan.map((c) => (dcQuant[c.tq]! > 0 ? Math.ceil(2 ** (precision + 2) / dcQuant[c.tq]!) + 1 : Infinity))
      const next = walkScan(b, end, scan, components, width, height, restart, dc, ac, dcLimits)
      if (next < 0) return false
      pos = next
      continue
    }
    pos = end
  }
}

/**
 * Decode the Huffman codes of one scan whose data starts at `pos`; returns
 * the position of the marker that ends it, or -1 when the data is not a
 * clean encoding of exactly the scan's blocks.
 */
function walkScan(
  b: Buffer,
  pos: number,
  scan: Component[],
  all: Component[],
  width: number,
  height: number,
  restart: number,
  dcTables: Array<HuffTable | undefined>,
  acTables: Array<HuffTable | undefined>,
  dcLimits: number[],
): number {
  let hmax = 1
  let vmax = 1
  for (const c of all) {
    hmax = Math.max(hmax, c.h)
    vmax = Math.max(vmax, c.v)
  }
  let mcus: number
  // Per MCU: for each block, its tables.
  const blockDc: HuffTable[] = []
  const blockAc: HuffTable[] = []
  /** Index in the scan of each block's component (its DC predictor and limit). */
  const blockComponent: number[] = []
  if (scan.length === 1) {
    const c = scan[0]!
    const bx = Math.ceil(Math.ceil((width * c.h) / hmax) / 8)
    const by = Math.ceil(Math.ceil((height * c.v) / vmax) / 8)
    mcus = bx * by
    blockDc.push(dcTables[c.dc]!)
    blockAc.push(acTables[c.ac]!)
    blockComponent.push(0)
  } else {
    mcus = Math.ceil(width / (8 * hmax)) * Math.ceil(height / (8 * vmax))
    for (let j = 0; j < scan.length; j++) {
      const c = scan[j]!
      for (let i = 0; i < c.h * c.v; i++) {
        blockDc.push(dcTables[c.dc]!)
        blockAc.push(acTables[c.ac]!)
        blockComponent.push(j)
      }
    }
    if (blockDc.length > 10) return -1
  }
  const predictors = scan.map(() => 0)
  // The bit reader, inline (this loop runs once per Huffman code): `acc` holds
  // `bits` unused bits (at most 24), `fake` of them past the data (read as 1s);
  // `stop` is the marker that ends the data once reached. Value bits are
  // skipped by subtraction: `bits` may go below 0, and the next fill reads
  // past them (only the low `bits` bits of `acc` are ever looked at).
  const n = b.length
  let acc = 0
  let bits = 0
  let fake = 0
  let stop = -1
  let nextRst = 0
  const blocks = blockDc.length
  for (let mcu = 0; mcu < mcus; mcu++) {
    if (restart > 0 && mcu > 0 && mcu % restart === 0) {
      // The interval's data ends here: only padding bits may be left, then RSTn in sequence.
      if (bits - fake >= 8) return -1
      if (stop < 0) {
        if (b[pos] !== MARKER) return -1
        stop = pos
      }
      const at = markerCode(b, stop)
      if (at < 0 || b[at] !== 0xd0 + nextRst) return -1
      nextRst = (nextRst + 1) & 7
      pos = at + 1
      acc = bits = fake = 0
      stop = -1
      predictors.fill(0)
    }
    for (let k = 0; k < blocks; k++) {
      let table = blockDc[k]!
      let coefficient = 0
      /** The DC difference's size, once its code is read: its bits are read after the next fill. */
      let dcSize = -1
      for (;;) {
        // Fill to at least 17 bits: enough for any code, or any value size.
        while (bits <= 16) {
          let byte = 0xff
          if (stop >= 0) fake += 8
          else if (pos >= n) {
            stop = n
            fake += 8
          } else if (b[pos] !== MARKER) byte = b[pos++]!
          else if (pos + 1 < n && b[pos + 1] === 0x00) pos += 2
          else {
            stop = pos
            fake += 8
          }
          acc = ((acc << 8) | byte) & 0xffffff
          bits += 8
        }
        if (dcSize >= 0) {
          // The DC difference (F.2.2.1's EXTEND), added to the component's predictor, which must stay in range.
          const j = blockComponent[k]!
          if (dcSize > 0) {
            const v = (acc >>> (bits - dcSize)) & ((1 << dcSize) - 1)
            bits -= dcSize
            predictors[j] += v < 1 << (dcSize - 1) ? v - (1 << dcSize) + 1 : v
            if (Math.abs(predictors[j]!) > dcLimits[j]!) return -1
          }
          dcSize = -1
          // Fill again before the next code.
          continue
        }
        let symbol: number
        const hit = table.fast[(acc >>> (bits - LOOKUP)) & ((1 << LOOKUP) - 1)]!
        if (hit !== 0) {
          bits -= hit >> 8
          symbol = hit & 0xff
        } else {
          symbol = -1
          for (let len = LOOKUP + 1; len <= 16; len++) {
            const code = (acc >>> (bits - len)) & ((1 << len) - 1)
            if (code <= table.maxcode[len]!) {
              bits -= len
              symbol = table.symbols[code + table.delta[len]!]!
              break
            }
          }
          if (symbol < 0) return -1
        }
        if (coefficient === 0) {
          // DC: the symbol is the size of the difference that follows.
          if (symbol > 15) return -1
          dcSize = symbol
          table = blockAc[k]!
          coefficient = 1
          continue
        }
        const run = symbol >> 4
        const size = symbol & 15
        if (size === 0) {
          // EOB, or ZRL (16 zeros, which a coefficient must follow); other runs are progressive-only.
          if (run === 0) break
          if (run !== 15) return -1
          coefficient += 16
          if (coefficient > 63) return -1
          continue
        }
        coefficient += run
        if (coefficient > 63) return -1
        bits -= size
        if (++coefficient === 64) break
      }
      // Value bits may still be owed (bits < 0): read them, then see whether any lay past the end of the data.
      while (bits < 0) {
        let byte = 0xff
        if (stop >= 0) fake += 8
        else if (pos >= n) {
          stop = n
          fake += 8
        } else if (b[pos] !== MARKER) byte = b[pos++]!
        else if (pos + 1 < n && b[pos + 1] === 0x00) pos += 2
        else {
          stop = pos
          fake += 8
        }
        acc = ((acc << 8) | byte) & 0xffffff
        bits += 8
      }
      // Bits taken past the end of the data: the scan is shorter than its blocks need.
      if (bits < fake) return -1
    }
  }
  // Exactly the scan's blocks: what is left is padding to the byte, then the marker (a few stray bytes tolerated).
  if (bits - fake >= 8) return -1
  if (stop >= 0) return stop
  for (let at = b.indexOf(MARKER, pos); at >= 0 && at + 1 < n; at = b.indexOf(MARKER, at + 2)) {
    if (b[at + 1] !== 0x00) return at - pos <= TRAILING_SLACK ? at : -1
  }
  return -1
}

/** Bytes after a scan's last block and before its marker that are tolerated (some encoders pad). */
const TRAILING_SLACK = 4
