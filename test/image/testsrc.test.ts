// testsrc: deterministic pictures, pacing, count, stop and backpressure.

import { createHash } from 'node:crypto'
import test from 'ava'
import { testProp, fc } from '@fast-check/ava'
import sharp from 'sharp'
import { FramePipeError } from '../../src/core/errors.js'
import { sniffFormat, type Frame } from '../../src/core/frame.js'
import { renderTestFrame } from '../../src/image/test-pattern.js'
import { testsrc } from '../../src/sources/testsrc.js'
import { stageInfo } from '../../src/core/stage.js'
import { collect, withTimeout } from '../helpers/index.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Count of pure-white pixels in rows [y0, y1). */
function whitePixels(buf: Buffer, width: number, y0: number, y1: number): number {
  let n = 0
  for (let i = y0 * width * 3; i < y1 * width * 3; i += 3) if (buf[i] === 255 && buf[i + 1] === 255 && buf[i + 2] === 255) n++
  return n
}

function pixel(buf: Buffer, width: number, x: number, y: number): number[] {
  const i = (y * width + x) * 3
  return [buf[i]!, buf[i + 1]!, buf[i + 2]!]
}

testProp(
  'renderTestFrame is a pure function of (n, width, height) with w*h*3 bytes',
  [fc.nat({ max: 2_000_000 }), fc.integer({ min: 16, max: 300 }), fc.integer({ min: 16, max: 200 })],
  (t, n, width, height) => {
    const a = renderTestFrame(n, width, height)
    const b = renderTestFrame(n, width, height)
    t.is(a.length, width * height * 3)
    t.true(a.equals(b))
    t.not(a, b, 'a new buffer each call')
    t.false(a.equals(renderTestFrame(n + 1, width, height)), 'the next frame differs')
  },
)

test('different frame numbers give different pictures (all pairs of the first 300 at 64x48)', (t) => {
  const seen = new Map<string, number>()
  for (let n = 0; n < 300; n++) {
    const key = renderTestFrame(n, 64, 48).toString('base64')
    t.false(seen.has(key), `frame ${n} equals frame ${seen.get(key)}`)
    seen.set(key, n)
  }
})

test('the frame number is drawn big in the bottom band, and the digits differ between frames', (t) => {
  const w = 640
  const h = 480
  const a = renderTestFrame(1234, w, h)
  const b = renderTestFrame(1235, w, h)
  const band = Math.floor(h * 0.8)
  // Digits at 640x480 are 10x scaled 5x7 glyphs: thousands of white pixels, not a few.
  t.true(whitePixels(a, w, band, h) > 3000, `white pixels in band: ${whitePixels(a, w, band, h)}`)
  t.false(a.subarray(band * w * 3).equals(b.subarray(band * w * 3)), 'the band changes with the number')
  // Only the last digit changes from 1234 to 1235: the left half of the band is the same.
  for (let y = band; y < h; y++) {
    const row = y * w * 3
    t.true(a.subarray(row, row + (w / 2) * 3).equals(b.subarray(row, row + (w / 2) * 3)))
  }
  // Colour bars on top: white at the left edge, blue in the seventh eighth.
  t.deepEqual(pixel(a, w, 2, 2), [255, 255, 255])
  t.deepEqual(pixel(a, w, Math.floor((w * 6.5) / 8), 2), [0, 0, 255])
})

test('the box moves with the frame number', (t) => {
  const w = 320
  const h = 240
  const bars = h - 60
  const a = renderTestFrame(10, w, h)
  const b = renderTestFrame(11, w, h)
  t.false(a.subarray(0, bars * w * 3).equals(b.subarray(0, bars * w * 3)))
})

test('count frames of raw RGB, seq 0.., identical to renderTestFrame; counters follow', async (t) => {
  const src = testsrc({ width: 32, height: 24, fps: 0, count: 5 })
  const frames = await withTimeout(collect<Frame>(src), 5000, 'testsrc')
  t.is(frames.length, 5)
  frames.forEach((f, i) => {
    t.is(f.seq, i)
    t.is(f.format, 'raw')
    t.is(f.width, 32)
    t.is(f.height, 24)
    t.is(f.channels, 3)
    t.is(f.data.length, 32 * 24 * 3)
    t.true(f.data.equals(renderTestFrame(i, 32, 24)))
    t.true(Math.abs(f.timestamp - Date.now()) < 60_000)
  })
  t.true(frames[4]!.timestamp >= frames[0]!.timestamp)
  t.like(stageInfo(src)!.counters, { frames: 5, bytes: 5 * 32 * 24 * 3 })
})

