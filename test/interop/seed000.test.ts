// Seed 000 (UDP image transfer, WIRE.md section 1) against the real Python
// programs in test/peers/: each original role talks to frame-pipe's udp-server
// or udp-client, frames checked byte for byte (sha256 of what the Python side
// sent or wrote), in both directions, for variants a, b and c.

import test, { type ExecutionContext } from 'ava'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { makeFrame, type Frame } from '../../src/core/frame.js'
import { tempDir } from '../helpers/index.js'
import { NO_PYTHON_REASON, pythonWithOpenCV, startPeer, type PeerProcess } from '../helpers/python.js'
import { counters, freePort, next1024, padJpeg, pictureJpeg, picturePng, send, sha256, startServer, until } from '../helpers/udp.js'

const python = pythonWithOpenCV()
if (!python) console.warn(`skipping seed 000 peer tests: ${NO_PYTHON_REASON}`)
const peerTest = python ? test : test.skip

/** Python starts slowly on a loaded machine (importing cv2 alone can take a second or more). */
const PEER_MS = 20_000

async function scratch(t: ExecutionContext): Promise<string> {
  const { dir, cleanup } = await tempDir('frame-pipe-seed000-')
  t.teardown(cleanup)
  return dir
}

/** What a Python client printed for each image it sent: `sent <length> <sha256>`. */
function sentImages(peer: PeerProcess): Array<{ length: number; sha: string }> {
  return [...peer.output().matchAll(/^sent (\d+) ([0-9a-f]{64})$/gm)].map((m) => ({ length: Number(m[1]), sha: m[2]! }))
}

/** The JPEGs a Python server wrote, in order. */
async function written(dir: string): Promise<Buffer[]> {
  const names = (await readdir(dir)).filter((n) => /^frame-\d{6}\.jpg$/.test(n)).sort()
  return Promise.all(names.map((n) => readFile(join(dir, n))))
}

/** A PNG whose cv2.imencode('.jpg') length is a multiple of 1024 (searched by the helper script, ~1 s). */
async function pad1024Png(t: ExecutionContext, dir: string, seed: number): Promise<{ path: string; length: number }> {
  const path = join(dir, `pad1024-${seed}.png`)
  const maker = startPeer(t, 'seed000_image.py', [path, String(seed), '--multiple-of', '1024'])
  const m = await maker.waitFor(/^image \S+ (\d+)$/m, PEER_MS)
  t.is(await maker.exited(PEER_MS), 0)
  return { path, length: Number(m[1]) }
}

async function jpegFrames(seeds: number[]): Promise<Frame[]> {
  const jpegs = await Promise.all(seeds.map((s) => pictureJpeg(s)))
  // An image of a multiple of 1024 bytes by chance would trip the 000c server (see its own test).
  return jpegs.map((j, i) => makeFrame(j.length % 1024 === 0 ? padJpeg(j, j.length + 4) : j, { seq: i }))
}

// ---------------------------------------------------------------- 000a: one datagram per image

peerTest('000a: the Python client sends one image to frame-pipe udp-server proto=whole and prints the reply', async (t) => {
  const srv = await startServer(t, { proto: 'whole' })
  const dir = await scratch(t)
  const png = await picturePng(1, join(dir, 'one.png'))
  const client = startPeer(t, 'seed000a_client.py', ['127.0.0.1', String(srv.port), png])
  t.is(await client.exited(PEER_MS), 0, client.output())
  t.regex(client.output(), /^get message!!!$/m)
  await until(() => srv.frames.length === 1)
  await srv.stop()
  const [sent] = sentImages(client)
  t.is(srv.frames[0]!.data.length, sent!.length)
  t.is(sha256(srv.frames[0]!.data), sent!.sha)
  t.is(srv.frames[0]!.format, 'jpeg')
})

peerTest('000a: frame-pipe udp-client proto=whole sends to the Python server, which writes each image byte for byte', async (t) => {
  const dir = await scratch(t)
  const server = startPeer(t, 'seed000a_server.py', ['127.0.0.1', '0', dir])
  const port = Number((await server.waitFor(/Bind UDP on (\d+)/, PEER_MS))[1])
  const frames = await jpegFrames([1, 2, 3])
  const r = await send(frames, { port, proto: 'whole', whenFull: 'wait', ackTimeout: 5000 })
  t.like(r.counters, { frames: 3, acked: 3, unacked: 0 })
  t.deepEqual(r.replies, Array(3).fill('get message!!!'))
  t.deepEqual(
    (await written(dir)).map(sha256),
    frames.map((f) => sha256(f.data)),
  )
})

// ---------------------------------------------------------------- 000b: header + 1024-byte chunks

peerTest(
  '000b: the Python client sends to frame-pipe udp-server proto=chunked, an image of a multiple of 1024 bytes (empty datagram) included',
  async (t) => {
    const srv = await startServer(t, { proto: 'chunked' })
    const dir = await scratch(t)
    const pad = await pad1024Png(t, dir, 1)
    t.is(pad.length % 1024, 0)
    const plain = await picturePng(2, join(dir, 'plain.png'))
    const clients: PeerProcess[] = []
    for (const path of [plain, pad.path]) {
      const client = startPeer(t, 'seed000b_client.py', ['127.0.0.1', String(srv.port), path])
      t.is(await client.exited(PEER_MS), 0, client.output())
      t.regex(client.output(), /^get message!!!$/m)
      clients.push(client)
    }
    await srv.stop()
    const sent = clients.flatMap(sentImages)
    t.is(sent[1]!.length, pad.length)
    t.deepEqual(
      srv.frames.map((f) => sha256(f.data)),
      sent.map((s) => s.sha),
    )
    t.like(counters(srv.server), { frames: 2, drops: 0, garbage: 0 })
  },
)

