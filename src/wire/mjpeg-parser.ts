// Split a Motion-JPEG byte stream (JPEG images back to back, as ffmpeg's
// `-f mjpeg` muxer and MJPEG cameras produce) into one Buffer per image.
//
// Why not search for FFD9: the end-of-image marker can occur inside a marker
// segment, most often in APP1, where EXIF keeps a whole thumbnail JPEG of its
// own. So the parser walks the JPEG structure: after SOI, every marker segment
// carries a 2-byte length and is skipped by it (APPn, DQT, DHT, SOFn, DRI, COM,
// …); after SOS comes entropy-coded data, where FF00 is a stuffed FF, FFD0-FFD7
// are restart markers, FF FF… are fill bytes, FFD9 ends the image and any other
// marker (another DHT/SOS in a progressive JPEG, DNL) is a segment again.
//
// Memory: the bytes of an image that spans chunks are kept as a list of views
// on those chunks and joined with exactly one allocation when the image ends;
// an image that lies inside one chunk is handed on as a zero-copy view.
// Nothing is ever allocated from a length read off the wire.
//
// Errors never stop the parser: bytes before an SOI are skipped (counted), a
// malformed image is dropped at the first byte that breaks the structure and
// the search for the next SOI starts at that byte, and an image that grows
// past maxFrameBytes is dropped while its structure is still followed to its
// EOI (so a thumbnail inside it cannot be mistaken for the next image).
//
// The marker codes and what SOF says come from jpeg.ts, which also holds the
// whole-buffer walks (jpegSize, isCompleteJpeg).

import { EOI, MARKER, SOF_HEAD, SOI, SOS, isRestart, isSof, isStandalone, sofInfo, type JpegInfo } from './jpeg.js'
import { CutFrameError, type ByteParser, type ByteParserOptions } from './parser.js'

/** maxFrameBytes: the largest image kept; a bigger one is dropped (counted, reported to onDrop) and the parser resyncs after it. */
export interface MjpegParserOptions extends ByteParserOptions {
  onFrame(data: Buffer, info: JpegInfo): void
  /** An image was dropped in the stream: why, and how many of its bytes were thrown away (one cut short by the end is end()'s error instead). */
  onDrop?(reason: string, bytes: number): void
}

const enum S {
  /** Between images: looking for FF D8. */
  Seek,
  /** Inside an image, a marker must come next (FF). */
  Marker,
  /** After FF: the marker code (or more FF fill bytes). */
  Code,
  /** First byte of a segment length. */
  LengthHi,
  /** Second byte of a segment length. */
  LengthLo,
  /** Inside a marker segment's payload. */
  Skip,
  /** Entropy-coded data after SOS. */
  Entropy,
  /** Entropy-coded data, just after an FF. */
  EntropyFF,
}

const FF_BYTE = Buffer.from([MARKER])

function hex(code: number): string {
  return '0x' + code.toString(16).toUpperCase().padStart(2, '0')
}

export class MjpegParser implements ByteParser {
  /** Images handed to onFrame. */
  frames = 0
  /** Images dropped (malformed, cut short, too large). */
  drops = 0
  /** Bytes outside any image (before an SOI), e.g. padding between frames or garbage. */
  skippedBytes = 0
  /** Bytes of dropped images (for an image dropped for its size: those held until it was dropped). */
  lostBytes = 0

  private readonly max: number
  private readonly stage: string
  private readonly onFrame: MjpegParserOptions['onFrame']
  private readonly onDrop: MjpegParserOptions['onDrop']

  private state = S.Seek
  /** In Seek: the previous chunk ended with FF, which may start an SOI. */
  private pendingFF = false
  /** Views on earlier chunks holding the current image's first bytes. */
  private parts: Buffer[] = []
  /** Bytes of the current image seen so far in earlier chunks. */
  private partBytes = 0
  /** The current image outgrew maxFrameBytes: follow its structure to EOI, keep nothing. */
  private discarding = false
  private sawScan = false
  private marker = 0
  private segLeft = 0
  private sof = Buffer.alloc(SOF_HEAD)
  private sofFilled = 0
  private info: JpegInfo = { width: 0, height: 0, components: 0 }
  // Per feed(): where the current image starts in this chunk (-1: in an earlier chunk or no image), and where the latest FF is.
  private start = -1
  private ffAt = -1