test('format=jpeg gives decodable JPEGs of the right size', async (t) => {
  const frames = await withTimeout(
    collect<Frame>(testsrc({ width: 64, height: 48, fps: 0, count: 2, format: 'jpeg', quality: 50 })),
    5000,
    'testsrc',
  )
  t.is(frames.length, 2)
  for (const f of frames) {
    t.is(f.format, 'jpeg')
    t.is(sniffFormat(f.data), 'jpeg')
    const meta = await sharp(f.data).metadata()
    t.is(meta.width, 64)
    t.is(meta.height, 48)
  }
})

test.serial('fps paces frames: 10 frames at 50 fps take at least 150 ms', async (t) => {
  const start = performance.now()
  const frames = await withTimeout(collect<Frame>(testsrc({ width: 16, height: 16, fps: 50, count: 10 })), 10_000, 'testsrc')
  t.is(frames.length, 10)
  t.true(performance.now() - start >= 150, `took ${performance.now() - start} ms`)
})

test.serial('after a stall the schedule restarts instead of bursting to catch up', async (t) => {
  const src = testsrc({ width: 16, height: 16, fps: 50 })
  const it = src[Symbol.asyncIterator]()
  await it.next()
  // Block the event loop for 10 frame intervals.
  const until = performance.now() + 200
  while (performance.now() < until);
  const after = performance.now()
  for (let i = 0; i < 5; i++) await it.next()
  // At most one frame is made up (plus the one buffered): the other three keep the 20 ms spacing.
  t.true(performance.now() - after >= 55, `5 frames after a stall took ${performance.now() - after} ms`)
  src.destroy()
})

test('stop() ends an endless source cleanly after the current frame', async (t) => {
  const src = testsrc({ width: 16, height: 16, fps: 0 })
  let n = 0
  await withTimeout(
    (async () => {
      for await (const _ of src) {
        n++
        if (n === 3) src.stop()
      }
    })(),
    5000,
    'stopped testsrc',
  )
  t.true(n >= 3 && n <= 5, `got ${n} frames`)
  t.true(src.readableEnded)
})

test('stop() while waiting for a slow slot ends at once', async (t) => {
  const src = testsrc({ width: 16, height: 16, fps: 0.1 })
  const it = src[Symbol.asyncIterator]()
  t.is(((await withTimeout(it.next(), 5000, 'first frame')).value as Frame).seq, 0)
  src.stop()
  // The next slot is 10 s away: ending must not wait for it.
  t.true((await withTimeout(it.next(), 5000, 'stop')).done)
})

test('backpressure: a slow consumer is never more than a frame or two behind', async (t) => {
  const src = testsrc({ width: 16, height: 16, fps: 0 })
  let consumed = 0
  for await (const _ of src) {
    consumed++
    await sleep(10)
    if (consumed === 5) break
  }
  t.true(stageInfo(src)!.counters.frames <= consumed + 2, `produced ${stageInfo(src)!.counters.frames} for ${consumed} consumed`)
})

test('options are validated', (t) => {
  const e1 = t.throws(() => testsrc({ width: 8 }), { instanceOf: FramePipeError })
  t.is(e1.code, 'ERR_INVALID_OPTION')
  t.is(e1.message, 'testsrc: expected integer between 16 and 8192 for width but received 8 of type number')
  const e2 = t.throws(() => testsrc({ format: 'png' as 'raw' }), { instanceOf: FramePipeError })
  t.is(e2.code, 'ERR_INVALID_OPTION')
})

test('the pattern is pinned: frames stay byte-identical across releases (a change must be on purpose)', (t) => {
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
  t.is(sha(renderTestFrame(1234, 640, 480)), '0656157e55b12962d3f008fba6452b508b90dce8ac18d2da48946a32a5db2ca4')
  t.is(sha(renderTestFrame(7, 160, 120)), '7c3c4f898aca9f034930428a8f4a98c41b27f05b911f41e77a09ccd9681d6ed6')
})
