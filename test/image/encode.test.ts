// The sharp stages (jpeg, png, webp, decode, resize) and the ordered parallel
// machinery they share.

import test from 'ava'
import { testProp, fc } from '@fast-check/ava'
import { readFile } from 'node:fs/promises'
import { crc32 } from 'node:zlib'
import { Readable, Writable } from 'node:stream'
import sharp from 'sharp'
import { FramePipeError } from '../../src/core/errors.js'
import { makeFrame, type Frame } from '../../src/core/frame.js'
import { pipeline } from '../../src/core/pipeline.js'
import { stageInfo } from '../../src/core/stage.js'
import { sharpStage } from '../../src/image/ordered-parallel.js'
import { jpeg, spec as jpegSpec } from '../../src/transforms/jpeg.js'
import { png, spec as pngSpec } from '../../src/transforms/png.js'
import { webp, spec as webpSpec } from '../../src/transforms/webp.js'
import { decode, spec as decodeSpec } from '../../src/transforms/decode.js'
import { resize, spec as resizeSpec } from '../../src/transforms/resize.js'
import { collect, fromItems, prng, run, withTimeout } from '../helpers/index.js'

const FIXTURES = new URL('../../fixtures/images/', import.meta.url)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Random pixels: the worst case for an encoder, and exact for lossless round trips. */
function noiseFrame(width: number, height: number, channels: number, seed: number, seq = 0): Frame {
  const rand = prng(seed)
  const data = Buffer.alloc(width * height * channels)
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 256)
  return makeFrame(data, { format: 'raw', width, height, channels, seq, timestamp: 1_700_000_000_000 + seq + 0.25 })
}

/** A smooth picture, on which a lossy codec stays close to the original. */
function gradientFrame(width: number, height: number, seq = 0): Frame {
  const data = Buffer.alloc(width * height * 3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3
      data[i] = Math.round((x / width) * 255)
      data[i + 1] = Math.round((y / height) * 255)
      data[i + 2] = 128
    }
  }
  return makeFrame(data, { format: 'raw', width, height, channels: 3, seq, timestamp: 1_700_000_000_000 + seq })
}

/** Endless raw frames, counting what was pulled; `bad(seq)` makes that frame's data too short. */
function frameSource(opts: { count?: number; bad?: (seq: number) => boolean } = {}): Readable & { produced: number } {
  let seq = 0
  const source = new Readable({
    objectMode: true,
    highWaterMark: 1,
    read() {
      if (opts.count !== undefined && seq >= opts.count) return void this.push(null)
      const frame = gradientFrame(32, 24, seq)
      if (opts.bad?.(seq)) frame.data = frame.data.subarray(1)
      seq++
      source.produced = seq
      this.push(frame)
    },
  }) as Readable & { produced: number }
  source.produced = 0
  return source
}

function sink(write: (frame: Frame) => void | Promise<void> = () => {}): Writable {
  return new Writable({
    objectMode: true,
    highWaterMark: 1,
    write(frame: Frame, _enc, cb) {
      Promise.resolve(frame)
        .then(write)
        .then(() => cb(), cb)
    },
  })
}

function meanAbsDiff(a: Buffer, b: Buffer): number {
  let sum = 0
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!)
  return sum / a.length
}

// ---- encoders -------------------------------------------------------------

const encoders = [
  { name: 'jpeg', make: () => jpeg({ concurrency: 4 }), format: 'jpeg' },
  { name: 'jpeg progressive 4:4:4 optimize', make: () => jpeg({ progressive: true, chroma: '4:4:4', optimize: true }), format: 'jpeg' },
  { name: 'jpeg mozjpeg', make: () => jpeg({ mozjpeg: true, quality: 60 }), format: 'jpeg' },
  { name: 'png', make: () => png(), format: 'png' },
  { name: 'png palette', make: () => png({ palette: true, compressionLevel: 9 }), format: 'png' },
  { name: 'webp', make: () => webp(), format: 'webp' },
  { name: 'webp lossless', make: () => webp({ lossless: true, effort: 0 }), format: 'webp' },
] as const

