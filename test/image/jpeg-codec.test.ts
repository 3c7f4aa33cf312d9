// The raw ↔ JPEG codec choice (src/image/jpeg-codec.ts): libjpeg-turbo when
// the binding loads, sharp when it does not or FRAME_PIPE_JPEG_CODEC=sharp.
// The jpeg and decode stages must keep the same promises either way: same
// dimensions, order and metadata, same errors in the same words, maxPixels
// refused before anything is allocated. Serial: tests switch the codec.

import anyTest, { type TestFn } from 'ava'
import sharp from 'sharp'
import { FramePipeError } from '../../src/core/errors.js'
import { makeFrame, type Frame } from '../../src/core/frame.js'
import { CODEC_ENV, jpegCodec, resetJpegCodec } from '../../src/image/jpeg-codec.js'
import { decode } from '../../src/transforms/decode.js'
import { jpeg } from '../../src/transforms/jpeg.js'
import { jpegHeader, jpegSize } from '../../src/wire/jpeg.js'
import { collect, fromItems, prng, run, withTimeout } from '../helpers/index.js'

const test = anyTest.serial as TestFn
const CODECS = ['libjpeg-turbo', 'sharp'] as const
type Codec = (typeof CODECS)[number]

/** Run `fn` with the raw ↔ JPEG path on `codec`, then go back to the default choice. */
async function withCodec<T>(codec: Codec, fn: () => Promise<T>): Promise<T> {
  const before = process.env[CODEC_ENV]
  if (codec === 'sharp') process.env[CODEC_ENV] = 'sharp'
  else delete process.env[CODEC_ENV]
  resetJpegCodec()
  try {
    return await fn()
  } finally {
    if (before === undefined) delete process.env[CODEC_ENV]
    else process.env[CODEC_ENV] = before
    resetJpegCodec()
  }
}

/** Smooth gradients with a little noise: a lossy codec stays close to them. */
function picture(width: number, height: number, channels: number, seed: number, seq = 0): Frame {
  const rand = prng(seed)
  const data = Buffer.alloc(width * height * channels)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * channels
      const n = Math.floor(rand() * 6)
      data[i] = Math.round((x / width) * 200) + n
      if (channels >= 3) {
        data[i + 1] = Math.round((y / height) * 200) + n
        data[i + 2] = (seed * 37) % 200
      }
      if (channels === 4) data[i + 3] = 255
      if (channels === 2) data[i + 1] = 255
    }
  }
  return makeFrame(data, { format: 'raw', width, height, channels, seq, timestamp: 1_700_000_000_000 + seq + 0.5 })
}

function meanAbsDiff(a: Buffer, b: Buffer): number {
  let sum = 0
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!)
  return sum / a.length
}

async function encodeOne(frame: Frame, options: Parameters<typeof jpeg>[0] = {}): Promise<Frame> {
  const [out] = await withTimeout(collect<Frame>(fromItems([frame]).pipe(jpeg(options))), 10_000, 'jpeg')
  return out!
}

async function decodeOne(frame: Frame, options: Parameters<typeof decode>[0] = {}): Promise<Frame> {
  const [out] = await withTimeout(collect<Frame>(fromItems([frame]).pipe(decode(options))), 10_000, 'decode')
  return out!
}

/** A JPEG whose SOF announces width x height: what a corrupt or hostile header looks like. */
function announcing(jpegBytes: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpegBytes)
  for (let i = 2; i < out.length - 9; i++) {
    if (out[i] === 0xff && out[i + 1] === 0xc0) {
      out.writeUInt16BE(height, i + 5)
      out.writeUInt16BE(width, i + 7)
      return out
    }
  }
  throw new Error('no SOF0 in the test JPEG')
}

test('the binding is in use here, and FRAME_PIPE_JPEG_CODEC=sharp forces sharp', async (t) => {
  t.is(jpegCodec().name, 'libjpeg-turbo')
  await withCodec('sharp', async () => {
    t.deepEqual(jpegCodec(), { name: 'sharp', reason: `${CODEC_ENV}=sharp` })
  })
  t.is(jpegCodec().name, 'libjpeg-turbo')
})

