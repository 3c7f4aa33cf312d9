// The UDP transports: native reassembly and the seeds' chunked receiver fed
// datagrams directly (property tests: loss, repeats, reordering, garbage), the
// sender's window, then udp-server and udp-client over loopback sockets (port 0).

import test from 'ava'
import { testProp, fc } from '@fast-check/ava'
import { once } from 'node:events'
import { Readable, Writable } from 'node:stream'
import sharp from 'sharp'
import { makeFrame, type Frame } from '../../src/core/frame.js'
import { FramePipeError } from '../../src/core/errors.js'
import { pipeline } from '../../src/core/pipeline.js'
import { newCounters } from '../../src/core/stage.js'
import { udpServer } from '../../src/sources/udp-server.js'
import { udpClient } from '../../src/sinks/udp-client.js'
import { NativeReassembler } from '../../src/net/udp/reassembly.js'
import { ChunkedReceiver, seedChunks, WholeReceiver } from '../../src/net/udp/seed.js'
import { encodeAck, encodeFrame, parseDatagram } from '../../src/net/udp/native.js'
import { isCompleteJpeg } from '../../src/wire/jpeg.js'
import { SendWindow } from '../../src/net/udp/window.js'
import { hex } from '../../src/wire/headers.js'
import type { Peer } from '../../src/net/udp/receive.js'
import { fromItems, prng, withTimeout } from '../helpers/index.js'
import { counters, freePort, next1024, padJpeg, randomBytes, rawSocket, send, startServer, syntheticJpeg, until } from '../helpers/udp.js'

// ---------------------------------------------------------------- helpers

const A: Peer = { address: '127.0.0.1', port: 40001 }
const B: Peer = { address: '127.0.0.1', port: 40002 }
const quiet = { warn: () => {} }

async function noiseJpeg(seed: number, width = 160, height = 120): Promise<Buffer> {
  const raw = randomBytes(width * height * 3, prng(seed))
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 80 })
    .toBuffer()
}

/** Every datagram of `frame` on the native wire, each as one Buffer. */
function nativeDatagrams(frame: Frame, stream: number, id: number, mtu: number): Buffer[] {
  const d = encodeFrame(frame, stream, id, mtu, 'test')
  if (d instanceof FramePipeError) throw d
  return d.map((pieces) => Buffer.concat(pieces))
}

// ---------------------------------------------------------------- wire layout

test('native datagram layout is pinned (the README hex dump)', (t) => {
  const frame = makeFrame(Buffer.from('FFD8FFE0DEADBEEFFFD9', 'hex'), {
    seq: 7,
    timestamp: 1700000000000.5,
    width: 160,
    height: 120,
    channels: 3,
    format: 'jpeg',
  })
  const datagrams = encodeFrame(frame, 0x0a0b0c0d, 42, 60, 'test') as Buffer[][]
  t.is(datagrams.length, 2, '10 bytes in chunks of 60 - 52 = 8')
  t.is(
    hex(datagrams[0]![0]!),
    '46 50 55 44 01 01 00 34 0a 0b 0c 0d 00 00 00 2a 00 00 00 02 00 00 00 0a ' +
      '42 78 bc fe 56 80 08 00 00 00 00 07 00 00 00 a0 00 00 00 78 02 03 00 00 1b 42 e3 fc',
  )
  t.is(hex(datagrams[0]![1]!), 'ff d8 ff e0 de ad be ef')
  t.is(hex(datagrams[1]![0]!.subarray(16, 18)), '00 01', 'only the chunk index differs')
  t.true(datagrams[0]![0]!.subarray(18).equals(datagrams[1]![0]!.subarray(18)))
  t.is(hex(datagrams[1]![1]!), 'ff d9')
  t.is(hex(encodeAck(0x0a0b0c0d, 42)), '46 50 55 44 01 02 00 10 0a 0b 0c 0d 00 00 00 2a')
  t.deepEqual(parseDatagram(encodeAck(5, 6)), { kind: 'ack', stream: 5, id: 6 })
})

test('seed chunking reproduces the 000b client loop, empty datagram included', (t) => {
  const sizes = (n: number) => seedChunks(Buffer.alloc(n)).map((d) => d.length)
  t.deepEqual(sizes(2500), [8, 1024, 1024, 452])
  t.deepEqual(sizes(2048), [8, 1024, 1024, 0])
  t.deepEqual(sizes(5), [8, 5])
  t.is(hex(seedChunks(Buffer.alloc(14336))[0]!), '00 38 00 00 00 00 00 00', 'WIRE.md example: L = 14336')
})