for (const enc of encoders) {
  test(`${enc.name}: raw RGB and RGBA frames become valid images of the right size, seq and timestamp kept`, async (t) => {
    const input = [noiseFrame(40, 30, 3, 1, 7), noiseFrame(17, 5, 4, 2, 8), gradientFrame(64, 48, 9)]
    const out = await collect<Frame>(fromItems(input).pipe(enc.make()))
    t.is(out.length, input.length)
    for (const [i, frame] of out.entries()) {
      const meta = await sharp(frame.data).metadata()
      t.is(frame.format, enc.format)
      t.is(meta.format, enc.format)
      t.is(meta.width, input[i]!.width)
      t.is(meta.height, input[i]!.height)
      t.is(frame.width, input[i]!.width)
      t.is(frame.height, input[i]!.height)
      t.is(frame.seq, input[i]!.seq)
      t.is(frame.timestamp, input[i]!.timestamp)
    }
  })
}

test('counters count frames and output bytes', async (t) => {
  const stage = jpeg()
  const out = await run<Frame>(fromItems([gradientFrame(32, 24, 0), gradientFrame(32, 24, 1)]), stage)
  const counters = stageInfo(stage)!.counters
  t.is(counters.frames, 2)
  t.is(counters.bytes, out[0]!.data.length + out[1]!.data.length)
  t.is(counters.drops, 0)
})

test('encoded input is transcoded, and input already in the target format passes through untouched', async (t) => {
  const pngFixture = makeFrame(await readFile(new URL('pattern.png', FIXTURES)), { seq: 3, timestamp: 5 })
  const jpgFixture = makeFrame(await readFile(new URL('frame-1.jpg', FIXTURES)), { seq: 4, timestamp: 6 })
  const webpFixture = makeFrame(await readFile(new URL('pattern.webp', FIXTURES)), { seq: 5, timestamp: 7 })
  t.is(pngFixture.format, 'png')

  const [fromPng, sameJpeg] = await collect<Frame>(fromItems([pngFixture, jpgFixture]).pipe(jpeg()))
  t.is(fromPng!.format, 'jpeg')
  t.is((await sharp(fromPng!.data).metadata()).format, 'jpeg')
  // Dimensions come from sharp, so encoded frames with unknown (0) sizes get them filled in.
  t.deepEqual([fromPng!.width, fromPng!.height, fromPng!.seq, fromPng!.timestamp], [64, 48, 3, 5])
  t.is(sameJpeg, jpgFixture)

  const [toWebp, sameWebp] = await collect<Frame>(fromItems([jpgFixture, webpFixture]).pipe(webp()))
  t.is((await sharp(toWebp!.data).metadata()).format, 'webp')
  t.is(sameWebp, webpFixture)

  const [toPng, samePng] = await collect<Frame>(fromItems([webpFixture, pngFixture]).pipe(png()))
  t.is((await sharp(toPng!.data).metadata()).format, 'png')
  t.is(samePng, pngFixture)
})

test('output order is input order under concurrency 4 when big and small frames alternate', async (t) => {
  const input = Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? noiseFrame(800, 600, 3, i, i) : noiseFrame(8, 8, 3, i, i)))
  const out = await collect<Frame>(fromItems(input).pipe(jpeg({ concurrency: 4 })))
  t.deepEqual(
    out.map((f) => f.seq),
    input.map((f) => f.seq),
  )
  t.deepEqual(
    out.map((f) => f.timestamp),
    input.map((f) => f.timestamp),
  )
  t.deepEqual(
    out.map((f) => f.width),
    input.map((f) => f.width),
  )
})

// ---- the ordered parallel machinery --------------------------------------

