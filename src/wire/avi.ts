// MJPEG AVI as a pure layout engine: it decides where every byte goes and
// returns positioned writes; the caller owns the file. So the format can be
// tested in memory, and the sink decides when bytes reach the disk.
//
// File layout (one video stream '00dc', every frame a key frame):
//
//   RIFF 'AVI '                                  first RIFF, <= riffSize bytes
//     LIST 'hdrl'
//       avih                                     main header
//       LIST 'strl'
//         strh  strf(BITMAPINFOHEADER, MJPG)
//         JUNK|indx                              OpenDML super index, reserved
//       JUNK|LIST 'odml' dmlh                    total frames, reserved
//     LIST 'movi'  00dc 00dc … [ix00]            frames, standard index if OpenDML
//     idx1                                       legacy index (first RIFF only)
//   RIFF 'AVIX'  LIST 'movi' 00dc … ix00         OpenDML extensions, when a file
//   RIFF 'AVIX'  …                               outgrows riffSize
//
// The reserved chunks stay JUNK (skipped by every reader) until the file
// needs a second RIFF, the way FFmpeg's muxer does it: a file under riffSize
// is plain AVI 1.0. Until finish() the movi list is open-ended: patch()
// rewrites the header and sizes to cover every frame added so far, which is
// what makes a file killed between patches playable up to the last patch
// (readers scan movi when idx1 is missing).

/** Bytes to put at `position`. */
export interface AviWrite {
  position: number
  buffers: Buffer[]
}

export interface AviMuxerOptions {
  width: number
  height: number
  /** Frames per second written in the header; 0: measured from the timestamps given to add(). */
  fps: number
  /** Rate used while fps is 0 and the frames give no measure yet (fewer than two, or equal timestamps). */
  fallbackFps?: number
  /** Size at which the current RIFF is closed and the file continues in an AVIX RIFF (OpenDML). */
  riffSize?: number
  /** RIFFs the super index can list; a file that needs more is full (see fits()). */
  maxRiffs?: number
}

/** The RIFF convention: readers that know no OpenDML read the first GiB. */
export const RIFF_SIZE = 2 ** 30
export const MAX_RIFFS = 256
export const MAX_FPS = 100_000
const MIN_FPS = 0.001

const AVIF_HASINDEX = 0x10
const AVIF_ISINTERLEAVED = 0x100
const AVIF_TRUSTCKTYPE = 0x800
const AVIIF_KEYFRAME = 0x10

const AVIH = 56
const STRH = 56
const STRF = 40
const INDX_HEAD = 24
const DMLH = 248
const IX_HEAD = 24
/** 'RIFF' size 'AVIX' 'LIST' size 'movi' */
const AVIX_HEAD = 24

const PAD = Buffer.alloc(1)

function fourcc(buf: Buffer, at: number, tag: string): void {
  buf.write(tag, at, 4, 'latin1')
}

function u32(n: number): number {
  return Math.max(0, Math.min(0xffffffff, Math.round(n)))
}

function u16(n: number): number {
  return Math.max(0, Math.min(0xffff, Math.round(n)))
}

/** Bytes a frame of `len` bytes takes in movi: chunk header, data, pad to even. */
export function chunkBytes(len: number): number {
  return 8 + len + (len & 1)
}

function ixBytes(n: number): number {
  return 8 + IX_HEAD + 8 * n
}

function idx1Bytes(n: number): number {
  return 8 + 16 * n
}

/** An AVI frame rate as dwRate/dwScale; integers exactly, others to 1/1000 fps (or 1/1000 s per frame below 1 fps). */
export function rateOf(fps: number): { rate: number; scale: number } {
  const f = Math.min(MAX_FPS, Math.max(MIN_FPS, fps))
  if (Number.isInteger(f)) return { rate: f, scale: 1 }
  if (f >= 1) return { rate: Math.round(f * 1000), scale: 1000 }
  return { rate: 1000, scale: Math.round(1000 / f) }
}

interface SuperEntry {
  offset: number
  size: number
  frames: number
}

