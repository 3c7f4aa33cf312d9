// Seed 002: one image over TCP as ASCII length, a 1 s pause, then the JPEG.
// frame-pipe as the sender for the original receiver and as the receiver of
// the original sender (byte for byte), and the failure modes of WIRE.md §3
// that reach the frame-pipe side.

import test, { type ExecutionContext } from 'ava'
import { once } from 'node:events'
import net, { type Socket } from 'node:net'
import { readFile } from 'node:fs/promises'
import { FramePipeError } from '../../src/core/errors.js'
import type { Frame } from '../../src/core/frame.js'
import { pipeline } from '../../src/core/pipeline.js'
import { tcpClient as tcpClientSink } from '../../src/sinks/tcp-client.js'
import { files as filesSource } from '../../src/sources/files.js'
import { tcpServer as tcpServerSource } from '../../src/sources/tcp-server.js'
import type { TcpServerSource } from '../../src/net/tcp/server-source.js'
import { prefix } from '../../src/transforms/prefix.js'
import { unprefix } from '../../src/transforms/unprefix.js'
import { stageInfo } from '../../src/core/stage.js'
import { fromItems, withTimeout } from '../helpers/index.js'
import { NO_PYTHON_REASON, pythonWithOpenCV, startPeer } from '../helpers/python.js'
import { jpegFrames, keep, rawClient, rawServer, readFiles, tempDirFor, writeJpegs } from '../helpers/seeds.js'

const python = pythonWithOpenCV()
if (!python) console.warn(`skipping seed 002 peer tests: ${NO_PYTHON_REASON}`)
const peerTest = python ? test : test.skip

/** tcp-server once ! unprefix header=ascii, collecting frames and warnings. */
async function receiver(
  t: ExecutionContext,
  onError: 'drop' | 'fail' = 'drop',
): Promise<{ port: number; done: Promise<Frame[]>; warnings: Error[]; cutter: ReturnType<typeof unprefix> }> {
  const source: TcpServerSource = tcpServerSource({ port: 0, once: true })
  t.teardown(() => {
    source.destroy()
  })
  const cutter = unprefix({ header: 'ascii', onError })
  const warnings: Error[] = []
  cutter.on('warning', (w: Error) => warnings.push(w))
  const frames: Frame[] = []
  const done = pipeline(source, cutter, keep(frames)).then(() => frames)
  if (!source.address()) await withTimeout(once(source, 'listening'), 5000, 'listening')
  return { port: source.address()!.port, done, warnings, cutter }
}

// ---------------------------------------------------------------- with the original programs

peerTest('frame-pipe sender (files ! prefix header=ascii ! tcp-client pause=1s) → the original receiver, byte for byte', async (t) => {
  const dir = await tempDirFor(t)
  const [shot] = await writeJpegs(dir, await jpegFrames(1))
  const out = await tempDirFor(t)
  const peer = startPeer(t, 'seed002_receiver.py', ['--port', '0', '--out', out])
  const port = Number((await peer.waitFor(/listening on (\d+)/, 15_000))[1])
  const sink = tcpClientSink({ port, pause: 1000 })
  await withTimeout(pipeline(filesSource({ path: shot! }), prefix({ header: 'ascii' }), sink), 10_000, 'sender')
  await peer.waitFor(/received \d+ decodable/, 5000)
  const [got] = await readFiles(out, 'frame-')
  t.true(got!.equals(await readFile(shot!)))
  t.is(stageInfo(sink)!.counters.drops, 0)
})

peerTest('the original sender → frame-pipe receiver (tcp-server once ! unprefix header=ascii), two images byte for byte', async (t) => {
  const dir = await tempDirFor(t)
  const frames = await jpegFrames(2)
  const paths = await writeJpegs(dir, frames)
  const r = await receiver(t)
  startPeer(t, 'seed002_sender.py', ['--port', String(r.port), ...paths])
  const got = await withTimeout(r.done, 10_000, 'receiver')
  t.is(got.length, 2)
  got.forEach((f, i) => {
    t.true(f.data.equals(frames[i]!.data), `image ${i}`)
    t.is(f.format, 'jpeg')
  })
  t.deepEqual(r.warnings, [])
})

peerTest('without the pause the original receiver fails: the pause is the only separator it understands', async (t) => {
  const [frame] = await jpegFrames(1)
  const out = await tempDirFor(t)
  const peer = startPeer(t, 'seed002_receiver.py', ['--port', '0', '--out', out])
  const port = Number((await peer.waitFor(/listening on (\d+)/, 15_000))[1])
  // Whatever the sink reports about the receiver dying, it settles.
  const sent = pipeline(
    fromItems([frame!]),
    prefix({ header: 'ascii' }),
    tcpClientSink({ port, pause: 0, reconnect: false, linger: 500 }),
  ).then(
    () => undefined,
    (e: unknown) => e,
  )
  t.not(await peer.exited(10_000), 0)
  t.regex(peer.output(), /UnicodeDecodeError|ValueError/)
  await withTimeout(sent, 5000, 'sender settles')
})

// ---------------------------------------------------------------- frame-pipe to frame-pipe

test("without a pause frame-pipe's receiver splits digits and image arriving in the same read", async (t) => {
  const frames = await jpegFrames(3)
  const r = await receiver(t)
  await withTimeout(pipeline(fromItems(frames), prefix({ header: 'ascii' }), tcpClientSink({ port: r.port })), 5000, 'sender')
  const got = await withTimeout(r.done, 5000, 'receiver')
  t.deepEqual(
    got.map((f) => f.data.toString('hex')),
    frames.map((f) => f.data.toString('hex')),
  )
})