for (const codec of CODECS) {
  test(`${codec}: raw RGB at odd sizes → jpeg → decode keeps dimensions, seq, timestamp and the picture`, async (t) => {
    await withCodec(codec, async () => {
      for (const [w, h] of [
        [97, 61],
        [1, 1],
        [640, 480],
      ] as const) {
        const input = picture(w, h, 3, w, 7)
        const encoded = await encodeOne(input, { quality: 90 })
        t.like(encoded, { format: 'jpeg', width: w, height: h, channels: 3, seq: 7, timestamp: input.timestamp })
        t.like(await sharp(encoded.data).metadata(), { format: 'jpeg', width: w, height: h })
        const decoded = await decodeOne(encoded)
        t.like(decoded, { format: 'raw', width: w, height: h, channels: 3, seq: 7, timestamp: input.timestamp })
        t.is(decoded.data.length, w * h * 3)
        const diff = meanAbsDiff(decoded.data, input.data)
        t.true(diff < 4, `${w}x${h}: mean abs diff ${diff}`)
      }
    })
  })

  test(`${codec}: concurrency 4 over frames of three sizes: every output is its own input's picture, in order`, async (t) => {
    await withCodec(codec, async () => {
      const sizes = [
        [64, 48],
        [320, 240],
        [33, 17],
      ] as const
      const input = Array.from({ length: 24 }, (_, i) => picture(sizes[i % 3]![0], sizes[i % 3]![1], 3, i + 1, i))
      const out = await withTimeout(
        collect<Frame>(
          fromItems(input)
            .pipe(jpeg({ concurrency: 4 }))
            .pipe(decode({ concurrency: 4 })),
        ),
        20_000,
        'round trip',
      )
      t.deepEqual(
        out.map((f) => [f.seq, f.width, f.height]),
        input.map((f) => [f.seq, f.width, f.height]),
      )
      for (const [i, f] of out.entries()) t.true(meanAbsDiff(f.data, input[i]!.data) < 6, `frame ${i}`)
    })
  })

  test(`${codec}: RGBA with transparency is flattened onto black (as sharp does); opaque RGBA keeps its colours`, async (t) => {
    await withCodec(codec, async () => {
      const opaque = picture(40, 30, 4, 3)
      const back = await decodeOne(await encodeOne(opaque, { quality: 95 }))
      t.is(back.channels, 3)
      const rgb = Buffer.alloc(40 * 30 * 3)
      for (let p = 0; p < 40 * 30; p++) opaque.data.copy(rgb, p * 3, p * 4, p * 4 + 3)
      t.true(meanAbsDiff(back.data, rgb) < 4)

      const clear = picture(40, 30, 4, 3)
      for (let i = 3; i < clear.data.length; i += 4) clear.data[i] = 0
      const black = await decodeOne(await encodeOne(clear, { quality: 95 }))
      t.true(
        black.data.every((v) => v < 8),
        'fully transparent pixels come out black',
      )
    })
  })

  test(`${codec}: decode channels: keep and 3 give grey RGB for a grey JPEG (sharp's raw output is sRGB), 4 adds opaque alpha`, async (t) => {
    await withCodec(codec, async () => {
      const grey = await sharp(picture(24, 16, 1, 5).data, { raw: { width: 24, height: 16, channels: 1 } })
        .toColourspace('b-w')
        .jpeg()
        .toBuffer()
      t.is(jpegSize(grey)!.components, 1)
      const frame = makeFrame(grey, { seq: 1 })
      for (const channels of ['keep', '3'] as const) {
        const rgb = await decodeOne(frame, { channels })
        t.like(rgb, { channels: 3, width: 24, height: 16 })
        t.is(rgb.data.length, 24 * 16 * 3)
        for (let i = 0; i < rgb.data.length; i += 3) t.true(rgb.data[i] === rgb.data[i + 1] && rgb.data[i] === rgb.data[i + 2])
      }
      const colour = await encodeOne(picture(24, 16, 3, 9))
      const rgba = await decodeOne(colour, { channels: '4' })
      t.is(rgba.channels, 4)
      for (let i = 3; i < rgba.data.length; i += 4) t.is(rgba.data[i], 255)
    })
  })
}