test('isCompleteJpeg accepts real JPEGs and refuses cut, spliced or foreign bytes', async (t) => {
  const jpeg = await noiseJpeg(1)
  const progressive = await sharp(randomBytes(64 * 48 * 3, prng(2)), { raw: { width: 64, height: 48, channels: 3 } })
    .jpeg({ progressive: true })
    .toBuffer()
  t.true(isCompleteJpeg(jpeg))
  t.true(isCompleteJpeg(progressive))
  t.true(isCompleteJpeg(padJpeg(jpeg, jpeg.length + 100)))
  t.false(isCompleteJpeg(jpeg.subarray(0, jpeg.length - 1)), 'cut')
  t.false(isCompleteJpeg(Buffer.concat([jpeg.subarray(0, 100), jpeg.subarray(1124)])), 'a chunk of the header segments missing')
  t.false(
    isCompleteJpeg(Buffer.concat([jpeg.subarray(0, jpeg.length - 1000), jpeg.subarray(0, 1000)])),
    'a chunk of the start in place of the end',
  )
  t.false(isCompleteJpeg(Buffer.concat([jpeg, jpeg])), 'two images')
  t.false(isCompleteJpeg(Buffer.from('get message!!!')))
  t.false(isCompleteJpeg(Buffer.alloc(0)))
})

// ---------------------------------------------------------------- native reassembly (no sockets)

testProp(
  'native: loss, repeats and reordering never deliver a wrong or repeated frame, and every frame id is accounted for',
  [
    fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 24 }),
    fc.integer({ min: 64, max: 700 }),
    fc.integer(),
    fc.double({ min: 0, max: 0.3, noNaN: true }),
    fc.double({ min: 0, max: 0.3, noNaN: true }),
    fc.integer({ min: 0, max: 300 }),
  ],
  (t, sizes, mtu, seed, loss, dup, spread) => {
    const rand = prng(seed)
    const frames = sizes.map((n, i) =>
      makeFrame(randomBytes(n, rand), { seq: i, timestamp: 1000 + i, width: i, height: 2 * i, channels: 3, format: 'jpeg' }),
    )
    const sent = frames.flatMap((f, id) => nativeDatagrams(f, 99, id, mtu))
    const wire: Array<{ d: Buffer; key: number }> = []
    sent.forEach((d, i) => {
      if (rand() < loss) return
      wire.push({ d, key: i + rand() * spread })
      if (rand() < dup) wire.push({ d, key: i + rand() * spread })
    })
    wire.sort((a, b) => a.key - b.key)
    const c = newCounters()
    const r = new NativeReassembler({ maxFrameBytes: 2 ** 20, timeout: 1000 }, { counters: c, ...quiet })
    const delivered = wire.map(({ d }) => r.push(d, A, 0)).filter((x) => x !== undefined)
    r.flush()
    let last = -1
    for (const got of delivered) {
      const seq = got.meta!.seq
      t.true(seq > last, 'delivered in order, each at most once')
      last = seq
      t.true(got.data.equals(frames[seq]!.data), `frame ${seq} byte for byte`)
      t.like(got.meta, { timestamp: 1000 + seq, width: seq, height: 2 * seq, channels: 3, format: 'jpeg' })
      t.deepEqual(parseDatagram(got.ack!), { kind: 'ack', stream: 99, id: seq })
    }
    if (wire.length > 0) {
      const ids = wire.map(({ d }) => d.readUInt32BE(12))
      t.is(delivered.length + c.drops, Math.max(...ids) - ids[0]! + 1, 'from the first id heard to the last, each delivered or counted')
    }
    t.is(c.drops, c.incomplete! + c.evicted! + c.skipped! + c.corrupt!)
    t.is(c.garbage, 0)
    if (loss === 0 && dup === 0 && spread === 0) t.is(delivered.length, frames.length)
    t.is(r.inProgress, 0)
  },
)

testProp(
  'native: garbage and damaged datagrams are counted, never delivered, never a crash',
  [fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 20 }), fc.integer()],
  (t, junk, seed) => {
    const rand = prng(seed)
    const frames = [0, 1, 2, 3].map((i) => makeFrame(randomBytes(300 + i * 111, rand), { seq: i }))
    const wire: Buffer[] = []
    frames.forEach((f, id) => {
      for (const d of nativeDatagrams(f, 5, id, 128)) {
        // A damaged copy first (one byte flipped anywhere, header included), then the real one.
        const bad = Buffer.from(d)
        bad[Math.floor(rand() * bad.length)]! ^= 1 + Math.floor(rand() * 255)
        wire.push(bad, d)
      }
    })
    for (const j of junk) wire.splice(Math.floor(rand() * wire.length), 0, Buffer.from(j))
    const c = newCounters()
    const r = new NativeReassembler({ maxFrameBytes: 2 ** 20, timeout: 1000 }, { counters: c, ...quiet })
    for (const d of wire) {
      const got = r.push(d, A, 0)
      if (got) t.true(got.data.equals(frames[got.meta!.seq]!.data), 'only whole, correct frames come out')
    }
    t.true(c.garbage! + c.duplicates! + c.corrupt! + c.late! >= 1 || junk.length === 0)
  },
)