export class AviMuxer {
  readonly width: number
  readonly height: number
  private readonly fixedFps: number
  private readonly fallbackFps: number
  private readonly riffSize: number
  private readonly maxRiffs: number
  /** Offsets inside the first RIFF's header. */
  private readonly layout: ReturnType<typeof headerLayout>

  private started = false
  private finished = false
  /** Append position: the file's length. */
  private end = 0
  private totalFrames = 0
  private firstRiffFrames = 0
  private maxChunk = 0
  private firstTs = NaN
  private lastTs = NaN

  // The RIFF being filled.
  private riffStart = 0
  /** Position of the 'movi' fourcc: idx1 and ix00 offsets are relative to it. */
  private moviFourcc = 0
  /** Absolute positions of this RIFF's chunks, and their data sizes. */
  private chunkPos: number[] = []
  private chunkLen: number[] = []
  /** First RIFF's final size, once a second RIFF exists. */
  private firstRiffBytes = 0
  private readonly superIndex: SuperEntry[] = []
  private riffCount = 1

  constructor(o: AviMuxerOptions) {
    if (!(o.width > 0 && o.height > 0)) throw new RangeError(`AVI frame size must be positive, got ${o.width}x${o.height}`)
    this.width = o.width
    this.height = o.height
    this.fixedFps = o.fps
    this.fallbackFps = o.fallbackFps ?? 30
    this.riffSize = o.riffSize ?? RIFF_SIZE
    this.maxRiffs = o.maxRiffs ?? MAX_RIFFS
    this.layout = headerLayout(this.maxRiffs)
  }

  /** Frames added. */
  get frames(): number {
    return this.totalFrames
  }

  /** The file's length in bytes so far. */
  get size(): number {
    return this.end
  }

  /** RIFF chunks in the file (more than one: OpenDML). */
  get riffs(): number {
    return this.riffCount
  }

  /** The rate the header states now: the fixed fps, or the mean over the frames so far. */
  get fps(): number {
    if (this.fixedFps > 0) return this.fixedFps
    const span = this.lastTs - this.firstTs
    if (this.totalFrames >= 2 && span > 0) return Math.min(MAX_FPS, Math.max(MIN_FPS, ((this.totalFrames - 1) * 1000) / span))
    return this.fallbackFps
  }

  /** The header of an empty file, at position 0. */
  begin(): AviWrite[] {
    if (this.started) throw new Error('AviMuxer.begin() called twice')
    this.started = true
    this.riffStart = 0
    this.moviFourcc = this.layout.movi + 8
    this.end = this.moviFourcc + 4
    return [{ position: 0, buffers: [this.header()] }]
  }

  /** False when the frame needs a new RIFF and the super index has no room for one: start a new file. */
  fits(len: number): boolean {
    return !this.needsNewRiff(len) || this.superIndex.length + 1 < this.maxRiffs
  }

  /** The file's length if a frame of `len` bytes were added and the file finished right after. */
  sizeWith(len: number): number {
    const n = this.chunkPos.length
    const first = this.superIndex.length === 0
    if (!this.needsNewRiff(len)) return this.end + chunkBytes(len) + (first ? idx1Bytes(n + 1) : ixBytes(n + 1))
    return this.end + ixBytes(n) + (first ? idx1Bytes(n) : 0) + AVIX_HEAD + chunkBytes(len) + ixBytes(1)
  }

  /** Append one JPEG. Returns the writes in the order they must reach the file. */
  add(data: Buffer, timestamp: number): AviWrite[] {
    if (!this.started || this.finished) throw new Error('AviMuxer.add() outside begin()..finish()')
    if (data.length > 0xffffffff - 16) throw new RangeError(`frame of ${data.length} bytes is too large for an AVI chunk`)
    const writes: AviWrite[] = []
    if (this.needsNewRiff(data.length)) {
      if (!this.fits(data.length)) throw new RangeError(`the super index is full (${this.maxRiffs} RIFFs): start a new file`)
      this.closeRiff(writes)
      this.openAvix(writes)
    }
    const head = Buffer.allocUnsafe(8)
    fourcc(head, 0, '00dc')
    head.writeUInt32LE(data.length, 4)
    writes.push({ position: this.end, buffers: data.length & 1 ? [head, data, PAD] : [head, data] })
    this.chunkPos.push(this.end)
    this.chunkLen.push(data.length)
    this.end += chunkBytes(data.length)
    this.totalFrames++
    if (this.superIndex.length === 0) this.firstRiffFrames++
    if (data.length > this.maxChunk) this.maxChunk = data.length
    if (Number.isNaN(this.firstTs)) this.firstTs = timestamp
    this.lastTs = timestamp
    return writes
  }

