// Seed 001: the TCP camera stream with the `ii` header. frame-pipe as the
// server for the original client, frame-pipe as the client of the original
// server (byte for byte), and the failure modes of WIRE.md §2 that reach the
// frame-pipe side.

import test, { type ExecutionContext } from 'ava'
import { once } from 'node:events'
import net, { type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { FramePipeError } from '../../src/core/errors.js'
import { makeFrame, type Frame } from '../../src/core/frame.js'
import type { ClientEvent } from '../../src/net/socket.js'
import { pipeline, stopSource } from '../../src/core/pipeline.js'
import { tcpServer as tcpServerSink } from '../../src/sinks/tcp-server.js'
import type { TcpServerSink } from '../../src/net/tcp/server-sink.js'
import { tcpClient as tcpClientSource } from '../../src/sources/tcp-client.js'
import { prefix } from '../../src/transforms/prefix.js'
import { stageInfo } from '../../src/core/stage.js'
import { unprefix, type UnprefixOptions } from '../../src/transforms/unprefix.js'
import { fromItems, withTimeout } from '../helpers/index.js'
import { NO_PYTHON_REASON, pythonWithOpenCV, startPeer } from '../helpers/python.js'
import { jpegFrames, keep, rawClient, rawServer, readFiles, tempDirFor, until, writeJpegs } from '../helpers/seeds.js'

const python = pythonWithOpenCV()
if (!python) console.warn(`skipping seed 001 peer tests: ${NO_PYTHON_REASON}`)
const peerTest = python ? test : test.skip

const GREETING = 'hello Apple Cai!'

function ii(length: number, second = length): Buffer {
  const h = Buffer.alloc(8)
  h.writeInt32LE(length, 0)
  h.writeInt32LE(second, 4)
  return h
}

async function listening(sink: TcpServerSink): Promise<number> {
  if (!sink.address()) await withTimeout(once(sink, 'listening'), 5000, 'listening')
  return sink.address()!.port
}

/** The frames of a seed 001 stream read by tcp-client ! unprefix: the first `n`, then stop(). */
async function readFrames(
  port: number,
  n: number,
  options: UnprefixOptions = { header: 'ii' },
): Promise<{ frames: Frame[]; infos: string[] }> {
  const source = tcpClientSource({ port, greeting: GREETING })
  const cutter = unprefix(options)
  const infos: string[] = []
  cutter.on('info', (e: { message: string }) => infos.push(e.message))
  const frames: Frame[] = []
  await withTimeout(
    pipeline(
      source,
      cutter,
      new Writable({
        objectMode: true,
        write(f: Frame, _e, cb) {
          frames.push(f)
          if (frames.length === n) stopSource(source)
          cb()
        },
      }),
    ),
    15_000,
    'frame-pipe client',
  )
  return { frames, infos }
}

async function originalServer(t: ExecutionContext): Promise<{ port: number; sentDir: string }> {
  const dir = await tempDirFor(t)
  const files = await writeJpegs(dir, await jpegFrames(3))
  const sentDir = await tempDirFor(t)
  const peer = startPeer(t, 'seed001_server.py', ['--port', '0', '--fps', '30', '--sent', sentDir, ...files])
  const m = await peer.waitFor(/listening on (\d+)/, 15_000)
  return { port: Number(m[1]), sentDir }
}

// ---------------------------------------------------------------- with the original programs

peerTest('frame-pipe server → the original client: every frame byte for byte, the greeting tolerated', async (t) => {
  const frames = await jpegFrames(5)
  const sink = tcpServerSink({ port: 0, wait: 1, linger: 1000 })
  const packets: Buffer[][] = []
  const events: ClientEvent[] = []
  sink.on('client', (e: ClientEvent) => events.push(e))
  const done = pipeline(fromItems(frames), prefix({ header: 'ii' }), sink, keep(packets))
  const port = await listening(sink)
  const out = await tempDirFor(t)
  const peer = startPeer(t, 'seed001_client.py', ['--port', String(port), '--out', out])
  await withTimeout(done, 15_000, 'frame-pipe server')
  await peer.waitFor(/(received \d+\s+){5}/, 10_000)
  const got = await readFiles(out, 'frame-')
  t.is(got.length, 5)
  got.forEach((g, i) => t.true(g.equals(frames[i]!.data), `frame ${i}`))
  t.deepEqual(
    packets.map((p) => p[0]!.toString('hex')),
    frames.map((f) => ii(f.data.length).toString('hex')),
  )
  t.false(peer.output().includes('imshow would fail'), 'no frame reached the client in pieces')
  t.is(events.filter((e) => e.event === 'leave' && e.reason !== 'end' && e.reason !== 'closed').length, 0)
})

peerTest('the original server → frame-pipe client (greeting, unprefix header=ii): frames byte for byte', async (t) => {
  const { port, sentDir } = await originalServer(t)
  const { frames } = await readFrames(port, 5)
  const sent = await readFiles(sentDir, 'sent-')
  t.is(frames.length, 5)
  frames.forEach((f, i) => {
    t.true(f.data.equals(sent[i]!), `frame ${i}`)
    t.is(f.format, 'jpeg')
  })
})

test('a client vanishing mid-frame disturbs neither the server nor the next client', async (t) => {
  // Frames of 200 KB span several reads (64 KiB at most): some read ends inside a frame.
  const big = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), randomBytes(200_000)])
  let n = 0
  const source = new Readable({
    objectMode: true,
    highWaterMark: 1,
    read() {
      setTimeout(() => this.push(makeFrame(big, { seq: n++ })), 20)
    },
  })
  const sink = tcpServerSink({ port: 0, linger: 200 })
  const events: ClientEvent[] = []
  sink.on('client', (e: ClientEvent) => events.push(e))
  const done = pipeline(source, prefix({ header: 'ii' }), sink).then(
    () => undefined,
    (e: unknown) => e,
  )
  t.teardown(() => {
    source.destroy()
  })
  const port = await listening(sink)
  const first = await rawClient(t, port)
  first.write(GREETING)
  // Leave as soon as a read ends inside a frame.
  await withTimeout(
    new Promise<void>((resolve) => {
      let received = Buffer.alloc(0)
      let boundary = 0
      first.on('data', (d: Buffer) => {
        received = Buffer.concat([received, d])
        while (received.length >= boundary + 8 && received.length >= boundary + 8 + received.readInt32LE(boundary))
          boundary += 8 + received.readInt32LE(boundary)
        if (received.length !== boundary) {
          first.destroy()
          resolve()
        }
      })
    }),
    5000,
    'a read ending mid-frame',
  )
  await until(() => events.some((e) => e.event === 'leave'), 'the client left')
  const next = await rawClient(t, port)
  next.write(GREETING)
  const cutter = unprefix({ header: 'ii' })
  const frames: Frame[] = []
  cutter.on('data', (f: Frame) => frames.push(f))
  next.pipe(cutter)
  await until(() => frames.length >= 3, 'the next client gets whole frames')
  t.true(frames.every((f) => f.data.equals(big)))
  t.is(stageInfo(sink)!.counters.clients, 1)
  stopSource(source)
  t.is(await withTimeout(done, 5000, 'server end'), undefined)
})