test('sharpStage keeps order when later frames finish first, with no more than concurrency in flight', async (t) => {
  const ctx = { name: 'slow', counters: { frames: 0, bytes: 0, drops: 0 } }
  let inFlight = 0
  let maxInFlight = 0
  const stage = sharpStage(ctx, 4, async (frame) => {
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    await sleep((10 - (frame.seq % 10)) * 2) // later frames of each group of 10 finish sooner
    inFlight--
    return frame.seq % 7 === 3 ? null : frame
  })
  const input = Array.from({ length: 40 }, (_, seq) => makeFrame(Buffer.alloc(1), { seq }))
  const out = await collect<Frame>(fromItems(input).pipe(stage))
  t.deepEqual(
    out.map((f) => f.seq),
    input.map((f) => f.seq).filter((s) => s % 7 !== 3),
  )
  t.is(ctx.counters.drops, 6)
  t.is(maxInFlight, 4)
})

test('backpressure: a slow consumer holds the source back', async (t) => {
  for (const concurrency of [1, 2, 4]) {
    const source = frameSource({ count: 60 })
    let consumed = 0
    let maxAhead = 0
    await withTimeout(
      pipeline(
        source,
        jpeg({ concurrency }),
        sink(async () => {
          consumed++
          maxAhead = Math.max(maxAhead, source.produced - consumed)
          await sleep(3)
        }),
      ),
      20_000,
      'slow consumer pipeline',
    )
    t.is(consumed, 60)
    // Inside jpeg: `concurrency` in flight, `concurrency` in its readable
    // buffer, 1 in its writable buffer; plus 1 in the source's buffer and 1
    // in the sink's.
    t.true(maxAhead <= 2 * concurrency + 3, `concurrency ${concurrency}: source ran ${maxAhead} frames ahead`)
  }
})

test('an empty stream ends cleanly', async (t) => {
  t.deepEqual(await withTimeout(collect(fromItems([]).pipe(decode())), 5000), [])
})

// ---- decode and round trips -----------------------------------------------

test('decode(jpeg(raw)) has the same dimensions and similar pixels', async (t) => {
  const input = gradientFrame(96, 64, 42)
  const [out] = await collect<Frame>(
    fromItems([input])
      .pipe(jpeg({ quality: 90 }))
      .pipe(decode()),
  )
  t.like(out, { format: 'raw', width: 96, height: 64, channels: 3, seq: 42, timestamp: input.timestamp })
  t.is(out!.data.length, input.data.length)
  const diff = meanAbsDiff(out!.data, input.data)
  t.true(diff < 3, `mean abs diff ${diff}`)
})

test('decode channels: 3 drops alpha, 4 adds it, keep keeps it; raw input passes through', async (t) => {
  const rgba = noiseFrame(10, 6, 4, 9)
  const [encoded] = await collect<Frame>(fromItems([rgba]).pipe(png()))
  for (const [channels, expected] of [
    ['3', 3],
    ['4', 4],
    ['keep', 4],
  ] as const) {
    const [out] = await collect<Frame>(fromItems([encoded!]).pipe(decode({ channels })))
    t.is(out!.channels, expected)
    t.is(out!.data.length, 10 * 6 * expected)
  }
  const [grey] = await collect<Frame>(fromItems([noiseFrame(10, 6, 1, 3)]).pipe(png()))
  const [rgb] = await collect<Frame>(fromItems([grey!]).pipe(decode()))
  t.is(rgb!.channels, 3)
  const [same] = await collect<Frame>(fromItems([rgba]).pipe(decode({ channels: '3' })))
  t.is(same, rgba)
})

test('decode reads the committed fixtures', async (t) => {
  const names = ['frame-1.jpg', 'frame-2.jpg', 'frame-3.jpg', 'frame-10.jpg', 'pattern.png', 'pattern.webp']
  const frames = await Promise.all(names.map(async (n, seq) => makeFrame(await readFile(new URL(n, FIXTURES)), { seq })))
  const out = await collect<Frame>(fromItems(frames).pipe(decode({ concurrency: 3 })))
  t.deepEqual(
    out.map((f) => [f.seq, f.width, f.height, f.channels]),
    names.map((_, seq) => [seq, 64, 48, 3]),
  )
})

