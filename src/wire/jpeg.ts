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
    } else if (m === 0xdd) {
      if (length < 4) return false
      restart = b.readUInt16BE(start)
    } else if (isSof(m)) {
      // Only Huffman sequential (SOF0, SOF1) is walked; any other kind ends the checks here.
      if (m !== 0xc0 && m !== 0xc1) return true
      if (length < 8) return false
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
        components.push({ id: b[c]!, h, v, dc: 0, ac: 0 })
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
      const next = walkScan(b, end, scan, components, width, height, restart, dc, ac)
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
  if (scan.length === 1) {
    const c = scan[0]!
    const bx = Math.ceil(Math.ceil((width * c.h) / hmax) / 8)
    const by = Math.ceil(Math.ceil((height * c.v) / vmax) / 8)
    mcus = bx * by
    blockDc.push(dcTables[c.dc]!)
    blockAc.push(acTables[c.ac]!)
  } else {
    mcus = Math.ceil(width / (8 * hmax)) * Math.ceil(height / (8 * vmax))
    for (const c of scan) {
      for (let i = 0; i < c.h * c.v; i++) {
        blockDc.push(dcTables[c.dc]!)
        blockAc.push(acTables[c.ac]!)
      }
    }
    if (blockDc.length > 10) return -1
  }
  const r = new BitReader(b, pos)
  let nextRst = 0
  const blocks = blockDc.length
  for (let mcu = 0; mcu < mcus; mcu++) {
    if (restart > 0 && mcu > 0 && mcu % restart === 0) {
      // The interval's data ends here: only padding bits may be left, then RSTn in sequence.
      const at = r.atMarker()
      if (at < 0 || b[at] !== 0xd0 + nextRst) return -1
      nextRst = (nextRst + 1) & 7
      r.restart(at + 1)
    }
    for (let k = 0; k < blocks; k++) {
      const s = r.decode(blockDc[k]!)
      if (s < 0 || s > 15) return -1
      if (s > 0) r.skip(s)
      const table = blockAc[k]!
      for (let i = 1; i < 64;) {
        const rs = r.decode(table)
        if (rs < 0) return -1
        const run = rs >> 4
        const size = rs & 15
        if (size === 0) {
          // EOB, or ZRL (16 zeros, which a coefficient must follow); other runs are progressive-only.
          if (run === 0) break
          if (run !== 15) return -1
          i += 16
          if (i > 63) return -1
        } else {
          i += run
          if (i > 63) return -1
          r.skip(size)
          i++
        }
      }
      // Bits taken past the end of the data: the scan is shorter than its blocks need.
      if (r.overrun()) return -1
    }
  }
  // Exactly the scan's blocks: what is left is padding to the byte, then the marker (a few stray bytes tolerated).
  return r.end(TRAILING_SLACK)
}

/**
 * Reads the bits of entropy-coded data: stuffed FF00 is FF, and the data
 * ends at the first marker, past which it reads 1s and counts them as fake.
 */
class BitReader {
  /** Bits not yet used, the newest in the low bits (at most 24). */
  private acc = 0
  private bits = 0
  /** How many of `bits` lie past the data. */
  private fake = 0
  /** Position of the marker that ends the data, once reached (-1 before). */
  private stop = -1

  constructor(
    private readonly b: Buffer,
    private pos: number,
  ) {}

  private fill(): void {
    const b = this.b
    while (this.bits <= 16) {
      let byte = 0xff
      if (this.stop < 0) {
        const pos = this.pos
        const x = pos < b.length ? b[pos]! : MARKER
        if (x !== MARKER) {
          byte = x
          this.pos = pos + 1
        } else if (pos + 1 < b.length && b[pos + 1] === 0x00) {
          this.pos = pos + 2
        } else {
          this.stop = Math.min(pos, b.length)
          this.fake += 8
        }
      } else {
        this.fake += 8
      }
      this.acc = ((this.acc << 8) | byte) & 0xffffff
      this.bits += 8
    }
  }

  /** The next Huffman symbol of `t`, or -1 for a code that is not in it. */
  decode(t: HuffTable): number {
    if (this.bits <= 16) this.fill()
    const acc = this.acc
    const bits = this.bits
    const hit = t.fast[(acc >>> (bits - LOOKUP)) & ((1 << LOOKUP) - 1)]!
    if (hit !== 0) {
      this.bits = bits - (hit >> 8)
      return hit & 0xff
    }
    for (let len = LOOKUP + 1; len <= 16; len++) {
      const code = (acc >>> (bits - len)) & ((1 << len) - 1)
      if (code <= t.maxcode[len]!) {
        this.bits = bits - len
        return t.symbols[code + t.delta[len]!]!
      }
    }
    return -1
  }

  skip(k: number): void {
    if (this.bits <= 16) this.fill()
    this.bits -= k
  }

  /** Some bits taken lay past the end of the data. */
  overrun(): boolean {
    return this.bits < this.fake
  }

  /** At the end of a restart interval: the marker's code position, when only padding (under a byte) is left before it; else -1. */
  atMarker(): number {
    if (this.bits - this.fake >= 8) return -1
    let at = this.stop
    if (at < 0) {
      if (this.b[this.pos] !== MARKER) return -1
      at = this.pos
    }
    return markerCode(this.b, at)
  }

  /** Start over after a restart marker whose code is before `pos`. */
  restart(pos: number): void {
    this.pos = pos
    this.acc = this.bits = this.fake = 0
    this.stop = -1
  }

  /** After the scan's last block: the position of the marker that ends the scan, allowing `slack` stray bytes before it; -1 otherwise. */
  end(slack: number): number {
    if (this.bits - this.fake >= 8) return -1
    if (this.stop >= 0) return this.stop
    const b = this.b
    for (let at = b.indexOf(MARKER, this.pos); at >= 0 && at + 1 < b.length; at = b.indexOf(MARKER, at + 2)) {
      if (b[at + 1] !== 0x00) return at - this.pos <= slack ? at : -1
    }
    return -1
  }
}

/** Bytes after a scan's last block and before its marker that are tolerated (some encoders pad). */
const TRAILING_SLACK = 4
