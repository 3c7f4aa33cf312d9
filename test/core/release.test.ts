// Pooled frames (Frame.release): decode's pixel buffers go back to its pool
// when the frame's last holder releases them, and only then; a stream with
// two consumers, or a mapFrames function, never lets one go back while
// another holder may still read it.

import test from 'ava'
import { Writable } from 'node:stream'
import { pipeline as streamPipeline } from 'node:stream/promises'
import sharp from 'sharp'
import { handOn, makeFrame, releaseFrame, type Frame } from '../../src/core/frame.js'
import { mapFrames } from '../../src/core/map-frames.js'
import { pipeline } from '../../src/core/pipeline.js'
import { decode } from '../../src/transforms/decode.js'
import { nullSink } from '../../src/sinks/null.js'
import { stats } from '../../src/transforms/stats.js'
import { fromItems, withTimeout } from '../helpers/index.js'

/** n different 64x48 JPEGs (the frame number sets the grey level), with the pixels decode makes of each. */
async function jpegs(n: number): Promise<{ frames: Frame[]; pixels: Buffer[] }> {
  const frames: Frame[] = []
  const pixels: Buffer[] = []
  for (let i = 0; i < n; i++) {
    const raw = Buffer.alloc(64 * 48 * 3, (i * 37) % 256)
    const data = await sharp(raw, { raw: { width: 64, height: 48, channels: 3 } })
      .jpeg({ quality: 90 })
      .toBuffer()
    frames.push(makeFrame(data, { format: 'jpeg', seq: i }))
  }
  // What decode makes of each, one frame per stage (so nothing is pooled), copied.
  for (const frame of frames) {
    const got: Frame[] = []
    await pipeline(
      fromItems([{ ...frame }]),
      decode(),
      new Writable({
        objectMode: true,
        write: (f: Frame, _e, cb) => {
          got.push(f)
          cb()
        },
      }),
    )
    pixels.push(Buffer.from(got[0]!.data))
  }
  return { frames, pixels }
}

/** A consumer that checks each frame's pixels against `want`, notes its buffer, then (optionally, later) releases it. */
function checker(want: Buffer[], o: { release: boolean; hold?: Frame[] }) {
  const buffers = new Set<ArrayBufferLike>()
  let wrong = 0
  let withRelease = 0
  const sink = new Writable({
    objectMode: true,
    write(frame: Frame, _enc, cb) {
      if (!frame.data.equals(want[frame.seq]!)) wrong++
      if (frame.release) withRelease++
      buffers.add(frame.data.buffer)
      if (o.hold) o.hold.push(frame)
      else if (o.release) releaseFrame(frame)
      cb()
    },
  })
  return { sink, buffers: () => buffers.size, wrong: () => wrong, withRelease: () => withRelease }
}

test('decode reuses its pixel buffers when the last holder releases them: every frame still arrives intact', async (t) => {
  const { frames, pixels } = await jpegs(40)
  const c = checker(pixels, { release: true })
  await withTimeout(pipeline(fromItems(frames), decode({ concurrency: 2 }), stats(), c.sink), 20_000, 'decode')
  t.is(c.wrong(), 0)
  t.is(c.withRelease(), 40)
  // In flight (2), queued and pooled (4): far fewer buffers than frames.
  t.true(c.buffers() <= 8, `${c.buffers()} buffers for 40 frames`)
})

test('frames kept by their holder are never reused: each keeps its own pixels', async (t) => {
  const { frames, pixels } = await jpegs(20)
  const hold: Frame[] = []
  const c = checker(pixels, { release: false, hold })
  await withTimeout(pipeline(fromItems(frames), decode(), c.sink), 20_000, 'decode')
  t.is(c.buffers(), 20)
  t.true(hold.every((f) => f.data.equals(pixels[f.seq]!)))
})

test('a decode read by two consumers hands frames on without release: neither can pull pixels from under the other', async (t) => {
  const { frames, pixels } = await jpegs(30)
  const d = decode()
  const a = checker(pixels, { release: true })
  const b = checker(pixels, { release: true })
  const fed = fromItems(frames).pipe(d)
  d.pipe(b.sink)
  await withTimeout(Promise.all([streamPipeline(fed, a.sink), new Promise((r) => b.sink.on('finish', r))]), 20_000, 'tee')
  t.is(a.withRelease() + b.withRelease(), 0)
  t.is(a.wrong() + b.wrong(), 0)
  t.is(a.buffers(), 30)
})

test('the null sink releases what nobody reads after it, and passes on (without releasing) what someone does', async (t) => {
  let released = 0
  const pooled = (seq: number): Frame => {
    const f = makeFrame(Buffer.alloc(16), { format: 'raw', seq })
    f.release = () => released++
    return f
  }
  await pipeline(fromItems([pooled(0), pooled(1), pooled(2)]), nullSink())
  t.is(released, 3)

  released = 0
  const seen: Frame[] = []
  const sink = nullSink()
  sink.on('data', (f: Frame) => seen.push(f))
  await pipeline(fromItems([pooled(0), pooled(1)]), sink)
  t.is(released, 0)
  t.is(seen.length, 2)
  t.truthy(seen[0]!.release, 'the reader is the last holder now')
})

test('release runs at most once; mapFrames takes it away before the function sees the frame; handOn keeps it for one consumer only', async (t) => {
  let released = 0
  const f = makeFrame(Buffer.alloc(4), { format: 'raw' })
  f.release = () => released++
  releaseFrame(f)
  releaseFrame(f)
  t.is(released, 1)

  const g = makeFrame(Buffer.alloc(4), { format: 'raw' })
  g.release = () => released++
  let inside: Frame | undefined
  await pipeline(
    fromItems([g]),
    mapFrames((frame) => {
      inside = frame
      return frame
    }),
    nullSink(),
  )
  t.is(inside!.release, undefined)
  t.is(released, 1)

  const d = decode()
  const h = makeFrame(Buffer.alloc(4), { format: 'raw' })
  h.release = () => undefined
  d.on('data', () => undefined)
  t.is(handOn(d, h), h)
  t.truthy(h.release)
  d.on('data', () => undefined)
  handOn(d, h)
  t.false('release' in h && h.release !== undefined)
  d.destroy()
})