testProp(
  'png then decode round-trips random raw frames exactly',
  [
    fc.array(
      fc.record({ w: fc.integer({ min: 1, max: 64 }), h: fc.integer({ min: 1, max: 64 }), c: fc.constantFrom(3, 4), seed: fc.integer() }),
      { minLength: 1, maxLength: 4 },
    ),
    fc.integer({ min: 1, max: 4 }),
  ],
  async (t, specs, concurrency) => {
    const input = specs.map((s, seq) => noiseFrame(s.w, s.h, s.c, s.seed, seq))
    const out = await collect<Frame>(
      fromItems(input)
        .pipe(png({ concurrency }))
        .pipe(decode({ channels: 'keep', concurrency })),
    )
    t.is(out.length, input.length)
    for (const [i, frame] of out.entries()) {
      const want = input[i]!
      t.deepEqual([frame.width, frame.height, frame.channels, frame.seq], [want.width, want.height, want.channels, want.seq])
      t.true(frame.data.equals(want.data))
    }
  },
  { numRuns: 40 },
)

testProp(
  'jpeg never fails on random raw frames and keeps their dimensions',
  [
    fc.record({
      w: fc.integer({ min: 1, max: 64 }),
      h: fc.integer({ min: 1, max: 64 }),
      c: fc.constantFrom(3, 4),
      seed: fc.integer(),
      quality: fc.integer({ min: 1, max: 100 }),
    }),
  ],
  async (t, s) => {
    const [out] = await collect<Frame>(fromItems([noiseFrame(s.w, s.h, s.c, s.seed)]).pipe(jpeg({ quality: s.quality })))
    const meta = await sharp(out!.data).metadata()
    t.deepEqual([out!.format, out!.width, out!.height, meta.format, meta.width, meta.height], ['jpeg', s.w, s.h, 'jpeg', s.w, s.h])
  },
  { numRuns: 60 },
)

testProp(
  'decode of a randomly corrupted JPEG yields consistent pixels or ERR_DECODE, nothing else',
  [
    fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { maxLength: 8 }),
    fc.option(fc.nat(), { nil: undefined }),
  ],
  async (t, flips, cutAt) => {
    const [good] = await collect<Frame>(fromItems([gradientFrame(48, 32, 1)]).pipe(jpeg()))
    let data = Buffer.from(good!.data)
    for (const { at, byte } of flips) data[at % data.length] = byte
    if (cutAt !== undefined) data = data.subarray(0, cutAt % data.length)
    try {
      const out = await withTimeout(collect<Frame>(fromItems([makeFrame(data, { seq: 1 })]).pipe(decode())), 5000, 'decode')
      t.is(out.length, 1)
      t.is(out[0]!.data.length, out[0]!.width * out[0]!.height * 3)
    } catch (err) {
      t.is((err as FramePipeError).code, 'ERR_DECODE', String(err))
    }
  },
  { numRuns: 60 },
)

// ---- resize -----------------------------------------------------------------

test('resize: one side keeps the aspect ratio, both sides follow fit, output is raw', async (t) => {
  const input = gradientFrame(64, 48, 1)
  const [byWidth] = await collect<Frame>(fromItems([input]).pipe(resize({ width: 32 })))
  t.like(byWidth, { format: 'raw', width: 32, height: 24, channels: 3, seq: 1, timestamp: input.timestamp })
  t.is(byWidth!.data.length, 32 * 24 * 3)
  const [byHeight] = await collect<Frame>(fromItems([input]).pipe(resize({ height: 12, kernel: 'nearest' })))
  t.like(byHeight, { width: 16, height: 12 })
  const [inside] = await collect<Frame>(fromItems([input]).pipe(resize({ width: 20, height: 20 })))
  t.like(inside, { width: 20, height: 15 })
  const [cover] = await collect<Frame>(fromItems([input]).pipe(resize({ width: 20, height: 20, fit: 'cover' })))
  t.like(cover, { width: 20, height: 20 })
  const fixture = makeFrame(await readFile(new URL('frame-2.jpg', FIXTURES)), { seq: 2 })
  const [fromJpeg] = await collect<Frame>(
    fromItems([fixture])
      .pipe(resize({ width: 128 }))
      .pipe(jpeg()),
  )
  t.like(fromJpeg, { format: 'jpeg', width: 128, height: 96, seq: 2 })
})

