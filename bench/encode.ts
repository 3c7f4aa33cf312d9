// JPEG encode throughput at 640x480 and 1920x1080 with 1, 2 and 4 encodes in
// flight (quality 80, optimize off). Four measurements per case, run in
// alternating slices so the machine's noise hits all alike:
//  - codec alone: a plain loop encoding one pre-rendered test picture with the
//    same number of promises in flight, through the codec the jpeg stage uses
//    (libjpeg-turbo's binding; sharp when it is not there): the baseline;
//  - sharp alone: the same loop through sharp (the jpeg stage's codec before
//    issue 9, and its fallback);
//  - pre-rendered → jpeg → null: a tiny source emitting that same picture
//    (one shared Buffer; the encoder only reads it), so the ratio to the
//    codec alone is what the stream machinery around it costs, nothing else;
//  - testsrc → jpeg → null: what users get, testsrc drawing a new frame each
//    time on the main thread (a fresh 6 MB buffer per 1080p frame).
// The "render only" rows (testsrc → null) give the drawing cost and the page
// faults per frame behind it. One more row runs optimize=true at 640x480 ×4
// to put a figure on the Huffman-optimisation trade-off.

import { Readable } from 'node:stream'
import sharp, { type JpegOptions } from 'sharp'
import { now, type Frame } from '../src/core/frame.js'
import { pipeline, stopSource } from '../src/core/pipeline.js'
import { stageInfo } from '../src/core/stage.js'
import { nullSink } from '../src/sinks/null.js'
import { renderTestFrame } from '../src/image/test-pattern.js'
import { jpegCodec, turboEncoder } from '../src/image/jpeg-codec.js'
import { testsrc } from '../src/sources/testsrc.js'
import { jpeg } from '../src/transforms/jpeg.js'
import type { Bench, BenchRow } from './types.js'

const GROUP = 'encode'
/** Time per measurement and case, split into ROUNDS slices. */
const SIDE_MS = 1600
const SIZES = [
  [640, 480],
  [1920, 1080],
] as const
const IN_FLIGHT = [1, 2, 4] as const
const QUALITY = 80

interface Result {
  fps: number
  bytesPerFrame: number
}
interface Tally {
  frames: number
  bytes: number
  ms: number
}

const ROUNDS = 4

const empty = (): Tally => ({ frames: 0, bytes: 0, ms: 0 })
const add = (a: Tally, b: Tally): void => {
  a.frames += b.frames
  a.bytes += b.bytes
  a.ms += b.ms
}
const result = (t: Tally): Result => ({ fps: t.frames / (t.ms / 1000), bytesPerFrame: t.bytes / t.frames })

/**
 * The same raw frame again and again, as fast as taken, until stop(): a new
 * Frame object (with its own seq) around one shared Buffer, which is sound
 * here because the encoder only reads it.
 */
class Prerendered extends Readable {
  private n = 0
  private stopping = false

  constructor(private readonly frame: Frame) {
    super({ objectMode: true, highWaterMark: 1 })
  }

  /** End at the next read (what is already queued still goes through), as testsrc's stop() does. */
  stop(): void {
    this.stopping = true
  }

  override _read(): void {
    this.push(this.stopping ? null : { ...this.frame, seq: this.n++ })
  }
}

type Source = { kind: 'testsrc'; width: number; height: number } | { kind: 'prerendered'; frame: Frame }

/** source (as fast as taken) → [jpeg] → null for about `ms`, then a clean stop. */
async function runPipeline(from: Source, ms: number, encode?: { concurrency: number; optimize: boolean }): Promise<Tally> {
  const source = from.kind === 'testsrc' ? testsrc({ width: from.width, height: from.height, fps: 0 }) : new Prerendered(from.frame)
  const encoder = encode ? jpeg({ quality: QUALITY, optimize: encode.optimize, concurrency: encode.concurrency }) : undefined
  const sink = nullSink()
  const timer = setTimeout(() => stopSource(source), ms)
  const t0 = performance.now()
  try {
    await pipeline(...(encoder ? [source, encoder, sink] : [source, sink]))
  } finally {
    clearTimeout(timer)
  }
  const { frames, bytes } = stageInfo(sink)!.counters
  return { frames, bytes, ms: performance.now() - t0 }
}

/** The same encodes without streams: `inFlight` loops, each awaiting one sharp call at a time. */
async function sharpAlone(raw: Buffer, width: number, height: number, inFlight: number, options: JpegOptions, ms: number): Promise<Tally> {
  const tally = empty()
  const t0 = performance.now()
  const deadline = t0 + ms
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const out = await sharp(raw, { raw: { width, height, channels: 3 } })
        .jpeg(options)
        .toBuffer()
      tally.frames++
      tally.bytes += out.length
    }
  }
  await Promise.all(Array.from({ length: inFlight }, loop))
  tally.ms = performance.now() - t0
  return tally
}