  constructor(options: MjpegParserOptions) {
    this.max = options.maxFrameBytes
    this.stage = options.stage ?? 'mjpeg'
    this.onFrame = options.onFrame
    this.onDrop = options.onDrop
  }

  /** Bytes of an unfinished image held from earlier chunks: never more than maxFrameBytes after a feed(). */
  get heldBytes(): number {
    return this.partBytes
  }

  /** Never an error: a malformed image is dropped (onDrop) and the search for the next one goes on. */
  feed(buf: Buffer): undefined {
    const end = buf.length
    let pos = 0
    this.start = this.state === S.Seek || this.discarding ? -1 : 0
    this.ffAt = -1
    while (pos < end) {
      switch (this.state) {
        case S.Seek: {
          if (this.pendingFF) {
            this.pendingFF = false
            if (buf[0] === SOI) {
              this.begin(-1, 0)
              pos = 1
              break
            }
            this.skippedBytes++
          }
          const ff = buf.indexOf(MARKER, pos)
          if (ff < 0 || ff === end - 1) {
            this.skippedBytes += (ff < 0 ? end : ff) - pos
            this.pendingFF = ff >= 0
            pos = end
          } else if (buf[ff + 1] === SOI) {
            this.skippedBytes += ff - pos
            this.begin(ff, ff + 1)
            pos = ff + 2
          } else {
            this.skippedBytes += ff + 1 - pos
            pos = ff + 1
          }
          break
        }
        case S.Marker: {
          const b = buf[pos]!
          if (b !== MARKER) {
            this.drop(pos, `expected a marker after ${hex(this.marker)} but found byte ${hex(b)}`)
            break
          }
          this.ffAt = pos++
          this.state = S.Code
          break
        }
        case S.Code:
        case S.EntropyFF: {
          const code = buf[pos]!
          const inScan = this.state === S.EntropyFF
          if (code === MARKER) {
            this.ffAt = pos++
          } else if (inScan && (code === 0x00 || isRestart(code))) {
            pos++
            this.state = S.Entropy
          } else if (code === EOI) {
            pos++
            this.finish(buf, pos)
          } else if (code === SOI) {
            // The new image starts at its FF; when that FF ended the previous chunk, it is taken back from this image.
            const ff = this.ffAt
            this.drop(ff >= 0 ? ff : pos, 'a new image began before the end of this one (no EOI)', ff >= 0 ? 0 : 1)
            this.begin(ff, pos)
            pos++
          } else if (code === 0x00) {
            this.drop(pos, 'FF00 outside entropy-coded data')
          } else {
            pos++
            this.marker = code
            this.state = isStandalone(code) ? S.Marker : S.LengthHi
          }
          break
        }
        case S.LengthHi:
          this.segLeft = buf[pos++]! << 8
          this.state = S.LengthLo
          break
        case S.LengthLo: {
          const length = this.segLeft | buf[pos]!
          if (length < 2) {
            this.drop(pos, `marker ${hex(this.marker)} has a segment length of ${length}`)
            break
          }
          pos++
          this.segLeft = length - 2
          this.sofFilled = isSof(this.marker) ? 0 : SOF_HEAD
          this.afterSegment()
          break
        }
        case S.Skip: {
          while (this.sofFilled < SOF_HEAD && pos < end && this.segLeft > 0) {
            this.sof[this.sofFilled++] = buf[pos++]!
            this.segLeft--
            if (this.sofFilled === SOF_HEAD) this.readSof()
          }
          const rest = Math.min(this.segLeft, end - pos)
          pos += rest
          this.segLeft -= rest
          if (this.segLeft === 0) this.afterSegment()
          break
        }
        case S.Entropy: {
          const ff = buf.indexOf(MARKER, pos)
          if (ff < 0) {
            pos = end
          } else {
            this.ffAt = ff
            pos = ff + 1
            this.state = S.EntropyFF
          }
          break
        }
      }
    }
    // Keep what this chunk holds of an unfinished image.
    if (this.state !== S.Seek && !this.discarding) {
      const from = Math.max(0, this.start)
      if (from < end) {
        this.parts.push(from === 0 ? buf : buf.subarray(from))
        this.partBytes += end - from
      }
      if (this.partBytes > this.max) this.overflow()
    }
    return undefined
  }