// ---------------------------------------------------------------- frame-pipe side only

/** Writes handed to the kernel by server sockets, by server port: 'writev' with its chunk sizes, or 'write'. */
const writesFrom = new Map<number, number[][]>()
const proto = net.Socket.prototype as unknown as {
  _writev(this: Socket, chunks: Array<{ chunk: Buffer }>, cb: () => void): void
  _write(this: Socket, chunk: Buffer, enc: string, cb: () => void): void
}
const { _writev, _write } = proto
proto._writev = function (chunks, cb) {
  writesFrom.get(this.localPort ?? -1)?.push(chunks.map((c) => c.chunk.length))
  return _writev.call(this, chunks, cb)
}
proto._write = function (chunk, enc, cb) {
  writesFrom.get(this.localPort ?? -1)?.push([chunk.length])
  return _write.call(this, chunk, enc, cb)
}
test.after.always(() => {
  proto._writev = _writev
  proto._write = _write
})

test('header and JPEG leave in one write (writev), never split between two', async (t) => {
  const frames = await jpegFrames(4)
  const sink = tcpServerSink({ port: 0, wait: 1, linger: 1000 })
  const done = pipeline(fromItems(frames), prefix({ header: 'ii' }), sink)
  const port = await listening(sink)
  const writes: number[][] = []
  writesFrom.set(port, writes)
  t.teardown(() => {
    writesFrom.delete(port)
  })
  const client = await rawClient(t, port)
  client.write(GREETING)
  client.resume()
  await withTimeout(done, 10_000, 'server')
  t.true(writes.length >= 1)
  const sizes = writes.flat()
  t.deepEqual(
    sizes,
    frames.flatMap((f) => [8, f.data.length]),
    'every byte went through these writes',
  )
  t.true(
    writes.every((w) => w.length % 2 === 0),
    `each write holds whole [header, JPEG] pairs: ${JSON.stringify(writes)}`,
  )
})

