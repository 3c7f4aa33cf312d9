// The raw ↔ JPEG hot path: which codec does it, and how.
//
// Raw pixels → JPEG (the jpeg stage) and JPEG → raw pixels (decode) go to
// libjpeg-turbo through @julusian/jpeg-turbo when it loads; sharp does
// everything else (PNG, WebP, resize, transcoding, progressive/optimised/
// mozjpeg encoding, CMYK, 12-bit, ICC profiles, 2-channel and transparent
// RGBA pixels), and all of it when the binding cannot load or
// FRAME_PIPE_JPEG_CODEC=sharp is set.
//
// Why (issue 9; measured on the 2-core test VM, loaded by other jobs, so
// CPU time rather than wall, and figures side by side in the same minutes):
//  - CPU per call, 640x480 / 1920x1080, the bench's noisy picture at q80:
//      decode  sharp raw().toBuffer() 6.2 / 19.9 ms; binding 1.4-1.6 / 8.4-9.4 ms;
//              libjpeg-turbo's own tjbench 1.3 / 7.8 ms
//      encode  sharp jpeg().toBuffer() 3.4 / 13.6 ms; binding 1.4 / 7.8-8.8 ms
//    so the binding runs at the codec's speed and sharp does not. perf on the
//    receiver (`tcp-server ! unprefix ! decode ! null`, 640x480, sharp) put
//    38% of samples in libvips, 26% in V8 (mostly garbage collection), 17%
//    in the kernel (thread wake-ups, page faults on fresh output buffers) and
//    16% in libc (malloc, memmove, memset); its main thread spent about
//    1.3 ms per frame in collections and 1.3 ms in sharp's result callback.
//    The same receiver on the binding: 54% libturbojpeg, receiver CPU per
//    frame 7.4 → 2.4 ms, start-up included.
//  - Async (libuv thread pool) rather than the Sync calls on the main
//    thread: the same CPU per frame, more frames per second under load
//    (640x480 encode → TCP → decode 191-232 fps against 140-210 with the
//    calls on the main thread), and the stages' `concurrency` keeps its
//    meaning. Each call still costs about 0.25 ms on the main thread
//    (TurboJPEG handle and header), the binding's own.
//  - The binding compresses and decompresses with the fast integer DCT, as
//    GStreamer's jpegenc/jpegdec do by default: same size (48.9 KB at
//    640x480), PSNR 0.04 dB lower when encoding and 0.2 dB when decoding.
//  - The package: libjpeg-turbo 3.1 with its SIMD code, prebuilt N-API
//    binaries for Linux (x64, arm64, arm, musl), macOS (x64, arm64) and
//    Windows (x64, ia32, arm64) inside the npm tarball (nothing downloaded
//    at install); 3.x needs Node 22, hence ^2.3.0.
//
// Buffers: a decoded frame travels on downstream, so its pixels get a fresh
// buffer, sized from the header read here (maxPixels is checked before it
// exists). The compressor's worst-case output buffer never leaves this
// module, so it is reused (ScratchPool). Fresh multi-megabyte buffers cost
// page faults, which glibc's malloc would avoid with a higher mmap threshold
// (GLIBC_TUNABLES=glibc.malloc.mmap_threshold=…, an environment variable a
// user may set before starting node; a library cannot set it for them).

import type { EventEmitter } from 'node:events'
import { createRequire } from 'node:module'
import type { Frame } from '../core/frame.js'
import { jpegHeader } from '../wire/jpeg.js'
import { overMaxPixels } from './sharp.js'

/** The part of @julusian/jpeg-turbo 2.x used here (its own typings, restated so that nothing loads it at import time). */
interface TurboBinding {
  FORMAT_RGB: number
  FORMAT_RGBA: number
  FORMAT_GRAY: number
  SAMP_444: number
  SAMP_420: number
  SAMP_GRAY: number
  bufferSize(o: { width: number; height: number; subsampling: number }): number
  compress(
    raw: Buffer,
    out: Buffer,
    o: { format: number; width: number; height: number; quality: number; subsampling: number },
  ): Promise<Buffer>
  decompress(jpeg: Buffer, out: Buffer, o: { format: number }): Promise<{ data: Buffer; width: number; height: number }>
}