/** tcp-client sink writes, by server port (one spy for all tests: they run side by side). */
const writesTo = new Map<number, Array<{ at: number; bytes: number; text: string }>>()
const socketWrite = net.Socket.prototype.write
net.Socket.prototype.write = function (this: Socket, ...args: Parameters<Socket['write']>) {
  const chunk = Buffer.from(args[0] as string | Uint8Array)
  writesTo.get(this.remotePort ?? -1)?.push({ at: performance.now(), bytes: chunk.length, text: chunk.subarray(0, 12).toString('latin1') })
  return socketWrite.apply(this, args)
} as Socket['write']
test.after.always(() => {
  net.Socket.prototype.write = socketWrite
})

test('pause: the payload leaves `pause` after its digits; the next packet waits (backpressure, no drops)', async (t) => {
  const frames = await jpegFrames(3)
  const chunks: Buffer[] = []
  const { port } = await rawServer(t, (s) => {
    s.on('data', (d: Buffer) => chunks.push(d))
  })
  const writes: Array<{ at: number; bytes: number; text: string }> = []
  writesTo.set(port, writes)
  const sink = tcpClientSink({ port, pause: 150, maxQueue: 1 })
  const started = performance.now()
  await withTimeout(pipeline(fromItems(frames), prefix({ header: 'ascii' }), sink), 10_000, 'sender')
  t.true(performance.now() - started >= 3 * 149, 'three pauses, one after the other')
  t.deepEqual(
    writes.map((w) => w.bytes),
    frames.flatMap((f) => [String(f.data.length).length, f.data.length]),
  )
  t.deepEqual(
    writes.filter((_, i) => i % 2 === 0).map((w) => w.text),
    frames.map((f) => String(f.data.length)),
  )
  for (let i = 1; i < writes.length; i += 2) t.true(writes[i]!.at - writes[i - 1]!.at >= 149, `pause before payload ${(i - 1) / 2}`)
  t.is(stageInfo(sink)!.counters.drops, 0, 'maxQueue 1 and still nothing dropped: the source was held')
  t.true(Buffer.concat(chunks).equals(Buffer.concat(frames.flatMap((f) => [Buffer.from(String(f.data.length)), f.data]))))
})

// ---------------------------------------------------------------- failure modes on the receiving side

test('short reads: digits and image written one byte at a time', async (t) => {
  const [frame] = await jpegFrames(1)
  const bytes = Buffer.concat([Buffer.from(String(frame!.data.length)), frame!.data])
  const r = await receiver(t)
  const c = await rawClient(t, r.port)
  let i = 0
  await new Promise<void>((resolve) => {
    const next = (): void => {
      if (i < 40) c.write(bytes.subarray(i, ++i), () => setImmediate(next))
      else resolve()
    }
    next()
  })
  c.end(bytes.subarray(i))
  const got = await withTimeout(r.done, 5000)
  t.is(got.length, 1)
  t.true(got[0]!.data.equals(frame!.data))
})

test('a sender vanishing mid-image costs that image (dropped, counted, warned); the stream ends cleanly', async (t) => {
  const r = await receiver(t)
  const c = await rawClient(t, r.port)
  c.write(Buffer.concat([Buffer.from('100'), Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(47)]))
  await new Promise((resolve) => setTimeout(resolve, 50))
  c.destroy()
  t.deepEqual(await withTimeout(r.done, 5000), [])
  t.is(stageInfo(r.cutter)!.counters.drops, 1)
  t.is(r.warnings.length, 1)
  t.regex(r.warnings[0]!.message, /^unprefix: peer 127\.0\.0\.1:\d+ left mid-frame, 53 of 103 bytes dropped$/)
})

/** The error a receiver that fails on a fault (onError=fail; by default only the sender is cut off) gives for `bytes`. */
async function receiverError(t: ExecutionContext, bytes: Buffer): Promise<FramePipeError> {
  const r = await receiver(t, 'fail')
  const c = await rawClient(t, r.port)
  c.end(bytes)
  const err = await t.throwsAsync(withTimeout(r.done, 5000))
  t.true(err instanceof FramePipeError, String(err))
  return err as FramePipeError
}

test('garbage: an image without its length, a length of 11 digits, a huge length', async (t) => {
  const [frame] = await jpegFrames(1)
  const noDigits = await receiverError(t, frame!.data)
  const start = [...frame!.data.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ')
  t.like(noDigits, { code: 'ERR_BAD_HEADER', message: `unprefix: ascii header must start with a decimal digit, found ${start}` })
  const long = await receiverError(t, Buffer.from('12345678901'))
  t.like(long, { code: 'ERR_BAD_HEADER', message: 'unprefix: ascii header has more than 10 digits (12345678901…)' })
  const huge = await receiverError(t, Buffer.concat([Buffer.from('9999999999'), frame!.data]))
  t.like(huge, {
    code: 'ERR_FRAME_TOO_LARGE',
    message: 'unprefix: header announces a frame of 9999999999 bytes, more than maxFrameBytes (67108864)',
  })
})

test('EOF mid-image from a sender that closes cleanly: the image is dropped at the Boundary, the missing bytes named', async (t) => {
  const r = await receiver(t)
  const c = await rawClient(t, r.port)
  c.end(Buffer.concat([Buffer.from('5000'), Buffer.from([0xff, 0xd8, 0xff])]))
  t.deepEqual(await withTimeout(r.done, 5000), [])
  t.regex(r.warnings[0]!.message, /^unprefix: peer 127\.0\.0\.1:\d+ left mid-frame, 7 of 5004 bytes dropped$/)
})