// ---- errors -----------------------------------------------------------------

test('option validation goes through the spec', (t) => {
  t.throws(() => jpeg({ quality: 101 }), {
    instanceOf: FramePipeError,
    code: 'ERR_INVALID_OPTION',
    message: 'jpeg: expected integer between 1 and 100 for quality but received 101 of type number',
  } as any)
  t.throws(() => jpeg({ concurrency: 0 }), {
    code: 'ERR_INVALID_OPTION',
    message: 'jpeg: expected integer between 1 and 16 for concurrency but received 0 of type number',
  } as any)
  t.throws(() => png({ compressionLevel: 10 }), { code: 'ERR_INVALID_OPTION', message: /compressionLevel/ } as any)
  t.throws(() => webp({ effort: 7 }), { code: 'ERR_INVALID_OPTION', message: /effort/ } as any)
  t.throws(() => jpeg({ chroma: '4:2:2' as any }), { code: 'ERR_INVALID_OPTION', message: /one of 4:2:0, 4:4:4/ } as any)
  t.throws(() => decode({ onError: 'skip' as any }), { code: 'ERR_INVALID_OPTION', message: /one of fail, drop/ } as any)
  t.throws(() => resize({}), { code: 'ERR_INVALID_OPTION', message: 'resize: give width or height (or both): both are 0' } as any)
  t.throws(() => resize({ width: 10, fit: 'stretch' as any }), { code: 'ERR_INVALID_OPTION' } as any)
})

test('a Buffer instead of a Frame is ERR_BAD_FRAME pointing at unprefix', async (t) => {
  const err = await t.throwsAsync(withTimeout(run(fromItems([Buffer.from([0xff, 0xd8, 0xff])]), jpeg()), 5000))
  t.like(err, {
    code: 'ERR_BAD_FRAME',
    stage: 'jpeg',
    message: 'jpeg: expected a Frame but received a Buffer of 3 bytes; insert unprefix before jpeg',
  })
})

test('a raw frame whose length does not match its dimensions is ERR_BAD_FRAME with the numbers', async (t) => {
  const frame = noiseFrame(4, 3, 3, 1, 12)
  frame.data = frame.data.subarray(0, 30)
  const err = await t.throwsAsync(withTimeout(run(fromItems([frame]), png()), 5000))
  t.like(err, { code: 'ERR_BAD_FRAME', message: 'png: raw frame 12 is 4x3x3 = 36 bytes but carries 30 bytes' })
})

test('a corrupt JPEG: onError fail is ERR_DECODE naming stage, frame and size; drop skips and counts it', async (t) => {
  const [good] = await collect<Frame>(fromItems([gradientFrame(64, 48)]).pipe(jpeg()))
  const truncated = makeFrame(good!.data.subarray(0, 300), { seq: 6 })
  const garbage = makeFrame(Buffer.from('not an image at all'), { seq: 7 })

  const err = await t.throwsAsync(withTimeout(run(fromItems([{ ...good!, seq: 5 }, truncated]), decode()), 5000))
  t.true(err instanceof FramePipeError)
  t.is((err as FramePipeError).code, 'ERR_DECODE')
  t.regex(err!.message, /^decode: frame 6 \(300 bytes, format jpeg\) does not decode: .*JPEG/)
  t.notRegex(err!.message, /\n/)

  const stage = decode({ onError: 'drop' })
  const out = await withTimeout(run<Frame>(fromItems([{ ...good!, seq: 5 }, truncated, garbage, { ...good!, seq: 8 }]), stage), 5000)
  t.deepEqual(
    out.map((f) => f.seq),
    [5, 8],
  )
  t.like(stageInfo(stage)!.counters, { frames: 2, drops: 2 })
})

test('an error mid-stream rejects the pipeline and destroys every stage (no hang)', async (t) => {
  const source = frameSource({ bad: (seq) => seq === 20 })
  const stage = jpeg({ concurrency: 4 })
  const out = sink()
  const err = await t.throwsAsync(withTimeout(pipeline(source, stage, out), 10_000, 'failing pipeline'))
  t.like(err, { code: 'ERR_BAD_FRAME', message: 'jpeg: raw frame 20 is 32x24x3 = 2304 bytes but carries 2303 bytes' })
  t.true(source.destroyed)
  t.true(stage.destroyed)
  t.true(out.destroyed)
})

