// Attacks on udp-server (issue 10, items 5 and 7): forged frames whose
// datagrams would pin memory far beyond maxFrameBytes, and the seed wire
// (proto=chunked) through a relay that drops, repeats and reorders datagrams.

import test from 'ava'
import { createHash } from 'node:crypto'
import dgram, { type RemoteInfo } from 'node:dgram'
import { once } from 'node:events'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import sharp from 'sharp'
import { makeFrame, type Frame } from '../../src/core/frame.js'
import { stageInfo, type Counters } from '../../src/core/stage.js'
import { DATA_HEADER_BYTES, UDP_MAGIC } from '../../src/net/udp/native.js'
import { udpClient } from '../../src/sinks/udp-client.js'
import { udpServer } from '../../src/sources/udp-server.js'
import { prng, withTimeout } from '../helpers/index.js'
import { figure, procStats, startCli, until } from './helpers.js'

const counters = (s: object): Counters => stageInfo(s as never)!.counters

/** A forged data datagram: frame `id` of `total` bytes in `count` chunks, chunk `index` of `payload` bytes, header `headerLength` long. */
function forged(id: number, index: number, count: number, total: number, payload: number, headerLength = DATA_HEADER_BYTES): Buffer {
  const d = Buffer.alloc(headerLength + payload, 0x41)
  d.writeUInt32BE(UDP_MAGIC, 0)
  d[4] = 1
  d[5] = 1
  d.writeUInt16BE(headerLength, 6)
  d.writeUInt32BE(7, 8)
  d.writeUInt32BE(id, 12)
  d.writeUInt16BE(index, 16)
  d.writeUInt16BE(count, 18)
  d.writeUInt32BE(total, 20)
  d.writeDoubleBE(Date.now(), 24)
  return d
}

async function send(socket: dgram.Socket, port: number, datagrams: Iterable<Buffer>): Promise<void> {
  let n = 0
  for (const d of datagrams) {
    await new Promise<void>((resolve, reject) => socket.send(d, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())))
    // Let the receiver keep up: the kernel drops what its buffer cannot hold, and these must arrive.
    if (++n % 64 === 0) await new Promise((r) => setTimeout(r, 1))
  }
}

test('CLI udp-server maxFrameBytes=1MiB: forged 8000-chunk frames, with padded headers or not, keep RSS near its start; a good sender is served', async (t) => {
  const cli = startCli(t, 'udp-server port=0 maxFrameBytes=1MiB ! null')
  const port = await cli.port('udp-server')
  const attacker = dgram.createSocket('udp4')
  t.teardown(() => attacker.close())
  const before = procStats(cli.pid)
  // The attack: every chunk of one frame behind a header padded to fill the datagram (60 000 bytes each).
  await send(
    attacker,
    port,
    (function* () {
      for (let i = 0; i < 8000; i++) yield forged(1, i, 8000, 8000 * 131, 131, 60_000)
    })(),
  )
  // The same with honest 52-byte headers, on 16 frame ids, each one chunk short of complete.
  await send(
    attacker,
    port,
    (function* () {
      for (let id = 2; id < 18; id++) for (let i = 0; i < 7999; i++) yield forged(id, i, 8000, 8000 * 131, 131)
    })(),
  )
  await until(() => (cli.counters(0)?.datagrams ?? 0) >= 8000, 20_000, 'datagrams received')
  const during = procStats(cli.pid)
  // A good sender: 20 native frames of 100 KB.
  const frames = Array.from({ length: 20 }, (_, i) => makeFrame(Buffer.alloc(100_000, i), { seq: i }))
  await pipeline(Readable.from(frames), udpClient({ port, whenFull: 'wait' }))
  await until(() => (cli.counters(1)?.frames ?? 0) === 20, 10_000, 'the good frames')
  const after = procStats(cli.pid)
  const c = cli.counters(0)!
  t.true(cli.alive())
  t.true(during.rssKiB - before.rssKiB < 64 * 1024, `RSS ${before.rssKiB} → ${during.rssKiB} KiB`)
  t.true(c.garbage! >= 1, 'padded headers are refused')
  await cli.stop()
  figure(t, '5', {
    datagrams: c.datagrams,
    garbage: c.garbage,
    evicted: c.evicted,
    goodFrames: `${cli.counters(1)?.frames}/20`,
    rssKiB: `${before.rssKiB} → ${during.rssKiB} → ${after.rssKiB}`,
    fds: `${before.fds} → ${after.fds}`,
  })
})

