// Pooled frame bodies: unprefix reads a body that spans chunks into a buffer
// from its pool, and the frame's last holder gives it back (Frame.release).
// What must hold: a frame's bytes never change before its holder releases it,
// whatever the chunking, sizes and holding pattern; buffers are reused when
// frames are released; a frame seen by two consumers, or passed on by a sink
// that may still use it, cannot be given back; decode gives back what it has
// decoded; and the pool keeps within its bounds.

import test from 'ava'
import { testProp, fc } from '@fast-check/ava'
import net from 'node:net'
import { once } from 'node:events'
import { PassThrough, Readable, Transform, Writable } from 'node:stream'
import sharp from 'sharp'
import { BodyPool, MIN_POOLED_BYTES } from '../../src/core/body-pool.js'
import { handOn, isFrame, makeFrame, releaseFrame, type Frame } from '../../src/core/frame.js'
import { pipeline } from '../../src/core/pipeline.js'
import { passOn } from '../../src/core/stage.js'
import { decode } from '../../src/transforms/decode.js'
import { unprefix } from '../../src/transforms/unprefix.js'
import { nullSink } from '../../src/sinks/null.js'
import { tcpServer } from '../../src/sources/tcp-server.js'
import { fromItems, rechunk, run, withTimeout } from '../helpers/index.js'

/** Frame i's payload: `size` bytes that differ from every other frame's at every position. */
function payload(i: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size)
  for (let j = 0; j < size; j++) b[j] = (i * 131 + j * 7) & 0xff
  b.writeUInt32BE(i, 0)
  return b
}

/** u32be-framed stream of the payloads. */
function wire(payloads: readonly Buffer[]): Buffer {
  const parts: Buffer[] = []
  for (const p of payloads) {
    const h = Buffer.alloc(4)
    h.writeUInt32BE(p.length, 0)
    parts.push(h, p)
  }
  return Buffer.concat(parts)
}

/**
 * A consumer that holds the last `hold` frames, then checks the oldest against
 * its payload and releases it: a frame whose bytes changed while held is
 * counted in `wrong`.
 */
function holder(want: readonly Buffer[], hold: number) {
  const held: Frame[] = []
  /** The buffers of pooled frames (those with a release). */
  const buffers = new Set<ArrayBufferLike>()
  const state = { wrong: 0, seen: 0, withRelease: 0 }
  const check = (f: Frame) => {
    if (!f.data.equals(want[f.data.readUInt32BE(0)]!)) state.wrong++
    releaseFrame(f)
  }
  const sink = new Writable({
    objectMode: true,
    highWaterMark: 1,
    write(frame: Frame, _e, cb) {
      state.seen++
      if (frame.release) {
        state.withRelease++
        buffers.add(frame.data.buffer)
      }
      held.push(frame)
      if (held.length > hold) check(held.shift()!)
      cb()
    },
    final(cb) {
      for (const f of held.splice(0)) check(f)
      cb()
    },
  })
  return { sink, state, buffers: () => buffers.size }
}

// ---------------------------------------------------------------- the pool

test('BodyPool: a buffer given back serves the next body of about its size; one far smaller or larger gets its own', (t) => {
  const pool = new BodyPool()
  const a = pool.take(10_000)
  t.is(a.length, 11_250, 'an eighth of headroom')
  pool.give(a)
  t.is(pool.size, 1)
  t.is(pool.take(11_000), a, 'a little larger: fits the headroom')
  pool.give(a)
  t.is(pool.take(6_000), a, 'smaller, but the buffer is not twice its size')
  pool.give(a)
  const big = pool.take(20_000)
  t.not(big, a, 'larger than the buffer')
  t.is(pool.size, 0, 'nothing fitted: the oldest kept buffer was let go, so the pool turns over to the new size')
  pool.give(big)
  t.not(pool.take(5_000), big, 'more than twice the body: not lent, it would waste most of itself')
})

test('BodyPool: at most 8 buffers and 16 MiB are kept', (t) => {
  const pool = new BodyPool()
  const small = Array.from({ length: 12 }, () => pool.take(MIN_POOLED_BYTES))
  for (const b of small) pool.give(b)
  t.is(pool.size, 8)
  const pool2 = new BodyPool()
  const big = Array.from({ length: 4 }, () => pool2.take(6 * 1024 * 1024))
  for (const b of big) pool2.give(b)
  t.is(pool2.size, 2, '2 × 6.75 MiB fit in 16 MiB, a third does not')
})

// ---------------------------------------------------------------- unprefix

testProp(
  "unprefix's pooled bodies never change before their holder releases them, under any chunking, sizes and holding",
  [
    fc.array(fc.integer({ min: 0, max: 40_000 }), { minLength: 1, maxLength: 24 }),
    fc.nat(),
    fc.integer({ min: 1, max: 9000 }),
    fc.integer({ min: 0, max: 5 }),
  ],
  async (t, sizes, seed, maxPiece, hold) => {
    const want = sizes.map((size, i) => payload(i, Math.max(4, size)))
    const h = holder(want, hold)
    await withTimeout(pipeline(fromItems(rechunk(wire(want), seed, maxPiece)), unprefix(), h.sink), 10_000, 'pipeline')
    t.is(h.state.seen, want.length)
    t.is(h.state.wrong, 0)
  },
  { numRuns: 60 },
)