test('grey raw pixels become a 1-component JPEG with libjpeg-turbo (sharp writes 3 components); both decode to the same grey', async (t) => {
  const grey = picture(32, 24, 1, 11)
  const fast = await encodeOne(grey, { quality: 95 })
  t.like(fast, { format: 'jpeg', channels: 1 })
  t.is(jpegHeader(fast.data)!.components, 1)
  const slow = await withCodec('sharp', () => encodeOne(grey, { quality: 95 }))
  t.is(jpegHeader(slow.data)!.components, 3)
  const a = await decodeOne(fast, { channels: '3' })
  const b = await decodeOne(slow, { channels: '3' })
  t.true(meanAbsDiff(a.data, b.data) < 3)
})

test('errors read the same with either codec: a truncated JPEG, garbage, and a header over maxPixels', async (t) => {
  const good = await encodeOne(picture(64, 48, 3, 1))
  const cases: Array<[string, Frame, Parameters<typeof decode>[0]]> = [
    ['truncated', makeFrame(good.data.subarray(0, 300), { seq: 6 }), {}],
    ['garbage', makeFrame(Buffer.from('not an image at all'), { seq: 7 }), {}],
    ['10000x10000', makeFrame(announcing(good.data, 10_000, 10_000), { seq: 8 }), {}],
    ['over a small limit', makeFrame(good.data, { seq: 9 }), { maxPixels: 3071 }],
  ]
  const messages: Record<Codec, string[]> = { 'libjpeg-turbo': [], sharp: [] }
  for (const codec of CODECS) {
    await withCodec(codec, async () => {
      for (const [name, frame, options] of cases) {
        const err = await t.throwsAsync(withTimeout(run(fromItems([frame]), decode(options)), 10_000), undefined, `${codec} ${name}`)
        t.true(err instanceof FramePipeError, `${codec} ${name}`)
        t.is((err as FramePipeError).code, 'ERR_DECODE')
        t.notRegex(err!.message, /\n/)
        messages[codec].push(err!.message)
      }
    })
  }
  t.deepEqual(messages['libjpeg-turbo'], messages.sharp)
  t.is(
    messages.sharp[2],
    `decode: frame 8 (${good.data.length} bytes, format jpeg) is 10000x10000 = 100000000 pixels, more than maxPixels (50000000)`,
  )
  t.is(messages.sharp[3], `decode: frame 9 (${good.data.length} bytes, format jpeg) is 64x48 = 3072 pixels, more than maxPixels (3071)`)
})

test("decode onError 'drop' drops and counts frames over maxPixels and corrupt ones with libjpeg-turbo too", async (t) => {
  const good = await encodeOne(picture(64, 48, 3, 1))
  const stage = decode({ onError: 'drop' })
  const out = await withTimeout(
    run<Frame>(
      fromItems([
        { ...good, seq: 1 },
        makeFrame(announcing(good.data, 20_000, 20_000), { seq: 2 }),
        makeFrame(good.data.subarray(0, 200), { seq: 3 }),
        { ...good, seq: 4 },
      ]),
      stage,
    ),
    10_000,
  )
  t.deepEqual(
    out.map((f) => f.seq),
    [1, 4],
  )
})

test('a JPEG with an ICC profile is decoded by sharp (which applies it), and jpegHeader says so', async (t) => {
  const withIcc = await sharp(picture(16, 16, 3, 2).data, { raw: { width: 16, height: 16, channels: 3 } })
    .withIccProfile('p3')
    .jpeg()
    .toBuffer()
  t.true(jpegHeader(withIcc)!.icc)
  const plain = await encodeOne(picture(16, 16, 3, 2))
  t.false(jpegHeader(plain.data)!.icc)
  const a = await decodeOne(makeFrame(withIcc, { seq: 1 }))
  const b = await withCodec('sharp', () => decodeOne(makeFrame(withIcc, { seq: 1 })))
  t.true(a.data.equals(b.data), 'the same pixels as sharp alone')
})
