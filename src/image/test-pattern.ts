// The test pattern: colour bars, a box that bounces with the frame number,
// and the frame number in big digits, so a screenshot tells which frame it is
// and a frozen or skipping stream is visible at a glance. renderTestFrame
// draws one frame; TestSource is the paced source behind the testsrc stage.

import { FramePipeError } from '../core/errors.js'
import { now, type Frame } from '../core/frame.js'
import { PacedSource } from '../core/pacer.js'
import type { StageContext } from '../core/stage.js'
import { loadSharp } from './sharp-loader.js'
import { turboEncoder } from './jpeg-codec.js'

export const TESTSRC_FORMATS = ['raw', 'jpeg'] as const
export type TestsrcFormat = (typeof TESTSRC_FORMATS)[number]

export interface TestPatternConfig {
  /** Frame width in pixels (default 640) */
  width: number
  /** Frame height in pixels (default 480) */
  height: number
  /** Frames per second; 0 = as fast as downstream takes them. */
  fps: number
  /** Frames before the end; 0 = endless. */
  count: number
  /** raw: RGB pixels (3 channels); jpeg: encoded at `quality` (4:2:0, by libjpeg-turbo like the jpeg stage; by sharp, with optimised tables, when the binding is not available) (default raw) */
  format: TestsrcFormat
  /** JPEG quality when format is jpeg. */
  quality: number
}

export class TestSource extends PacedSource {
  private readonly o: TestPatternConfig
  private n = 0
  /** format=jpeg: the jpeg stage's libjpeg-turbo encoder, or undefined (sharp) when the binding is not in use. */
  private readonly encode: ((frame: Frame) => Promise<Buffer> | undefined) | undefined

  constructor(o: TestPatternConfig, ctx: StageContext) {
    super(o.fps, ctx)
    this.o = o
    this.encode = o.format === 'jpeg' ? turboEncoder({ quality: o.quality, chroma: '4:2:0' }) : undefined
  }

  protected exhausted(): boolean {
    return this.o.count > 0 && this.n >= this.o.count
  }

  protected produce(): Frame | Promise<Frame> {
    const { width, height, format, quality } = this.o
    const seq = this.n++
    const timestamp = now()
    const pixels = renderTestFrame(seq, width, height)
    const raw: Frame = { data: pixels, format: 'raw', width, height, channels: 3, seq, timestamp }
    if (format === 'raw') return raw
    // libjpeg-turbo when it loaded: a few milliseconds to load against sharp's hundreds, so the first frame is not late.
    const encoded =
      this.encode?.(raw) ??
      loadSharp().then((sharp) =>
        sharp(pixels, { raw: { width, height, channels: 3 } })
          .jpeg({ quality })
          .toBuffer(),
      )
    return encoded.then(
      (data): Frame => ({ data, format: 'jpeg', width, height, channels: 3, seq, timestamp }),
      (err: Error) => {
        throw new FramePipeError('ERR_ENCODE', `cannot encode frame ${seq} (${width}x${height}) as JPEG: ${err.message}`, {
          stage: this.ctx.name,
          cause: err,
        })
      },
    )
  }
}

// ---------------------------------------------------------------------------
// Rendering. Whole rows are made with Buffer.fill/copy (memset/memcpy speed);
// per-pixel work is limited to nothing: every shape is a run of a row.

const BARS: readonly (readonly [number, number, number])[] = [
  [255, 255, 255],
  [255, 255, 0],
  [0, 255, 255],
  [0, 255, 0],
  [255, 0, 255],
  [255, 0, 0],
  [0, 0, 255],
  [0, 0, 0],
]

// 5x7 digits, one string per row, '#' lit.
const GLYPHS: readonly (readonly string[])[] = [
  ['.###.', '#...#', '#..##', '#.#.#', '##..#', '#...#', '.###.'],
  ['..#..', '.##..', '..#..', '..#..', '..#..', '..#..', '.###.'],
  ['.###.', '#...#', '....#', '...#.', '..#..', '.#...', '#####'],
  ['#####', '...#.', '..#..', '...#.', '....#', '#...#', '.###.'],
  ['...#.', '..##.', '.#.#.', '#..#.', '#####', '...#.', '...#.'],
  ['#####', '#....', '####.', '....#', '....#', '#...#', '.###.'],
  ['..##.', '.#...', '#....', '####.', '#...#', '#...#', '.###.'],
  ['#####', '....#', '...#.', '..#..', '.#...', '.#...', '.#...'],
  ['.###.', '#...#', '#...#', '.###.', '#...#', '#...#', '.###.'],
  ['.###.', '#...#', '#...#', '.####', '....#', '...#.', '.##..'],
]
const GLYPH_W = 5
const GLYPH_H = 7
const DIGITS_MIN = 6