test('unprefix reuses body buffers that are released: 200 frames across chunks in a handful of buffers', async (t) => {
  const want = Array.from({ length: 200 }, (_, i) => payload(i, 30_000 + ((i * 997) % 5000)))
  const h = holder(want, 1)
  await withTimeout(pipeline(fromItems(rechunk(wire(want), 7, 4000)), unprefix(), h.sink), 10_000, 'pipeline')
  t.is(h.state.wrong, 0)
  t.is(h.state.withRelease, 200, 'every body spanned chunks')
  t.true(h.buffers() <= 8, `${h.buffers()} buffers for 200 frames`)
})

test('frames held without release keep their own buffers', async (t) => {
  const want = Array.from({ length: 30 }, (_, i) => payload(i, 20_000))
  const kept: Frame[] = []
  const sink = new Writable({
    objectMode: true,
    write(f: Frame, _e, cb) {
      kept.push(f)
      cb()
    },
  })
  await withTimeout(pipeline(fromItems(rechunk(wire(want), 3, 3000)), unprefix(), sink), 10_000, 'pipeline')
  t.is(new Set(kept.map((f) => f.data.buffer)).size, 30)
  t.true(kept.every((f, i) => f.data.equals(want[i]!)))
})

test("two consumers of unprefix's output: frames come without release, so neither can give a buffer back", async (t) => {
  const want = Array.from({ length: 20 }, (_, i) => payload(i, 20_000))
  const u = unprefix()
  const a = new PassThrough({ objectMode: true })
  const b = new PassThrough({ objectMode: true })
  u.pipe(a)
  u.pipe(b)
  const got: Frame[] = []
  a.on('data', (f: Frame) => got.push(f))
  b.resume()
  const ended = once(a, 'end')
  for (const chunk of rechunk(wire(want), 11, 3000)) u.write(chunk)
  u.end()
  await withTimeout(ended, 10_000, 'end')
  t.is(got.length, 20)
  t.true(
    got.every((f) => f.release === undefined),
    'no release',
  )
})

test('tcp-server ! unprefix fused by pipeline(): released bodies are reused, every frame intact', async (t) => {
  const want = Array.from({ length: 300 }, (_, i) => payload(i, 47_000 + ((i * 389) % 3000)))
  const source = tcpServer({ port: 0, once: true })
  await once(source, 'listening')
  const port = (source.address() as net.AddressInfo).port
  const h = holder(want, 2)
  const done = pipeline(source, unprefix(), h.sink)
  const client = net.connect(port, '127.0.0.1')
  t.teardown(() => client.destroy())
  client.end(wire(want))
  await withTimeout(done, 15_000, 'pipeline')
  t.is(h.state.seen, 300)
  t.is(h.state.wrong, 0)
  // A frame that lies inside one 64 KiB socket read is a view into it; the others were read into pooled buffers.
  t.true(h.state.withRelease > 100, `${h.state.withRelease} of 300 frames pooled`)
  t.true(h.buffers() <= 8, `${h.buffers()} buffers for ${h.state.withRelease} pooled frames`)
})

// ---------------------------------------------------------------- decode, sinks

test("decode gives back the encoded frame's buffer once decoded: JPEG bodies are reused, pixels right", async (t) => {
  const jpegs: Buffer[] = []
  for (let i = 0; i < 4; i++) {
    const raw = Buffer.alloc(96 * 64 * 3)
    for (let j = 0; j < raw.length; j++) raw[j] = (j * (i + 3) + ((j >> 5) % 17) * 29) & 0xff
    jpegs.push(
      await sharp(raw, { raw: { width: 96, height: 64, channels: 3 } })
        .jpeg({ quality: 95 })
        .toBuffer(),
    )
  }
  t.true(jpegs.every((j) => j.length >= MIN_POOLED_BYTES))
  const order = Array.from({ length: 40 }, (_, i) => i % 4)
  // What decode makes of each JPEG alone (nothing pooled or reused), copied.
  const expected: Buffer[] = []
  for (const j of jpegs) {
    const [f] = await run<Frame>(fromItems([makeFrame(j, { format: 'jpeg' })]), decode())
    expected.push(Buffer.from(f!.data))
  }
  // Records the buffers decode is given; hands frames on with their release, as stages do.
  const inputs = new Set<ArrayBufferLike>()
  const spy = new Transform({
    objectMode: true,
    // Few frames in flight, as in a real pipeline's bounded stages.
    highWaterMark: 1,
    transform(f: Frame, _e, cb) {
      inputs.add(f.data.buffer)
      cb(null, handOn(spy, f))
    },
  })
  let i = 0
  let wrong = 0
  const check = new Transform({
    objectMode: true,
    highWaterMark: 1,
    transform(f: Frame, _e, cb) {
      if (!f.data.equals(expected[order[i++]!]!)) wrong++
      cb(null, f)
    },
  })
  await withTimeout(
    pipeline(
      fromItems(rechunk(wire(order.map((k) => jpegs[k]!)), 5, 1500)),
      unprefix(),
      spy,
      decode({ concurrency: 2 }),
      check,
      nullSink(),
    ),
    20_000,
    'pipeline',
  )
  t.is(i, 40)
  t.is(wrong, 0)
  t.true(inputs.size <= 10, `${inputs.size} input buffers for 40 frames`)
})

test('a sink passes frames on without release: it may still use their bytes', async (t) => {
  const out = new Readable({ objectMode: true, read() {} })
  const pushed: unknown[] = []
  out.on('data', (x) => pushed.push(x))
  const f = makeFrame(Buffer.alloc(8), { format: 'raw' })
  let released = 0
  f.release = () => released++
  const arrived = once(out, 'data')
  passOn(out, f)
  await arrived
  t.is(pushed.length, 1)
  t.true(isFrame(pushed[0]))
  t.is((pushed[0] as Frame).release, undefined)
  releaseFrame(pushed[0] as Frame)
  t.is(released, 0)
})