test('native: incomplete frames time out, the newest delivered makes older ones stale, reassembly is bounded', (t) => {
  const c = newCounters()
  const warnings: string[] = []
  const r = new NativeReassembler({ maxFrameBytes: 2 ** 20, timeout: 100, maxPending: 3 }, { counters: c, warn: (m) => warnings.push(m) })
  const frames = Array.from({ length: 8 }, (_, i) => makeFrame(Buffer.alloc(500, i), { seq: i }))
  const d = frames.map((f, id) => nativeDatagrams(f, 1, id, 200))
  // Frame 0: one chunk of four, then silence.
  r.push(d[0]![0]!, A, 0)
  r.expire(50)
  t.is(r.inProgress, 1)
  r.expire(100)
  t.is(r.inProgress, 0)
  t.like(c, { drops: 1, incomplete: 1 })
  t.regex(warnings[0]!, /frame id 0 .*incomplete after 100 ms \(1 of 4 datagrams\)/)
  // Frames 1..4 each half there: the fourth evicts the oldest.
  for (let id = 1; id <= 4; id++) r.push(d[id]![0]!, A, 200)
  t.is(r.inProgress, 3)
  t.like(c, { drops: 2, evicted: 1 })
  // Frame 6 evicts frame 2, then completes: 3..5 are skipped for good (3, 4 were pending, 5 never seen).
  for (const x of d[6]!) t.is(r.push(x, A, 200)?.meta?.seq ?? 6, 6)
  t.is(r.inProgress, 0)
  t.like(c, { drops: 6, incomplete: 1, evicted: 2, skipped: 3 })
  // Late chunks of a settled frame are ignored.
  t.is(r.push(d[3]![1]!, A, 200), undefined)
  t.is(c.late, 1)
  // A frame bigger than maxFrameBytes is refused at its first datagram.
  const small = new NativeReassembler({ maxFrameBytes: 100, timeout: 100 }, { counters: newCounters(), warn: (m) => warnings.push(m) })
  small.push(d[7]![0]!, A, 0)
  t.is(small.inProgress, 0)
  t.regex(warnings.at(-1)!, /announces 500 bytes, more than maxFrameBytes \(100\)/)
})

test('native: frames of two senders, or two streams of one sender, never mix', (t) => {
  const c = newCounters()
  const r = new NativeReassembler({ maxFrameBytes: 2 ** 20, timeout: 100 }, { counters: c, ...quiet })
  const fa = makeFrame(Buffer.alloc(700, 0xaa), { seq: 1 })
  const fb = makeFrame(Buffer.alloc(700, 0xbb), { seq: 2 })
  const da = nativeDatagrams(fa, 1, 0, 300)
  const db = nativeDatagrams(fb, 1, 0, 300)
  const got: Buffer[] = []
  for (let i = 0; i < da.length; i++) {
    const x = r.push(da[i]!, A, 0)
    const y = r.push(db[i]!, B, 0)
    if (x) got.push(x.data)
    if (y) got.push(y.data)
  }
  t.deepEqual(got, [fa.data, fb.data])
})

// ---------------------------------------------------------------- seed receivers (no sockets)