// The bars row depends on width only; a source keeps its width, so one entry is enough.
let barsCache: { width: number; row: Buffer } | undefined

function barsRow(width: number): Buffer {
  if (barsCache?.width === width) return barsCache.row
  const row = Buffer.allocUnsafe(width * 3)
  for (let i = 0; i < BARS.length; i++) {
    const x0 = Math.floor((i * width) / BARS.length)
    const x1 = Math.floor(((i + 1) * width) / BARS.length)
    row.fill(Buffer.from(BARS[i]!), x0 * 3, x1 * 3)
  }
  barsCache = { width, row }
  return row
}

/** Triangle wave: 0 → range → 0, so the box bounces off the edges. */
function bounce(v: number, range: number): number {
  if (range <= 0) return 0
  const p = v % (2 * range)
  return p <= range ? p : 2 * range - p
}

/**
 * The raw RGB pixels of test frame `n` (a pure function of its arguments):
 * colour bars, a black-and-white box bouncing with `n`, and `n` in digits on a
 * black band at the bottom. A new buffer each call: frames in flight must not
 * share memory.
 */
export function renderTestFrame(n: number, width: number, height: number): Buffer {
  const stride = width * 3
  const buf = Buffer.allocUnsafe(stride * height)

  const text = String(n).padStart(DIGITS_MIN, '0')
  const cell = GLYPH_W + 1
  // Digits about a fifth of the height, shrunk to fit the width when possible.
  let scale = Math.max(1, Math.floor(height / 5 / (GLYPH_H + 2)))
  scale = Math.max(1, Math.min(scale, Math.floor((width - 2) / (text.length * cell))))
  const bandH = (GLYPH_H + 2) * scale
  const barsH = height - bandH

  // Bars: one row, then double the filled part until the region is full.
  barsRow(width).copy(buf, 0)
  const barsEnd = barsH * stride
  for (let filled = stride; filled < barsEnd;) {
    const len = Math.min(filled, barsEnd - filled)
    buf.copyWithin(filled, 0, len)
    filled += len
  }

  drawBox(buf, n, width, barsH)

  buf.fill(0, barsEnd)
  const textW = text.length * cell * scale - scale
  // Centred; when even scale 1 is too wide, right-aligned so the digits that change stay visible.
  const x0 = textW <= width ? Math.floor((width - textW) / 2) : width - textW
  const y0 = barsH + scale
  const spanStart = Math.max(0, x0) * 3
  const spanEnd = Math.min(width, x0 + textW) * 3
  for (let gy = 0; gy < GLYPH_H; gy++) {
    const rowStart = (y0 + gy * scale) * stride
    for (let d = 0; d < text.length; d++) {
      const bits = GLYPHS[text.charCodeAt(d) - 48]![gy]!
      for (let gx = 0; gx < GLYPH_W; gx++) {
        if (bits[gx] !== '#') continue
        const a = Math.max(0, x0 + (d * cell + gx) * scale)
        const b = Math.min(width, x0 + (d * cell + gx + 1) * scale)
        if (b > a) buf.fill(255, rowStart + a * 3, rowStart + b * 3)
      }
    }
    for (let r = 1; r < scale; r++) buf.copyWithin(rowStart + r * stride + spanStart, rowStart + spanStart, rowStart + spanEnd)
  }
  return buf
}

function drawBox(buf: Buffer, n: number, width: number, barsH: number): void {
  const stride = width * 3
  const size = Math.max(4, Math.floor(Math.min(width, barsH) / 4))
  if (size > barsH) return
  const x = bounce(n * Math.max(1, Math.round(width / 64)), width - size)
  const y = bounce(n * Math.max(1, Math.round(barsH / 48)), barsH - size)
  const border = Math.max(1, Math.floor(size / 8))
  for (let r = 0; r < size; r++) {
    const row = (y + r) * stride
    buf.fill(0, row + x * 3, row + (x + size) * 3)
    if (r >= border && r < size - border) buf.fill(255, row + (x + border) * 3, row + (x + size - border) * 3)
  }
}