test('an encoder failure in flight rejects the pipeline and destroys the source', async (t) => {
  const source = frameSource()
  const stage = sharpStage({ name: 'flaky', counters: { frames: 0, bytes: 0, drops: 0 } }, 3, async (frame) => {
    await sleep(1)
    if (frame.seq === 10) throw new FramePipeError('ERR_ENCODE', 'frame 10 failed', { stage: 'flaky' })
    return frame
  })
  const err = await t.throwsAsync(withTimeout(pipeline(source, stage, sink()), 10_000, 'failing pipeline'))
  t.is(err!.message, 'flaky: frame 10 failed')
  t.true(source.destroyed)
  t.true(stage.destroyed)
})

test('a failing downstream stage tears the encoder down', async (t) => {
  const source = frameSource()
  const stage = jpeg({ concurrency: 4 })
  let seen = 0
  const err = await t.throwsAsync(
    withTimeout(
      pipeline(
        source,
        stage,
        sink((frame) => {
          if (++seen === 5) throw new Error(`sink refused frame ${frame.seq}`)
        }),
      ),
      10_000,
      'failing pipeline',
    ),
  )
  t.is(err!.message, 'sink refused frame 4')
  t.true(stage.destroyed)
  t.true(source.destroyed)
  const before = stageInfo(stage)!.counters.frames
  await sleep(50) // work that was in flight must not surface after teardown
  t.is(stageInfo(stage)!.counters.frames, before)
})

test('destroying an encoder with an error reports that error', async (t) => {
  const stage = jpeg()
  const failed = new Promise<Error>((resolve) => stage.once('error', resolve))
  stage.destroy(new Error('stop here'))
  t.is((await withTimeout(failed, 2000)).message, 'stop here')
  t.true(stage.destroyed)
})

// ---- maxPixels: a bound on what encoded input may decode to ------------------

/** A 300x200 PNG (60000 pixels). */
async function pngFrame(seq: number): Promise<Frame> {
  const data = await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 10, g: 20, b: 30 } } })
    .png()
    .toBuffer()
  return makeFrame(data, { seq })
}

/** `png` with its IHDR rewritten to announce width x height (CRC fixed up): what a corrupt or hostile header looks like. */
function announcing(png: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(png)
  out.writeUInt32BE(width, 16)
  out.writeUInt32BE(height, 20)
  out.writeUInt32BE(crc32(out.subarray(12, 29)), 29)
  return out
}

test('maxPixels: a PNG over the limit is ERR_DECODE naming stage, frame, size and limit; drop counts it; at the limit it decodes', async (t) => {
  const big = await pngFrame(3)
  const size = big.data.length
  const err = await t.throwsAsync(withTimeout(run(fromItems([big]), decode({ maxPixels: 10_000 })), 5000))
  t.true(err instanceof FramePipeError)
  t.like(err, {
    code: 'ERR_DECODE',
    stage: 'decode',
    message: `decode: frame 3 (${size} bytes, format png) is 300x200 = 60000 pixels, more than maxPixels (10000)`,
  })

  const dropping = decode({ maxPixels: 10_000, onError: 'drop' })
  const small = makeFrame(
    await sharp({ create: { width: 100, height: 100, channels: 3, background: 'white' } })
      .png()
      .toBuffer(),
    { seq: 4 },
  )
  const out = await withTimeout(run<Frame>(fromItems([{ ...big, seq: 2 }, small, big]), dropping), 5000)
  t.deepEqual(
    out.map((f) => [f.seq, f.width, f.height]),
    [[4, 100, 100]],
    '100x100 is exactly the limit',
  )
  t.like(stageInfo(dropping)!.counters, { frames: 1, drops: 2 })

  const [ok] = await withTimeout(run<Frame>(fromItems([big]), decode({ maxPixels: 60_000 })), 5000)
  t.like(ok, { format: 'raw', width: 300, height: 200, seq: 3 })
})