testProp(
  'chunked: random loss never delivers a corrupt image to reply-paced senders; without loss every image arrives',
  [
    fc.array(
      fc.record({
        size: fc.oneof(
          fc.integer({ min: 24, max: 4000 }),
          fc.integer({ min: 1, max: 4 }).map((k) => k * 1024),
        ),
        peer: fc.integer({ min: 0, max: 1 }),
      }),
      { minLength: 1, maxLength: 12 },
    ),
    fc.integer(),
    fc.double({ min: 0, max: 0.25, noNaN: true }),
  ],
  (t, specs, seed, loss) => {
    const rand = prng(seed)
    const timeout = 1000
    const c = newCounters()
    const r = new ChunkedReceiver({ maxFrameBytes: 2 ** 20, timeout }, { counters: c, ...quiet })
    // Each sender waits for the reply; without one it gives up after ackTimeout = timeout, like udp-client.
    const senders = [A, B].map((peer, p) => ({
      peer,
      images: specs
        .map((s, i) => ({ ...s, i }))
        .filter((s) => s.peer === p)
        .map((s) => syntheticJpeg(s.size, s.i, rand)),
      k: -1,
      wire: [] as Buffer[],
      pos: 0,
      time: 0,
      delivered: 0,
      got: false,
    }))
    const next = (s: (typeof senders)[number]) => {
      if (s.k >= 0) s.time += s.got ? 1 : timeout
      s.k++
      s.got = false
      s.pos = 0
      s.wire = s.k < s.images.length ? seedChunks(s.images[s.k]!).filter(() => rand() >= loss) : []
    }
    senders.forEach(next)
    for (;;) {
      const active = senders.filter((s) => s.k < s.images.length)
      if (active.length === 0) break
      const t0 = Math.min(...active.map((s) => s.time))
      const ready = active.filter((s) => s.time === t0)
      const s = ready[Math.floor(rand() * ready.length)]!
      if (s.pos < s.wire.length) {
        const done = r.push(s.wire[s.pos++]!, s.peer, s.time)
        if (done) {
          t.is(done.peer, s.peer)
          t.true(done.data.equals(s.images[s.k]!), 'the image its sender is sending, byte for byte')
          s.got = true
          s.delivered++
        }
      }
      if (s.pos >= s.wire.length) next(s)
    }
    r.flush()
    t.is(r.inProgress, 0)
    if (loss === 0) {
      for (const s of senders) t.is(s.delivered, s.images.length)
      t.is(c.drops, 0)
      t.is(c.garbage, 0, 'the empty datagram after a multiple of 1024 is not garbage')
    }
  },
)

test('chunked: a lost chunk costs one image; the receiver resynchronises on the next header', (t) => {
  const rand = prng(3)
  const c = newCounters()
  const r = new ChunkedReceiver({ maxFrameBytes: 2 ** 20, timeout: 1000 }, { counters: c, ...quiet })
  const [x, y] = [syntheticJpeg(3000, 1, rand), syntheticJpeg(2500, 2, rand)]
  const wx = seedChunks(x)
  wx.splice(2, 1)
  const out = [...wx, ...seedChunks(y)].map((d) => r.push(d, A, 0)).filter(Boolean)
  t.is(out.length, 1)
  t.true(out[0]!.data.equals(y))
  t.like(c, { drops: 1, incomplete: 1 })
})

test('chunked: a repeated chunk, swapped chunks or a repeated header never deliver a corrupt image', (t) => {
  const rand = prng(4)
  const img = syntheticJpeg(3072, 1, rand) // a multiple of 1024: chunks 1024, 1024, 1024, then the empty datagram
  const next = syntheticJpeg(2100, 2, rand)
  const run = (wire: Buffer[]) => {
    const c = newCounters()
    const r = new ChunkedReceiver({ maxFrameBytes: 2 ** 20, timeout: 1000 }, { counters: c, ...quiet })
    return {
      out: wire
        .map((d) => r.push(d, A, 0))
        .filter((x) => x !== undefined)
        .map((x) => x.data),
      c,
    }
  }
  const [h, c1, c2, c3, empty] = seedChunks(img)
  const tail = seedChunks(next)
  const repeated = run([h!, c1!, c1!, c2!, c3!, empty!, ...tail])
  t.deepEqual(repeated.out, [next], 'repeated chunk: the image is not a JPEG and is dropped; the next one arrives')
  t.is(repeated.c.corrupt, 1)
  const swapped = seedChunks(Buffer.concat([img.subarray(0, 2000), Buffer.from([0xff, 0xd9])]))
  const [sh, s1, s2] = swapped
  t.deepEqual(run([sh!, s2!, s1!, ...tail]).out, [next], 'short last chunk first: out of step, dropped')
  t.deepEqual(run([h!, h!, c1!, c2!, c3!, empty!, ...tail]).out, [img, next], 'repeated header: resynchronised on the second')
})