/** The same loops through the jpeg stage's codec (turboEncoder), or sharp when the binding is not in use. */
async function codecAlone(frame: Frame, inFlight: number, ms: number): Promise<Tally> {
  const encode = turboEncoder({ quality: QUALITY, chroma: '4:2:0' })
  if (!encode) return sharpAlone(frame.data, frame.width, frame.height, inFlight, { quality: QUALITY, optimiseCoding: false }, ms)
  const tally = empty()
  const t0 = performance.now()
  const deadline = t0 + ms
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const out = await encode(frame)!
      tally.frames++
      tally.bytes += out.length
    }
  }
  await Promise.all(Array.from({ length: inFlight }, loop))
  tally.ms = performance.now() - t0
  return tally
}

/**
 * Run measurements in alternating slices (A B C A B C …) so that a change in
 * machine load during the case hits all of them alike; the ratios are what count.
 */
async function sideBySide(...runs: Array<(ms: number) => Promise<Tally>>): Promise<Result[]> {
  const tallies = runs.map(empty)
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < runs.length; i++) add(tallies[i]!, await runs[i]!(SIDE_MS / ROUNDS))
  }
  return tallies.map(result)
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB/frame`
const times = (a: Result, b: Result) => `${(a.fps / b.fps).toFixed(2)}×`

export const bench: Bench = async () => {
  const rows: BenchRow[] = []
  const codec = jpegCodec().name
  // Warm up sharp/libvips and the JIT so the first measured case is not penalised.
  await runPipeline({ kind: 'testsrc', width: 640, height: 480 }, 500, { concurrency: 2, optimize: false })
  await runPipeline({ kind: 'prerendered', frame: rawFrame(640, 480) }, 300, { concurrency: 2, optimize: false })

  for (const [width, height] of SIZES) {
    const size = `${width}x${height}`
    const faults0 = process.resourceUsage().minorPageFault
    const render = await runPipeline({ kind: 'testsrc', width, height }, 800)
    const faults = (process.resourceUsage().minorPageFault - faults0) / render.frames
    const drawn = result(render)
    rows.push({
      group: GROUP,
      name: `testsrc → null ${size} (render only)`,
      value: drawn.fps,
      unit: 'frames/s',
      note: `${(1000 / drawn.fps).toFixed(2)} ms to draw a frame; ${Math.round(faults)} page faults per frame (${Math.ceil((width * height * 3) / 4096)} pages in a frame)`,
    })
    // The same picture for every sharp-alone and pre-rendered encode: testsrc's frame 0.
    const frame = rawFrame(width, height)
    for (const n of IN_FLIGHT) {
      const [alone, viaSharp, pre, drawnEach] = await sideBySide(
        (ms) => codecAlone(frame, n, ms),
        (ms) => sharpAlone(frame.data, width, height, n, { quality: QUALITY, optimiseCoding: false }, ms),
        (ms) => runPipeline({ kind: 'prerendered', frame }, ms, { concurrency: n, optimize: false }),
        (ms) => runPipeline({ kind: 'testsrc', width, height }, ms, { concurrency: n, optimize: false }),
      )
      rows.push(
        {
          group: GROUP,
          name: `${codec} alone ${size} q${QUALITY}, ${n} in flight`,
          value: alone!.fps,
          unit: 'frames/s',
          note: `baseline; ${kb(alone!.bytesPerFrame)}`,
        },
        {
          group: GROUP,
          name: `sharp alone ${size} q${QUALITY}, ${n} in flight`,
          value: viaSharp!.fps,
          unit: 'frames/s',
          note: `${times(viaSharp!, alone!)} ${codec} alone; ${kb(viaSharp!.bytesPerFrame)}`,
        },
        {
          group: GROUP,
          name: `pre-rendered → jpeg → null ${size}, ${n} in flight`,
          value: pre!.fps,
          unit: 'frames/s',
          note: `${times(pre!, alone!)} ${codec} alone: the pipeline machinery's cost; ${kb(pre!.bytesPerFrame)}`,
        },
        {
          group: GROUP,
          name: `testsrc → jpeg → null ${size}, ${n} in flight`,
          value: drawnEach!.fps,
          unit: 'frames/s',
          note: `${times(drawnEach!, alone!)} ${codec} alone, ${times(drawnEach!, pre!)} pre-rendered: with drawing; ${kb(drawnEach!.bytesPerFrame)}`,
        },
      )
    }
  }

  const [plain, optimized] = await sideBySide(
    (ms) => runPipeline({ kind: 'testsrc', width: 640, height: 480 }, ms, { concurrency: 4, optimize: false }),
    (ms) => runPipeline({ kind: 'testsrc', width: 640, height: 480 }, ms, { concurrency: 4, optimize: true }),
  )
  rows.push({
    group: GROUP,
    name: `testsrc → jpeg optimize=true → null 640x480 q${QUALITY}, 4 in flight`,
    value: optimized!.fps,
    unit: 'frames/s',
    note: `${times(optimized!, plain!)} optimize=false (${Math.round(plain!.fps)} fps alongside); ${kb(optimized!.bytesPerFrame)}, ${((1 - optimized!.bytesPerFrame / plain!.bytesPerFrame) * 100).toFixed(1)}% fewer bytes than ${kb(plain!.bytesPerFrame)}`,
  })
  return rows
}

/** testsrc's frame 0 as a raw Frame. */
function rawFrame(width: number, height: number): Frame {
  return { data: renderTestFrame(0, width, height), format: 'raw', width, height, channels: 3, seq: 0, timestamp: now() }
}