test('tcp-client greeting: sent once on each connection, nothing else ever', async (t) => {
  const got: string[] = []
  let n = 0
  const { port } = await rawServer(t, (s) => {
    let text = ''
    s.on('data', (d: Buffer) => {
      text += d.toString('utf8')
    })
    s.on('end', () => got.push(text))
    const payload = Buffer.from([0xff, 0xd8, 0xff, n++])
    s.end(Buffer.concat([ii(4), payload]))
  })
  const source = tcpClientSource({ port, greeting: GREETING, reconnect: true, retryMin: 10 })
  t.teardown(() => {
    source.destroy()
  })
  const frames: Frame[] = []
  await withTimeout(
    pipeline(
      source,
      unprefix({ header: 'ii' }),
      new Writable({
        objectMode: true,
        write(f: Frame, _e, cb) {
          frames.push(f)
          if (frames.length === 2) source.stop()
          cb()
        },
      }),
    ),
    5000,
    'pipeline',
  )
  await until(() => got.length === 2, 'both connections ended')
  t.deepEqual(got, [GREETING, GREETING])
  t.deepEqual(
    frames.map((f) => f.data[3]),
    [0, 1],
  )
})

async function clientError(t: ExecutionContext, send: (s: Socket) => void): Promise<FramePipeError> {
  const { port } = await rawServer(t, send)
  const err = await t.throwsAsync(
    withTimeout(
      pipeline(
        tcpClientSource({ port }),
        unprefix({ header: 'ii' }),
        new Writable({
          objectMode: true,
          write(_f, _e, cb) {
            cb()
          },
        }),
      ),
      5000,
    ),
  )
  t.true(err instanceof FramePipeError, String(err))
  return err as FramePipeError
}

test('short header reads: an ii stream written one byte at a time frames correctly', async (t) => {
  const payloads = [Buffer.from([0xff, 0xd8, 0xff, 1, 2, 3]), Buffer.from([0xff, 0xd8, 0xff, 4])]
  const bytes = Buffer.concat(payloads.flatMap((p) => [ii(p.length), p]))
  const { port } = await rawServer(t, (s) => {
    let i = 0
    const next = (): void => {
      if (i < bytes.length) s.write(bytes.subarray(i, ++i), () => setImmediate(next))
      else s.end()
    }
    next()
  })
  const frames: Frame[] = []
  await withTimeout(pipeline(tcpClientSource({ port }), unprefix({ header: 'ii' }), keep(frames)), 10_000)
  t.deepEqual(
    frames.map((f) => f.data.toString('hex')),
    payloads.map((p) => p.toString('hex')),
  )
})

test('EOF mid-frame is a clear error with the missing count', async (t) => {
  const err = await clientError(t, (s) => s.end(Buffer.concat([ii(5000), Buffer.alloc(1234, 0xff)])))
  t.is(err.code, 'ERR_UNEXPECTED_EOF')
  t.is(err.message, 'unprefix: stream ended in the middle of a frame body: 3766 bytes missing')
})

test('garbage from the server: a huge length, unequal lengths, text', async (t) => {
  const huge = await clientError(t, (s) => s.end(ii(2_000_000_000)))
  t.is(huge.message, 'unprefix: header announces a frame of 2000000000 bytes, more than maxFrameBytes (67108864)')
  const unequal = await clientError(t, (s) => s.end(ii(100, 101)))
  t.is(unequal.message, 'unprefix: ii header holds two different lengths (100 and 101); they must be equal')
  const text = await clientError(t, (s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'))
  t.is(text.code, 'ERR_BAD_HEADER')
})

test('a server that never half-closes: stop() cuts at a Boundary, a partial frame is dropped and counted, no error', async (t) => {
  const { port } = await rawServer(t, (s) => {
    s.write(Buffer.concat([ii(3), Buffer.from([0xff, 0xd8, 0xff]), ii(1000), Buffer.alloc(10)]))
  })
  const source = tcpClientSource({ port })
  const cutter = unprefix({ header: 'ii' })
  const warnings: Error[] = []
  cutter.on('warning', (w: Error) => warnings.push(w))
  const frames: Frame[] = []
  await withTimeout(
    pipeline(
      source,
      cutter,
      new Writable({
        objectMode: true,
        write(f: Frame, _e, cb) {
          frames.push(f)
          setTimeout(() => source.stop(), 50)
          cb()
        },
      }),
    ),
    5000,
  )
  t.is(frames.length, 1)
  t.is(warnings.length, 1)
  t.regex(warnings[0]!.message, /^unprefix: peer 127\.0\.0\.1:\d+ left mid-frame, 18 of 1008 bytes dropped$/)
})