test('chunked: an empty datagram is ignored, garbage and implausible headers are counted', (t) => {
  const c = newCounters()
  const warnings: string[] = []
  const r = new ChunkedReceiver({ maxFrameBytes: 10_000, timeout: 1000 }, { counters: c, warn: (m) => warnings.push(m) })
  const huge = Buffer.alloc(8)
  huge.writeBigInt64LE(20_000n)
  const negative = Buffer.alloc(8)
  negative.writeBigInt64LE(-5n)
  for (const d of [Buffer.alloc(0), Buffer.from('hello'), huge, negative, Buffer.alloc(1024)]) t.is(r.push(d, A, 0), undefined)
  t.like(c, { garbage: 4, drops: 0 })
  t.regex(warnings.join('\n'), /header announces 20000 bytes; expected 4\.\.10000/)
  t.regex(warnings.join('\n'), /header announces -5 bytes/)
  const img = syntheticJpeg(1500, 9, prng(1))
  t.true(
    seedChunks(img)
      .map((d) => r.push(d, A, 0))
      .find(Boolean)!
      .data.equals(img),
    'and the next image comes through',
  )
})

test('chunked: an image whose datagrams stop is dropped after timeout; the next one from that sender is not appended to it', (t) => {
  const c = newCounters()
  const r = new ChunkedReceiver({ maxFrameBytes: 2 ** 20, timeout: 100 }, { counters: c, ...quiet })
  const rand = prng(5)
  const x = seedChunks(syntheticJpeg(5000, 1, rand))
  const y = syntheticJpeg(3000, 2, rand)
  for (const d of x.slice(0, 3)) r.push(d, A, 0)
  // Lazily, at the next datagram, not only by the timer.
  const out = seedChunks(y)
    .map((d) => r.push(d, A, 150))
    .filter(Boolean)
  t.true(out[0]!.data.equals(y))
  t.like(c, { drops: 1, incomplete: 1 })
  for (const d of x.slice(0, 3)) r.push(d, B, 200)
  r.expire(300)
  t.is(r.inProgress, 0)
  t.like(c, { drops: 2, incomplete: 2 })
})

test('whole: one datagram is one JPEG; anything else is dropped and counted', (t) => {
  const c = newCounters()
  const r = new WholeReceiver({ maxFrameBytes: 65_507 }, { counters: c, ...quiet })
  const img = syntheticJpeg(900, 1, prng(6))
  t.true(r.push(img, A)!.data.equals(img))
  t.is(r.push(Buffer.alloc(0), A), undefined)
  t.is(r.push(Buffer.from('garbage'), A), undefined)
  t.is(r.push(img.subarray(0, 500), A), undefined)
  t.like(c, { garbage: 1, corrupt: 2, drops: 2 })
})

// ---------------------------------------------------------------- the window (no sockets)

test('window: a full window parks the newest frame, replacing the one parked; acks and timeouts free slots', (t) => {
  const w = new SendWindow<string>(2, 100)
  w.open('a', 0)
  w.open('b', 1)
  t.true(w.full)
  t.is(w.park('c'), undefined)
  t.is(w.park('d'), 'c', 'skip to the newest')
  t.is(w.unpark(), undefined, 'no slot yet')
  w.arm(0, 10)
  w.arm(1, 20)
  t.is(w.nextDeadline(), 110)
  t.deepEqual(w.expire(109), [])
  t.deepEqual(w.expire(110), ['a'])
  t.is(w.unpark(), 'd')
  w.open('d', 2)
  t.deepEqual(w.ackId(2), { acked: 'd', older: ['b'] }, 'an ack frees every frame sent before it')
  t.is(w.ackId(1), undefined, 'late ack')
  t.true(w.idle)
  w.open('e', 3)
  t.is(w.ackOldest(), 'e')
  w.open('f', 4)
  w.cancel(4)
  t.true(w.idle)
})

// ---------------------------------------------------------------- over sockets

for (const proto of ['native', 'whole', 'chunked'] as const) {
  test(`frame-pipe to frame-pipe, proto=${proto}: frames byte for byte, each acknowledged`, async (t) => {
    const srv = await startServer(t, { proto })
    const jpegs = await Promise.all([1, 2, 3].map((s) => noiseJpeg(s)))
    jpegs.push(padJpeg(jpegs[0]!, next1024(jpegs[0]!))) // the empty trailing datagram on the chunked wire
    const frames = jpegs.map((data, i) => makeFrame(data, { seq: 10 + i, width: 160, height: 120, channels: 3 }))
    const { counters: c, replies } = await send(frames, { port: srv.port, proto, whenFull: 'wait' })
    await until(() => srv.frames.length === frames.length)
    await srv.stop()
    t.deepEqual(
      srv.frames.map((f) => f.data),
      jpegs,
    )
    t.like(c, { frames: 4, acked: 4, unacked: 0, drops: 0 })
    t.like(counters(srv.server), { frames: 4, drops: 0, garbage: 0 })
    if (proto === 'native')
      t.deepEqual(
        srv.frames.map((f) => [f.seq, f.width, f.height, f.format]),
        frames.map((f) => [f.seq, 160, 120, 'jpeg']),
        'metadata survives',
      )
    else t.deepEqual(replies, Array(4).fill('get message!!!'))
  })
}