/** The environment variable that forces sharp for the raw ↔ JPEG path (FRAME_PIPE_JPEG_CODEC=sharp). */
export const CODEC_ENV = 'FRAME_PIPE_JPEG_CODEC'

export interface JpegCodecInfo {
  /** Who does raw ↔ JPEG: 'libjpeg-turbo' (the binding) or 'sharp'. */
  name: 'libjpeg-turbo' | 'sharp'
  /** Why sharp, when it is sharp. */
  reason?: string
}

let state: { binding: TurboBinding | undefined; info: JpegCodecInfo } | undefined

function load(): { binding: TurboBinding | undefined; info: JpegCodecInfo } {
  if (state) return state
  const wanted = process.env[CODEC_ENV]
  if (wanted === 'sharp') {
    state = { binding: undefined, info: { name: 'sharp', reason: `${CODEC_ENV}=sharp` } }
    return state
  }
  try {
    const binding = createRequire(import.meta.url)('@julusian/jpeg-turbo') as TurboBinding
    state = { binding, info: { name: 'libjpeg-turbo' } }
  } catch (err) {
    // No prebuilt binary for this platform, or it failed to load: sharp does the work, slower.
    state = {
      binding: undefined,
      info: { name: 'sharp', reason: `@julusian/jpeg-turbo did not load: ${(err as Error).message.split('\n')[0]}` },
    }
  }
  return state
}

/** Which codec the raw ↔ JPEG path uses in this process (the binding is loaded on the first call). */
export function jpegCodec(): JpegCodecInfo {
  return load().info
}

/**
 * When the binding failed to load (not when sharp was asked for), tell the
 * stage's listeners once, as an 'info' event (the CLI logs it): the work
 * still gets done, several times slower, and the reason says why.
 */
export function reportFallback(stage: EventEmitter): void {
  const { name, reason } = load().info
  if (name !== 'sharp' || !reason || reason.startsWith(CODEC_ENV)) return
  // Next tick: listeners attach after the stage is made.
  process.nextTick(() => stage.emit('info', { message: `${reason}; sharp does the JPEG work, several times slower` }))
}

/** For tests: forget the choice, so that the next call looks at the environment again. */
export function resetJpegCodec(): void {
  state = undefined
}

// ---------------------------------------------------------------------------
// Encoding.

export interface TurboEncodeSettings {
  quality: number
  chroma: '4:2:0' | '4:4:4'
}

/**
 * Buffers of one size, reused: at most 4 are kept; a new size drops them.
 * For the compressor's output: libjpeg-turbo needs room for the worst case
 * (about 1.5 × the raw size at 4:2:0) before it knows the size; a fresh
 * buffer that large per frame costs page faults and, worse, external memory
 * that keeps V8's garbage collector busy. Such a buffer is lent to exactly
 * one compress call and comes back only after the JPEG's bytes have been
 * copied out, so no frame ever points into one. For decoded pixels: each
 * decode stage has one, and a frame's buffer comes back when its last holder
 * releases it (Frame.release).
 */
export class BufferPool {
  private readonly free: Buffer[] = []
  private size = 0

  take(size: number): Buffer {
    if (size !== this.size) {
      // New dimensions: the old buffers no longer fit (or are too big to keep).
      this.free.length = 0
      this.size = size
    }
    return this.free.pop() ?? Buffer.allocUnsafeSlow(size)
  }

  give(buf: Buffer): void {
    if (buf.length === this.size && this.free.length < 4) this.free.push(buf)
  }
}

/** What libjpeg-turbo takes for this raw frame, or undefined when sharp must do it (2 channels; RGBA with transparency, which sharp flattens onto black). */
function encodeFormat(t: TurboBinding, frame: Frame): number | undefined {
  switch (frame.channels) {
    case 1:
      return t.FORMAT_GRAY
    case 3:
      return t.FORMAT_RGB
    case 4:
      return isOpaque(frame.data) ? t.FORMAT_RGBA : undefined
    default:
      return undefined
  }
}