  /**
   * Make the file on disk describe every frame added so far: header counts
   * and rate, and the sizes of the open RIFF and movi list. Called at each
   * flush, after the frames' own writes have landed.
   */
  patch(): AviWrite[] {
    if (!this.started || this.finished) return []
    const writes: AviWrite[] = [{ position: 0, buffers: [this.header()] }]
    if (this.superIndex.length > 0) writes.push(...this.sizeWrites(this.end))
    return writes
  }

  /** Close the file: the indexes and the final sizes. Nothing may be added afterwards. */
  finish(): AviWrite[] {
    if (!this.started) throw new Error('AviMuxer.finish() before begin()')
    if (this.finished) return []
    const writes: AviWrite[] = []
    if (this.superIndex.length === 0) {
      // Plain AVI: idx1 follows the movi list.
      writes.push({ position: this.end, buffers: [this.idx1()] })
      this.end += idx1Bytes(this.chunkPos.length)
      this.finished = true
      writes.push({ position: 0, buffers: [this.header()] })
      return writes
    }
    this.appendIx(writes)
    writes.push(...this.sizeWrites(this.end))
    this.finished = true
    writes.push({ position: 0, buffers: [this.header()] })
    return writes
  }

  private needsNewRiff(len: number): boolean {
    const n = this.chunkPos.length
    if (n === 0) return false
    const first = this.superIndex.length === 0
    // The RIFF as it would be when closed with this frame in it.
    const closed = this.end + chunkBytes(len) + ixBytes(n + 1) + (first ? idx1Bytes(n + 1) : 0) - this.riffStart
    return closed > this.riffSize
  }

  /** End the current RIFF: its ix00 inside movi, idx1 after movi if it is the first, final sizes. */
  private closeRiff(writes: AviWrite[]): void {
    const first = this.superIndex.length === 0
    this.appendIx(writes)
    const moviEnd = this.end
    if (first) {
      writes.push({ position: this.end, buffers: [this.idx1()] })
      this.end += idx1Bytes(this.chunkPos.length)
      this.firstRiffBytes = this.end
    }
    // RIFF before movi, and each size one aligned write: a kill between any two
    // writes leaves chunks that tile (frames past a stale movi end are skipped).
    writes.push(this.u32Write(this.riffStart + 4, this.end - this.riffStart - 8))
    writes.push(this.u32Write(this.moviFourcc - 4, moviEnd - this.moviFourcc))
    // The header turns OpenDML now (indx, odml list), and points at the new ix00.
    writes.push({ position: 0, buffers: [this.header()] })
  }

  private openAvix(writes: AviWrite[]): void {
    const head = Buffer.allocUnsafe(AVIX_HEAD)
    fourcc(head, 0, 'RIFF')
    head.writeUInt32LE(AVIX_HEAD - 8, 4)
    fourcc(head, 8, 'AVIX')
    fourcc(head, 12, 'LIST')
    head.writeUInt32LE(4, 16)
    fourcc(head, 20, 'movi')
    this.riffStart = this.end
    this.moviFourcc = this.end + 20
    this.riffCount++
    writes.push({ position: this.end, buffers: [head] })
    this.end += AVIX_HEAD
    this.chunkPos = []
    this.chunkLen = []
  }