test('native over sockets: frames of several MB in many datagrams, a window of 3', async (t) => {
  const srv = await startServer(t)
  const rand = prng(9)
  const frames = [3_000_000, 5, 0, 200_000, 1400].map((n, i) => makeFrame(randomBytes(n, rand), { seq: i }))
  const { counters: c } = await send(frames, { port: srv.port, window: 3, whenFull: 'wait', mtu: 9000 })
  await until(() => srv.frames.length === frames.length)
  await srv.stop()
  // Compared with equals(): ava's deepEqual formats megabytes slowly.
  t.is(srv.frames.length, frames.length)
  srv.frames.forEach((f, i) => t.true(f.data.equals(frames[i]!.data), `frame ${i}`))
  t.like(c, { acked: 5, unacked: 0 })
})

test('ack=none yields to the event loop between frames: a receiver in this process keeps up, timers run', async (t) => {
  const srv = await startServer(t)
  let ticks = 0
  const timer = setInterval(() => ticks++, 1)
  t.teardown(() => clearInterval(timer))
  // A source that hands frames over synchronously for as long as the receiver has not seen 20 of them:
  // a sender that never yields would send all 3000 before the receiver could read one.
  let made = 0
  const source = new Readable({
    objectMode: true,
    read() {
      this.push(srv.frames.length >= 20 || made >= 3000 ? null : makeFrame(Buffer.alloc(6000, made), { seq: made++ }))
    },
  })
  const client = udpClient({ port: srv.port, ack: 'none' })
  await withTimeout(pipeline(source, client), 10_000, 'client')
  await until(() => srv.frames.length === made)
  await srv.stop()
  t.true(made < 3000, `sent ${made} frames before the receiver had 20`)
  t.deepEqual(
    srv.frames.map((f) => f.seq),
    Array.from({ length: made }, (_, i) => i),
    'none lost',
  )
  t.true(ticks > 0)
})

test('window full with whenFull=skip: the sender skips to the newest frame and counts the skipped ones', async (t) => {
  const peer = await rawSocket(t)
  const frames = [0, 1, 2, 3, 4].map((i) => makeFrame(syntheticJpeg(100 + i, i, prng(i)), { seq: i }))
  const client = udpClient({ port: peer.port, proto: 'whole', ackTimeout: 10_000 })
  const done = pipeline(fromItems(frames), client)
  // Frame 0 is out and unanswered; 1..3 were each replaced by a newer one.
  await until(() => counters(client).drops === 3 && peer.got.length === 1)
  await peer.send(Buffer.from('get message!!!'), peer.got[0]!.rinfo.port)
  await until(() => peer.got.length === 2)
  await peer.send(Buffer.from('get message!!!'), peer.got[1]!.rinfo.port)
  await withTimeout(done, 5000, 'client end')
  t.deepEqual(
    peer.got.map((g) => g.data),
    [frames[0]!.data, frames[4]!.data],
  )
  t.like(counters(client), { frames: 2, drops: 3, acked: 2, unacked: 0 })
})

test('no reply: ackTimeout frees the window, the sender never hangs', async (t) => {
  const peer = await rawSocket(t)
  const frames = [0, 1, 2].map((i) => makeFrame(syntheticJpeg(3000, i, prng(i)), { seq: i }))
  const r = await send(frames, { port: peer.port, proto: 'chunked', ackTimeout: 50, whenFull: 'wait' })
  t.like(r.counters, { frames: 3, unacked: 3, acked: 0 })
  t.regex(r.warnings[0]!, /no reply from 127\.0\.0\.1:\d+ within 50 ms for frame seq 0/)
  t.is(peer.got.length, 3 * 4, 'header and three chunks per image')
})

test('nobody listening: refused is counted, the sender finishes', async (t) => {
  const port = await freePort()
  const frames = [0, 1].map((i) => makeFrame(Buffer.alloc(100, i), { seq: i }))
  const r = await send(frames, { port, ackTimeout: 50, whenFull: 'wait' })
  // Linux reports the ICMP error on the socket, or as the result of the next send (that frame is not sent).
  t.is(r.counters.unacked! + r.counters.drops, 2)
  t.true(r.counters.refused! >= 1)
  t.regex(r.warnings.join('\n'), /nobody is listening at 127\.0\.0\.1:\d+/)
})