// ---------------------------------------------------------------- proto=chunked through a bad network

/** `n` distinct camera-like JPEGs (noise on gradients) of about 10 KB: 10 datagrams each on the seed wire. */
async function camera(n: number): Promise<Buffer[]> {
  const out: Buffer[] = []
  for (let k = 0; k < n; k++) {
    const rand = prng(k + 1)
    const w = 160
    const h = 120
    const px = Buffer.alloc(w * h * 3)
    for (let i = 0; i < px.length; i++) px[i] = (((i / 3) % w) * 0.6 + k * 9 + rand() * 48) & 0xff
    out.push(
      await sharp(px, { raw: { width: w, height: h, channels: 3 } })
        .jpeg({ quality: 85 })
        .toBuffer(),
    )
  }
  return out
}

/**
 * A UDP relay between a client and a server that drops, repeats and
 * reorders the client's datagrams (seeded): `drop`, `dup` and `reorder` are
 * probabilities per datagram. Replies go back untouched.
 */
async function relay(t: { teardown(fn: () => void): void }, serverPort: number, drop: number, dup: number, reorder: number) {
  const rand = prng(42)
  const socket = dgram.createSocket('udp4')
  t.teardown(() => socket.close())
  let client: RemoteInfo | undefined
  let held: Buffer | undefined
  const stats = { datagrams: 0, dropped: 0, duplicated: 0, reordered: 0 }
  const forward = (d: Buffer) => socket.send(d, serverPort, '127.0.0.1')
  socket.on('message', (d, from) => {
    if (from.port === serverPort) {
      if (client) socket.send(d, client.port, client.address)
      return
    }
    client = from
    stats.datagrams++
    const r = rand()
    if (r < drop) {
      stats.dropped++
      return
    }
    if (r < drop + reorder && !held) {
      // Sent after the next one.
      stats.reordered++
      held = d
      return
    }
    forward(d)
    if (held) {
      forward(held)
      held = undefined
    }
    if (rand() < dup) {
      stats.duplicated++
      forward(d)
    }
  })
  socket.bind(0, '127.0.0.1')
  await once(socket, 'listening')
  return { port: socket.address().port, stats }
}

for (const verify of ['entropy', 'markers'] as const) {
  test(`proto=chunked through a relay dropping 5%, repeating 2%, reordering 5%: verify=${verify}`, async (t) => {
    const images = await camera(20)
    const sent = new Set(images.map((b) => createHash('sha256').update(b).digest('hex')))
    const server = udpServer({ port: 0, proto: 'chunked', verify, timeout: 40 })
    const got: Frame[] = []
    const done = pipeline(
      server,
      new Writable({
        objectMode: true,
        write(f: Frame, _e, cb) {
          got.push(f)
          cb()
        },
      }),
    )
    t.teardown(() => server.destroy())
    await withTimeout(once(server, 'listening'), 5000, 'listening')
    const r = await relay(t, server.address()!.port, 0.05, 0.02, 0.05)
    const frames = Array.from({ length: 200 }, (_, i) => makeFrame(images[i % images.length]!, { seq: i }))
    await withTimeout(
      pipeline(Readable.from(frames), udpClient({ port: r.port, proto: 'chunked', ackTimeout: 40, whenFull: 'wait' })),
      120_000,
      'sending',
    )
    server.stop()
    await withTimeout(done, 5000, 'server end')
    const corrupt = got.filter((f) => !sent.has(createHash('sha256').update(f.data).digest('hex'))).length
    const c = counters(server)
    figure(t, `7-${verify}`, {
      sent: frames.length,
      delivered: got.length,
      corruptDelivered: corrupt,
      corruptPercent: Number(((100 * corrupt) / Math.max(1, got.length)).toFixed(2)),
      droppedAsCorrupt: c.corrupt,
      incomplete: c.incomplete,
      relay: r.stats,
    })
    t.true(got.length >= 50, `${got.length} delivered`)
    if (verify === 'entropy') t.true(corrupt <= Math.ceil(got.length / 100), `${corrupt} corrupt of ${got.length} delivered`)
    else t.pass()
  })
}