  /** Append this RIFF's standard index (ix00) at the end of its movi list and list it in the super index. */
  private appendIx(writes: AviWrite[]): void {
    const n = this.chunkPos.length
    const ix = Buffer.alloc(ixBytes(n))
    fourcc(ix, 0, 'ix00')
    ix.writeUInt32LE(ix.length - 8, 4)
    ix.writeUInt16LE(2, 8) // wLongsPerEntry
    ix.writeUInt8(0, 10) // bIndexSubType
    ix.writeUInt8(1, 11) // bIndexType: AVI_INDEX_OF_CHUNKS
    ix.writeUInt32LE(n, 12)
    fourcc(ix, 16, '00dc')
    ix.writeBigUInt64LE(BigInt(this.moviFourcc), 20) // qwBaseOffset
    ix.writeUInt32LE(0, 28)
    for (let i = 0; i < n; i++) {
      // Offsets point at the data, past the chunk header; bit 31 clear: key frame.
      ix.writeUInt32LE(this.chunkPos[i]! + 8 - this.moviFourcc, 32 + 8 * i)
      ix.writeUInt32LE(this.chunkLen[i]!, 36 + 8 * i)
    }
    writes.push({ position: this.end, buffers: [ix] })
    this.superIndex.push({ offset: this.end, size: ix.length, frames: n })
    this.end += ix.length
  }

  private idx1(): Buffer {
    const n = this.chunkPos.length
    const buf = Buffer.allocUnsafe(idx1Bytes(n))
    fourcc(buf, 0, 'idx1')
    buf.writeUInt32LE(16 * n, 4)
    for (let i = 0; i < n; i++) {
      const at = 8 + 16 * i
      fourcc(buf, at, '00dc')
      buf.writeUInt32LE(AVIIF_KEYFRAME, at + 4)
      buf.writeUInt32LE(this.chunkPos[i]! - this.moviFourcc, at + 8)
      buf.writeUInt32LE(this.chunkLen[i]!, at + 12)
    }
    return buf
  }

  /** The open RIFF's size and its movi list's size for a file ending at `end`. */
  private sizeWrites(end: number): AviWrite[] {
    return [this.u32Write(this.riffStart + 4, end - this.riffStart - 8), this.u32Write(this.moviFourcc - 4, end - this.moviFourcc)]
  }

  private u32Write(position: number, value: number): AviWrite {
    const b = Buffer.allocUnsafe(4)
    b.writeUInt32LE(u32(value), 0)
    return { position, buffers: [b] }
  }