peerTest(
  '000b: frame-pipe udp-client proto=chunked sends to the Python server, an image of a multiple of 1024 bytes included',
  async (t) => {
    const dir = await scratch(t)
    const server = startPeer(t, 'seed000b_server.py', ['127.0.0.1', '0', dir])
    const port = Number((await server.waitFor(/Bind UDP on (\d+)/, PEER_MS))[1])
    const frames = await jpegFrames([4, 5])
    frames.splice(1, 0, makeFrame(padJpeg(frames[0]!.data, next1024(frames[0]!.data)), { seq: 9 }))
    t.is(frames[1]!.data.length % 1024, 0)
    const r = await send(frames, { port, proto: 'chunked', whenFull: 'wait', ackTimeout: 5000 })
    t.like(r.counters, { frames: 3, acked: 3, unacked: 0 })
    t.deepEqual(
      (await written(dir)).map(sha256),
      frames.map((f) => sha256(f.data)),
    )
    t.regex(server.output(), /^received \d+$/m)
  },
)

// ---------------------------------------------------------------- 000c: camera client, JSON client, two-port server

peerTest("000c: the camera client's loop and the JSON client against frame-pipe udp-server (chunked, msgPort)", async (t) => {
  const msgPort = await freePort()
  const srv = await startServer(t, { proto: 'chunked', msgPort })
  const values: unknown[] = []
  srv.server.on('message', (m: { value: unknown }) => values.push(m.value))
  const dir = await scratch(t)
  const pngs = await Promise.all([6, 7, 8, 9].map((s) => picturePng(s, join(dir, `cam-${s}.png`))))
  const camera = startPeer(t, 'seed000c_client1.py', ['127.0.0.1', String(srv.port), ...pngs])
  const json = startPeer(t, 'seed000c_client2.py', ['127.0.0.1', String(msgPort)])
  t.is(await camera.exited(PEER_MS), 0, camera.output())
  await json.waitFor(/(get the msg\s+){3}/, PEER_MS)
  await srv.stop()
  t.is((camera.output().match(/^get message!!!$/gm) ?? []).length, 4, 'one reply per frame')
  t.deepEqual(
    srv.frames.map((f) => sha256(f.data)),
    sentImages(camera).map((s) => s.sha),
  )
  t.true(values.length >= 3)
  t.deepEqual(values[0], [0, 0, 0, 1])
  t.is(counters(srv.server).badMessages, 0)
})

peerTest('000c: frame-pipe udp-client sends frames and JSON messages to the Python two-port server', async (t) => {
  const dir = await scratch(t)
  const server = startPeer(t, 'seed000c_server.py', ['127.0.0.1', '0', '0', dir])
  const m = await server.waitFor(/^ports (\d+) (\d+)$/m, PEER_MS)
  const frames = await jpegFrames([10, 11, 12, 13])
  const r = await send(
    frames,
    {
      port: Number(m[1]),
      proto: 'chunked',
      whenFull: 'wait',
      ackTimeout: 5000,
      msgPort: Number(m[2]),
      msgInterval: 10,
    },
    (c) => c.msgReplies! >= 3,
  )
  t.like(r.counters, { frames: 4, acked: 4, unacked: 0, msgUnanswered: 0 })
  t.deepEqual(
    (await written(dir)).map(sha256),
    frames.map((f) => sha256(f.data)),
  )
  await server.waitFor(/(^\[0, 0, 0, 1\]$[\s\S]*){3}/m, PEER_MS)
})

peerTest(
  '000c: the original server swallows the image after one of a multiple of 1024 bytes (WIRE fragility 5); frame-pipe does not, and its sender times out instead of hanging',
  async (t) => {
    const dir = await scratch(t)
    const server = startPeer(t, 'seed000c_server.py', ['127.0.0.1', '0', '0', dir])
    const port = Number((await server.waitFor(/^ports (\d+) (\d+)$/m, PEER_MS))[1])
    const [first, second] = await jpegFrames([14, 15])
    const frames = [makeFrame(padJpeg(first!.data, next1024(first!.data)), { seq: 0 }), second!]
    const r = await send(frames, { port, proto: 'chunked', whenFull: 'wait', ackTimeout: 1500 })
    t.like(r.counters, { frames: 2, acked: 1, unacked: 1 })
    await server.waitFor(/imdecode failed/, PEER_MS)
    t.is((await written(dir)).length, 1, 'the original kept only the first image')
    // The same two images into frame-pipe's receiver: both arrive.
    const srv = await startServer(t, { proto: 'chunked' })
    const again = await send(frames, { port: srv.port, proto: 'chunked', whenFull: 'wait' })
    t.like(again.counters, { acked: 2, unacked: 0 })
    await srv.stop()
    t.deepEqual(
      srv.frames.map((f) => sha256(f.data)),
      frames.map((f) => sha256(f.data)),
    )
  },
)