test('whole: a frame larger than one datagram is dropped and counted, with its size in the warning', async (t) => {
  const srv = await startServer(t, { proto: 'whole' })
  const small = await noiseJpeg(1)
  const big = padJpeg(small, 70_000)
  const r = await send([makeFrame(big, { seq: 1 }), makeFrame(small, { seq: 2 })], { port: srv.port, proto: 'whole', whenFull: 'wait' })
  await until(() => srv.frames.length === 1)
  await srv.stop()
  t.true(srv.frames[0]!.data.equals(small))
  t.like(r.counters, { frames: 1, oversize: 1, drops: 1 })
  t.regex(r.warnings[0]!, /frame seq 1 is 70000 bytes, more than one UDP datagram holds \(65507\); dropped/)
})

test('udp-server: garbage datagrams on every proto are counted and warned about; good frames still arrive', async (t) => {
  for (const proto of ['native', 'whole', 'chunked'] as const) {
    const srv = await startServer(t, { proto })
    const peer = await rawSocket(t)
    for (const junk of ['x', 'FPUD but not really', '\x00'.repeat(8), 'ÿØ not a jpeg ÿÙ'])
      await peer.send(Buffer.from(junk, 'latin1'), srv.port)
    await peer.send(Buffer.alloc(0), srv.port)
    const jpeg = await noiseJpeg(4)
    await send([makeFrame(jpeg)], { port: srv.port, proto })
    await until(() => srv.frames.length === 1)
    const c = counters(srv.server)
    await srv.stop()
    t.true(srv.frames[0]!.data.equals(jpeg), proto)
    t.true(c.garbage! + c.corrupt! >= 3, `${proto}: ${JSON.stringify(c)}`)
    t.true(srv.warnings.length >= 1, proto)
    t.is(peer.got.length, 0, `${proto}: garbage is never answered`)
  }
})

test('udp-server chunked over sockets: a second client interleaving datagram by datagram, a lost chunk, an empty datagram', async (t) => {
  // Synthetic JPEGs have the markers of one, not real entropy-coded data: verify=markers.
  const srv = await startServer(t, { proto: 'chunked', verify: 'markers' })
  const [p1, p2] = [await rawSocket(t), await rawSocket(t)]
  const rand = prng(11)
  const [a, b, c, d] = [
    syntheticJpeg(5000, 1, rand),
    syntheticJpeg(4096, 2, rand),
    syntheticJpeg(3000, 3, rand),
    syntheticJpeg(2000, 4, rand),
  ]
  const wa = seedChunks(a)
  const wb = seedChunks(b)
  for (let i = 0; i < Math.max(wa.length, wb.length); i++) {
    if (wa[i]) await p1.send(wa[i]!, srv.port)
    if (wb[i]) await p2.send(wb[i]!, srv.port)
  }
  await until(() => srv.frames.length === 2)
  const wc = seedChunks(c)
  wc.splice(1, 1)
  for (const x of [...wc, ...seedChunks(d)]) await p1.send(x, srv.port)
  await until(() => srv.frames.length === 3)
  await until(() => p1.got.length === 2 && p2.got.length === 1)
  await srv.stop()
  // b's datagrams end first (its last is the empty one), so b completes before a.
  t.deepEqual(
    srv.frames.map((f) => f.data),
    [b, a, d],
  )
  // c's last chunk came when a full one was due: c is given up, and that chunk is no header.
  t.like(counters(srv.server), { drops: 1, incomplete: 1, garbage: 1 })
  t.deepEqual(
    [...p1.got, ...p2.got].map((g) => g.data.toString()),
    Array(3).fill('get message!!!'),
    'each image answered to its own sender',
  )
})

test('udp-server native over sockets: reversed and repeated datagrams still make each frame once', async (t) => {
  const srv = await startServer(t)
  const peer = await rawSocket(t)
  const frame = makeFrame(randomBytes(5000, prng(12)), { seq: 3 })
  const wire = nativeDatagrams(frame, 77, 0, 600)
  for (const d of [...wire].reverse()) {
    await peer.send(d, srv.port)
    await peer.send(d, srv.port)
  }
  await until(() => srv.frames.length === 1 && peer.got.length === 1)
  await srv.stop()
  t.true(srv.frames[0]!.data.equals(frame.data))
  t.is(counters(srv.server).duplicates, wire.length - 1, 'the repeat of the completing datagram arrives after the frame is settled')
  t.is(counters(srv.server).late, 1)
  t.deepEqual(parseDatagram(peer.got[0]!.data), { kind: 'ack', stream: 77, id: 0 })
})