  /**
   * The input ended. An image cut short is dropped (counted in drops and
   * lostBytes) and returned as the error; one already dropped for its size
   * was reported when it overflowed.
   */
  end(): CutFrameError | undefined {
    if (this.pendingFF) {
      this.pendingFF = false
      this.skippedBytes++
    }
    if (this.state === S.Seek) return undefined
    const lost = this.partBytes
    const discarding = this.discarding
    this.reset()
    if (discarding) return undefined
    this.drops++
    this.lostBytes += lost
    return new CutFrameError(this.stage, 'an image', lost)
  }

  /** Start an image whose FF is at `ff` in this chunk (-1: it was the last byte of the previous chunk) and whose D8 is at `d8`. */
  private begin(ff: number, d8: number): void {
    this.reset()
    if (ff >= 0) {
      this.start = ff
    } else {
      this.parts.push(FF_BYTE)
      this.partBytes = 1
      this.start = d8
    }
    this.marker = SOI
    this.state = S.Marker
  }

  private afterSegment(): void {
    if (this.segLeft > 0) {
      this.state = S.Skip
      return
    }
    if (this.marker === SOS) {
      this.sawScan = true
      this.state = S.Entropy
    } else {
      this.state = S.Marker
    }
  }

  private readSof(): void {
    if (this.info.width === 0 && this.info.height === 0) this.info = sofInfo(this.sof, 0)
  }

  /** EOI read; `pos` is just past it. */
  private finish(buf: Buffer, pos: number): void {
    if (this.discarding) {
      this.reset()
      return
    }
    const length = this.partBytes + pos - Math.max(0, this.start)
    if (!this.sawScan) {
      this.drop(pos, 'the image ended (EOI) before any scan (SOS)')
      return
    }
    if (length > this.max) {
      this.drop(pos, `the image is ${length} bytes, more than maxFrameBytes (${this.max})`)
      return
    }
    let data: Buffer
    if (this.parts.length === 0) {
      data = buf.subarray(this.start, pos)
    } else {
      data = Buffer.allocUnsafe(length)
      let at = 0
      for (const p of this.parts) {
        p.copy(data, at)
        at += p.length
      }
      buf.copy(data, at, 0, pos)
    }
    const info = this.info
    this.reset()
    this.frames++
    this.onFrame(data, info)
  }

  /**
   * Drop the current image, whose bytes in this chunk end before `upto`;
   * the search for the next SOI goes on from `upto`. An SOI followed by no
   * valid marker was never an image (FF D8 occurs in garbage too): its bytes
   * count as skipped, not as a dropped image.
   */
  private drop(upto: number, reason: string, givenBack = 0): void {
    const wasDiscarding = this.discarding
    const onlySoi = this.marker === SOI
    const lost = this.partBytes + (this.start >= 0 ? upto - this.start : upto) - givenBack
    this.reset()
    if (wasDiscarding) return // counted when it overflowed
    if (onlySoi) this.skippedBytes += lost
    else this.countDrop(reason, lost)
  }

  private overflow(): void {
    this.countDrop(`the image grew past maxFrameBytes (${this.max}) without an EOI`, this.partBytes)
    this.parts = []
    this.partBytes = 0
    this.discarding = true
  }

  private countDrop(reason: string, bytes: number): void {
    this.drops++
    this.lostBytes += bytes
    this.onDrop?.(reason, bytes)
  }

  private reset(): void {
    this.state = S.Seek
    this.parts = []
    this.partBytes = 0
    this.discarding = false
    this.sawScan = false
    this.segLeft = 0
    this.sofFilled = SOF_HEAD
    this.info = { width: 0, height: 0, components: 0 }
    this.start = -1
  }
}
