// JPEG encode throughput: testsrc → jpeg → null at 640x480 and 1920x1080 with
// 1, 2 and 4 encodes in flight (quality 80, optimize off). Beside each, in the
// same run, the baseline "sharp alone": a plain loop encoding the same test
// picture with the same number of promises in flight, so the note gives what
// the stream machinery costs (pipeline / sharp alone). The pipeline also pays
// for testsrc drawing a new frame each time; the "render only" rows
// (testsrc → null) show that share. One more row runs optimize=true at
// 640x480 ×4 to put a figure on the Huffman-optimisation trade-off.

import sharp, { type JpegOptions } from 'sharp'
import { pipeline, stopSource } from '../src/pipeline.js'
import { stageInfo } from '../src/stage.js'
import { nullSink } from '../src/sinks/null.js'
import { renderTestFrame, testsrc } from '../src/sources/testsrc.js'
import { jpeg } from '../src/transforms/jpeg.js'
import type { Bench, BenchRow } from './types.js'

const GROUP = 'encode'
const CASE_MS = 4000
const SIZES = [[640, 480], [1920, 1080]] as const
const IN_FLIGHT = [1, 2, 4] as const
const QUALITY = 80

interface Result { fps: number; bytesPerFrame: number }
interface Tally { frames: number; bytes: number; ms: number }

const ROUNDS = 2

const empty = (): Tally => ({ frames: 0, bytes: 0, ms: 0 })
const add = (a: Tally, b: Tally): void => { a.frames += b.frames; a.bytes += b.bytes; a.ms += b.ms }
const result = (t: Tally): Result => ({ fps: t.frames / (t.ms / 1000), bytesPerFrame: t.bytes / t.frames })

/** testsrc (as fast as taken) → [jpeg] → null for about `ms`, then a clean stop. */
async function runPipeline(width: number, height: number, ms: number, encode?: { concurrency: number; optimize: boolean }): Promise<Tally> {
  const source = testsrc({ width, height, fps: 0 })
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
      const out = await sharp(raw, { raw: { width, height, channels: 3 } }).jpeg(options).toBuffer()
      tally.frames++
      tally.bytes += out.length
    }
  }
  await Promise.all(Array.from({ length: inFlight }, loop))
  tally.ms = performance.now() - t0
  return tally
}

/**
 * Run two measurements in alternating slices (A B A B …) so that a change in
 * machine load during the case hits both sides alike; the ratio is what counts.
 */
async function sideBySide(a: (ms: number) => Promise<Tally>, b: (ms: number) => Promise<Tally>): Promise<[Result, Result]> {
  const ta = empty()
  const tb = empty()
  for (let round = 0; round < ROUNDS; round++) {
    add(ta, await a(CASE_MS / (2 * ROUNDS)))
    add(tb, await b(CASE_MS / (2 * ROUNDS)))
  }
  return [result(ta), result(tb)]
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB/frame`

export const bench: Bench = async () => {
  const rows: BenchRow[] = []
  // Warm up sharp/libvips and the JIT so the first measured case is not penalised.
  await runPipeline(640, 480, 500, { concurrency: 2, optimize: false })

  for (const [width, height] of SIZES) {
    const size = `${width}x${height}`
    const render = result(await runPipeline(width, height, 800))
    rows.push({ group: GROUP, name: `testsrc → null ${size} (render only)`, value: render.fps, unit: 'frames/s', note: `${(1000 / render.fps).toFixed(2)} ms to draw a frame, included in the pipeline rows` })
    // The same picture for every sharp-alone encode: testsrc's frame 0.
    const raw = renderTestFrame(0, width, height)
    for (const n of IN_FLIGHT) {
      const [alone, piped] = await sideBySide(
        (ms) => sharpAlone(raw, width, height, n, { quality: QUALITY, optimiseCoding: false }, ms),
        (ms) => runPipeline(width, height, ms, { concurrency: n, optimize: false }),
      )
      rows.push({ group: GROUP, name: `sharp alone ${size} q${QUALITY}, ${n} in flight`, value: alone.fps, unit: 'frames/s', note: `baseline; ${kb(alone.bytesPerFrame)}` })
      rows.push({
        group: GROUP, name: `testsrc → jpeg → null ${size} q${QUALITY}, ${n} in flight`, value: piped.fps, unit: 'frames/s',
        note: `${(piped.fps / alone.fps).toFixed(2)}× sharp alone; ${kb(piped.bytesPerFrame)}`,
      })
    }
  }

  const [plain, optimized] = await sideBySide(
    (ms) => runPipeline(640, 480, ms, { concurrency: 4, optimize: false }),
    (ms) => runPipeline(640, 480, ms, { concurrency: 4, optimize: true }),
  )
  rows.push({
    group: GROUP, name: `testsrc → jpeg optimize=true → null 640x480 q${QUALITY}, 4 in flight`, value: optimized.fps, unit: 'frames/s',
    note: `${(optimized.fps / plain.fps).toFixed(2)}× optimize=false (${Math.round(plain.fps)} fps alongside); ${kb(optimized.bytesPerFrame)}, ${((1 - optimized.bytesPerFrame / plain.bytesPerFrame) * 100).toFixed(1)}% fewer bytes than ${kb(plain.bytesPerFrame)}`,
  })
  return rows
}