test('msgPort: JSON datagrams are answered `get the msg` and logged; bad JSON and bad UTF-8 are counted warnings', async (t) => {
  const msgPort = await freePort()
  const srv = await startServer(t, { proto: 'chunked', msgPort })
  const messages: unknown[] = []
  srv.server.on('message', (m: { value: unknown }) => messages.push(m.value))
  const peer = await rawSocket(t)
  await peer.send(Buffer.from('[0, 0, 0, 1'), msgPort)
  await peer.send(Buffer.from([0x5b, 0xff, 0x5d]), msgPort)
  await peer.send(Buffer.from('[0, 0, 0, 1]'), msgPort)
  await until(() => peer.got.length === 1)
  await srv.stop()
  t.is(peer.got[0]!.data.toString(), 'get the msg')
  t.deepEqual(messages, [[0, 0, 0, 1]])
  t.like(counters(srv.server), { messages: 1, badMessages: 2 })
  t.regex(srv.warnings.join('\n'), /ignored a message of 11 bytes from 127\.0\.0\.1:\d+/)
})

test("udp-client's message sender talks to frame-pipe's msgPort like seed 000c client 2", async (t) => {
  const msgPort = await freePort()
  // Synthetic JPEGs have the markers of one, not real entropy-coded data: verify=markers.
  const srv = await startServer(t, { proto: 'chunked', msgPort, verify: 'markers' })
  const frames = [1, 2, 3].map((i) => makeFrame(syntheticJpeg(2000, i, prng(i)), { seq: i }))
  const r = await send(frames, { port: srv.port, proto: 'chunked', msgPort, msgInterval: 5, whenFull: 'wait' }, (c) => c.msgReplies! >= 3)
  await until(() => srv.frames.length === 3)
  await srv.stop()
  t.true(r.counters.msgReplies! >= 3)
  t.is(r.counters.msgUnanswered, 0)
  t.true(counters(srv.server).messages! >= 3)
  t.like(r.counters, { frames: 3, acked: 3 })
})

test('udp-server answers when downstream takes a frame; when downstream stays behind, the oldest waiting frame is dropped (and still answered)', async (t) => {
  // Synthetic JPEGs have the markers of one, not real entropy-coded data: verify=markers.
  const server = udpServer({ port: 0, proto: 'whole', verify: 'markers' })
  t.teardown(() => {
    server.destroy()
  })
  await withTimeout(once(server, 'listening'), 5000, 'listening')
  const peer = await rawSocket(t)
  const images = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => syntheticJpeg(200 + i, i, prng(i)))
  for (const img of images) await peer.send(img, server.address()!.port)
  // Nobody reads: 2 frames sit in the readable buffer, 4 wait, 2 are dropped.
  await until(() => counters(server).overflow === 2)
  await until(() => peer.got.length === 4)
  t.is(counters(server).frames, 2, 'handed on so far')
  const got: Frame[] = []
  server.on('data', (f: Frame) => got.push(f))
  await until(() => got.length === 6 && peer.got.length === 8)
  server.stop()
  t.deepEqual(
    got.map((f) => f.data),
    [0, 1, 4, 5, 6, 7].map((i) => images[i]),
  )
  t.like(counters(server), { frames: 6, drops: 2, overflow: 2 })
})

test('udp-server stop(): images still in reassembly are dropped and counted, the stream ends', async (t) => {
  const srv = await startServer(t, { proto: 'chunked' })
  const peer = await rawSocket(t)
  const wire = seedChunks(syntheticJpeg(3000, 1, prng(1)))
  for (const d of wire.slice(0, 2)) await peer.send(d, srv.port)
  await until(() => counters(srv.server).datagrams === 2)
  await srv.stop()
  t.like(counters(srv.server), { frames: 0, drops: 1, incomplete: 1 })
  t.is(srv.server.address(), null)
})

test('options: message must be JSON; a port in use is one clear error', async (t) => {
  t.throws(() => udpClient({ message: '[0, 0' }), { code: 'ERR_INVALID_OPTION', message: /udp-client: message must be JSON/ })
  const srv = await startServer(t)
  const second = udpServer({ port: srv.port })
  const err = await t.throwsAsync(
    withTimeout(
      pipeline(
        second,
        new Writable({
          objectMode: true,
          write(_f, _e, cb) {
            cb()
          },
        }),
      ),
      5000,
      'second server',
    ),
  )
  t.regex(err!.message, /udp-server: port in use: 127\.0\.0\.1:\d+/)
  await srv.stop()
})