  /**
   * The first RIFF from its start to the 'movi' fourcc, describing the
   * current state. While there is one RIFF its sizes cover the whole file.
   */
  private header(): Buffer {
    const L = this.layout
    const h = Buffer.alloc(L.movi + 12)
    const odml = this.superIndex.length > 0
    const fps = this.fps
    const { rate, scale } = rateOf(fps)
    const single = !odml
    const riffBytes = single ? this.end : this.firstRiffBytes
    // While single, movi runs to the end of the frames (idx1, once written, is outside it).
    const moviEnd = single ? (this.finished ? this.end - idx1Bytes(this.chunkPos.length) : this.end) : 0

    fourcc(h, 0, 'RIFF')
    h.writeUInt32LE(u32(riffBytes - 8), 4)
    fourcc(h, 8, 'AVI ')
    fourcc(h, 12, 'LIST')
    h.writeUInt32LE(L.movi - 20, 16)
    fourcc(h, 20, 'hdrl')

    fourcc(h, 24, 'avih')
    h.writeUInt32LE(AVIH, 28)
    const a = 32
    h.writeUInt32LE(u32(1e6 / fps), a) // dwMicroSecPerFrame
    h.writeUInt32LE(u32(this.maxChunk * fps), a + 4) // dwMaxBytesPerSec
    h.writeUInt32LE(0, a + 8) // dwPaddingGranularity
    const indexed = this.finished || odml
    h.writeUInt32LE(AVIF_ISINTERLEAVED | AVIF_TRUSTCKTYPE | (indexed ? AVIF_HASINDEX : 0), a + 12)
    h.writeUInt32LE(this.firstRiffFrames, a + 16) // dwTotalFrames: the first RIFF's, per OpenDML
    h.writeUInt32LE(0, a + 20) // dwInitialFrames
    h.writeUInt32LE(1, a + 24) // dwStreams
    h.writeUInt32LE(u32(this.maxChunk + 8), a + 28) // dwSuggestedBufferSize
    h.writeUInt32LE(this.width, a + 32)
    h.writeUInt32LE(this.height, a + 36)

    fourcc(h, 88, 'LIST')
    h.writeUInt32LE(L.strlEnd - 96, 92)
    fourcc(h, 96, 'strl')

    fourcc(h, 100, 'strh')
    h.writeUInt32LE(STRH, 104)
    const s = 108
    fourcc(h, s, 'vids')
    fourcc(h, s + 4, 'MJPG')
    h.writeUInt32LE(0, s + 8) // dwFlags
    h.writeUInt32LE(0, s + 12) // wPriority, wLanguage
    h.writeUInt32LE(0, s + 16) // dwInitialFrames
    h.writeUInt32LE(scale, s + 20)
    h.writeUInt32LE(rate, s + 24)
    h.writeUInt32LE(0, s + 28) // dwStart
    h.writeUInt32LE(this.totalFrames, s + 32) // dwLength: every frame of the file
    h.writeUInt32LE(u32(this.maxChunk + 8), s + 36)
    h.writeInt32LE(-1, s + 40) // dwQuality: default
    h.writeUInt32LE(0, s + 44) // dwSampleSize: variable-size chunks
    h.writeUInt16LE(0, s + 48) // rcFrame
    h.writeUInt16LE(0, s + 50)
    h.writeUInt16LE(u16(this.width), s + 52)
    h.writeUInt16LE(u16(this.height), s + 54)

    fourcc(h, 164, 'strf')
    h.writeUInt32LE(STRF, 168)
    const f = 172
    h.writeUInt32LE(STRF, f) // biSize
    h.writeInt32LE(this.width, f + 4)
    h.writeInt32LE(this.height, f + 8)
    h.writeUInt16LE(1, f + 12) // biPlanes
    h.writeUInt16LE(24, f + 14) // biBitCount
    fourcc(h, f + 16, 'MJPG')
    h.writeUInt32LE(u32(this.width * this.height * 3), f + 20) // biSizeImage

    // Super index; JUNK while the file is a single RIFF.
    const x = L.indx
    fourcc(h, x, odml ? 'indx' : 'JUNK')
    h.writeUInt32LE(L.odml - x - 8, x + 4)
    h.writeUInt16LE(4, x + 8) // wLongsPerEntry
    h.writeUInt8(0, x + 10) // bIndexSubType
    h.writeUInt8(0, x + 11) // bIndexType: AVI_INDEX_OF_INDEXES
    h.writeUInt32LE(this.superIndex.length, x + 12)
    fourcc(h, x + 16, '00dc')
    this.superIndex.forEach((e, i) => {
      const at = x + 8 + INDX_HEAD + 16 * i
      h.writeBigUInt64LE(BigInt(e.offset), at)
      h.writeUInt32LE(e.size, at + 8)
      h.writeUInt32LE(e.frames, at + 12)
    })

    const o = L.odml
    fourcc(h, o, odml ? 'LIST' : 'JUNK')
    h.writeUInt32LE(L.movi - o - 8, o + 4)
    fourcc(h, o + 8, 'odml')
    fourcc(h, o + 12, 'dmlh')
    h.writeUInt32LE(DMLH, o + 16)
    h.writeUInt32LE(this.totalFrames, o + 20)

    fourcc(h, L.movi, 'LIST')
    h.writeUInt32LE(u32((single ? moviEnd : this.firstMoviEnd()) - (L.movi + 8)), L.movi + 4)
    fourcc(h, L.movi + 8, 'movi')
    return h
  }

  /** End of the first RIFF's movi list once closed: it ends where idx1 starts. */
  private firstMoviEnd(): number {
    const first = this.superIndex[0]!
    return first.offset + first.size
  }
}

/** Offsets of the reserved parts of the header, which depend on the super index's capacity. */
function headerLayout(maxRiffs: number): { indx: number; strlEnd: number; odml: number; movi: number } {
  const indx = 212
  const odml = indx + 8 + INDX_HEAD + 16 * maxRiffs
  const movi = odml + 8 + 12 + DMLH
  return { indx, strlEnd: odml, odml, movi }
}