/** Every alpha byte of RGBA pixels is 255 (then dropping alpha is all sharp would do too). */
function isOpaque(rgba: Buffer): boolean {
  if (rgba.byteOffset % 4 === 0) {
    const px = new Uint32Array(rgba.buffer, rgba.byteOffset, rgba.length >> 2)
    // Little-endian: alpha is the top byte of each 32-bit pixel; big-endian: the bottom one.
    const mask = LITTLE_ENDIAN ? 0xff000000 : 0xff
    for (let i = 0; i < px.length; i++) if ((px[i]! & mask) >>> 0 !== mask >>> 0) return false
    return true
  }
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] !== 255) return false
  return true
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

/**
 * A raw-frame JPEG encoder on libjpeg-turbo for these settings, or undefined
 * when the binding is not in use. The encoder returns undefined for a frame
 * it does not take (see encodeFormat), and the caller uses sharp.
 */
export function turboEncoder(settings: TurboEncodeSettings): ((frame: Frame) => Promise<Buffer> | undefined) | undefined {
  const t = load().binding
  if (!t) return undefined
  const pool = new BufferPool()
  return (frame) => {
    const format = encodeFormat(t, frame)
    if (format === undefined) return undefined
    const { width, height } = frame
    const subsampling = frame.channels === 1 ? t.SAMP_GRAY : settings.chroma === '4:4:4' ? t.SAMP_444 : t.SAMP_420
    const options = { format, width, height, quality: settings.quality, subsampling }
    const scratch = pool.take(t.bufferSize(options))
    return t.compress(frame.data, scratch, options).then(
      (view) => {
        // The JPEG leaves in a buffer of its own size; the scratch goes back.
        const data = Buffer.allocUnsafe(view.length)
        view.copy(data)
        pool.give(scratch)
        return data
      },
      (err: unknown) => {
        pool.give(scratch)
        throw err
      },
    )
  }
}

// ---------------------------------------------------------------------------
// Decoding.

export type DecodeChannels = 'keep' | '3' | '4'

const BASELINE = 0xc0
const EXTENDED = 0xc1
const PROGRESSIVE = 0xc2

/**
 * Decode a JPEG frame to raw pixels with libjpeg-turbo. Undefined when the
 * binding is not in use or the JPEG is one sharp handles (no SOF found, not
 * 8-bit Huffman-coded, CMYK, an embedded ICC profile, whose colours sharp
 * converts to sRGB). Throws ERR_DECODE, before anything is allocated, when
 * the header announces more than maxPixels. The promise resolves undefined
 * when libjpeg-turbo refuses the data (corrupt, truncated): the caller asks
 * sharp, which decides with its own words, so errors read the same whichever
 * codec ran.
 */
export function turboDecode(
  frame: Frame,
  channels: DecodeChannels,
  maxPixels: number,
  stage: string,
  pool?: BufferPool,
): Promise<Frame | undefined> | undefined {
  const t = load().binding
  if (!t || frame.format !== 'jpeg') return undefined
  const head = jpegHeader(frame.data)
  if (!head || head.icc || head.precision !== 8 || head.width === 0 || head.height === 0) return undefined
  if (head.sof !== BASELINE && head.sof !== EXTENDED && head.sof !== PROGRESSIVE) return undefined
  if (head.components !== 1 && head.components !== 3) return undefined
  const { width, height } = head
  if (width * height > maxPixels) throw overMaxPixels(stage, frame, width, height, maxPixels)
  // 'keep' is RGB for a grey JPEG too: sharp's raw output is sRGB, and its decode was the stage's definition.
  const outChannels = channels === '4' ? 4 : 3
  const format = outChannels === 3 ? t.FORMAT_RGB : t.FORMAT_RGBA
  // Sized from the header read above: libjpeg-turbo reads its own, and refuses
  // ('Insufficient output buffer') rather than write past this one.
  const size = width * height * outChannels
  const out = pool ? pool.take(size) : Buffer.allocUnsafeSlow(size)
  return t.decompress(frame.data, out, { format }).then(
    (r): Frame | undefined => {
      if (r.width !== width || r.height !== height) {
        pool?.give(out)
        return undefined
      }
      const decoded: Frame = { data: out, format: 'raw', width, height, channels: outChannels, seq: frame.seq, timestamp: frame.timestamp }
      if (pool) decoded.release = () => pool.give(out)
      return decoded
    },
    () => {
      pool?.give(out)
      return undefined
    },
  )
}