test('maxPixels bounds transcoding and resizing of encoded input, not raw frames', async (t) => {
  const big = await pngFrame(9)
  const size = big.data.length
  for (const [name, make] of [
    ['jpeg', () => jpeg({ maxPixels: 10_000 })],
    ['webp', () => webp({ maxPixels: 10_000 })],
    ['resize', () => resize({ width: 10, maxPixels: 10_000 })],
  ] as const) {
    const err = await t.throwsAsync(withTimeout(run(fromItems([big]), make()), 5000))
    t.like(
      err,
      {
        code: 'ERR_DECODE',
        message: `${name}: frame 9 (${size} bytes, format png) is 300x200 = 60000 pixels, more than maxPixels (10000)`,
      },
      name,
    )
  }
  const asJpeg = (await collect<Frame>(fromItems([big]).pipe(jpeg())))[0]!
  const err = await t.throwsAsync(withTimeout(run(fromItems([asJpeg]), png({ maxPixels: 59_999 })), 5000))
  t.like(err, {
    code: 'ERR_DECODE',
    message: `png: frame 9 (${asJpeg.data.length} bytes, format jpeg) is 300x200 = 60000 pixels, more than maxPixels (59999)`,
  })

  // Raw frames are already in memory: the bound is not theirs.
  const raw = gradientFrame(300, 200, 1)
  const [encoded] = await withTimeout(run<Frame>(fromItems([raw]), png({ maxPixels: 10 })), 5000)
  t.like(encoded, { format: 'png', width: 300, height: 200 })
  const [smaller] = await withTimeout(run<Frame>(fromItems([raw]), resize({ width: 30, maxPixels: 10 })), 5000)
  t.like(smaller, { width: 30, height: 20 })
  // A JPEG into jpeg is passed through, not decoded.
  t.is((await withTimeout(run<Frame>(fromItems([asJpeg]), jpeg({ maxPixels: 10 })), 5000))[0], asJpeg)
})

test('a header announcing 10000x10000 is refused by the default maxPixels without decoding', async (t) => {
  const hostile = makeFrame(announcing((await pngFrame(0)).data, 10_000, 10_000), { seq: 77 })
  t.like(await sharp(hostile.data, { limitInputPixels: false }).metadata(), { width: 10_000, height: 10_000 }, 'the forged header parses')
  const err = await t.throwsAsync(withTimeout(run(fromItems([hostile]), decode()), 5000))
  t.like(err, {
    code: 'ERR_DECODE',
    message: `decode: frame 77 (${hostile.data.length} bytes, format png) is 10000x10000 = 100000000 pixels, more than maxPixels (50000000)`,
  })
  const err2 = await t.throwsAsync(withTimeout(run(fromItems([hostile]), resize({ width: 10 })), 5000))
  t.like(err2, {
    code: 'ERR_DECODE',
    message: `resize: frame 77 (${hostile.data.length} bytes, format png) is 10000x10000 = 100000000 pixels, more than maxPixels (50000000)`,
  })
})

test('maxPixels is an integer >= 1 with a default of 50 million on every stage that decodes', (t) => {
  for (const [name, make] of [
    ['decode', decode],
    ['resize', (o: object) => resize({ width: 1, ...o })],
    ['jpeg', jpeg],
    ['png', png],
    ['webp', webp],
  ] as const) {
    t.throws(() => (make as (o: object) => unknown)({ maxPixels: 0 }), {
      code: 'ERR_INVALID_OPTION',
      message: `${name}: expected integer >= 1 for maxPixels but received 0 of type number`,
    } as any)
    t.throws(() => (make as (o: object) => unknown)({ maxPixels: 1.5 }), { code: 'ERR_INVALID_OPTION' } as any)
  }
  for (const spec of [decodeSpec, resizeSpec, jpegSpec, pngSpec, webpSpec]) {
    t.like(spec.options.maxPixels, { type: 'int', min: 1, default: 50_000_000 }, spec.name)
  }
})
