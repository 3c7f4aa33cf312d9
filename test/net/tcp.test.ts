// The TCP transports over real loopback sockets (port 0), both ends in this process.

import test, { type ExecutionContext } from 'ava'
import { testProp, fc } from '@fast-check/ava'
import net, { type AddressInfo, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import { Readable, Writable, type Stream } from 'node:stream'
import { pipeline as streamPipeline } from 'node:stream/promises'
import { isBoundary, makeFrame, type Boundary, type ByteChunk, type Frame } from '../../src/core/frame.js'
import { FramePipeError } from '../../src/core/errors.js'
import { pipeline, stopPipeline } from '../../src/core/pipeline.js'
import { tcpServer as tcpServerSink } from '../../src/sinks/tcp-server.js'
import { tcpClient as tcpClientSink } from '../../src/sinks/tcp-client.js'
import { tcpServer as tcpServerSource } from '../../src/sources/tcp-server.js'
import { tcpClient as tcpClientSource } from '../../src/sources/tcp-client.js'
import type { TcpServerSink } from '../../src/net/tcp/server-sink.js'
import { prefix } from '../../src/transforms/prefix.js'
import { unprefix } from '../../src/transforms/unprefix.js'
import type { ClientEvent } from '../../src/net/socket.js'
import { stageInfo, type Counters } from '../../src/core/stage.js'
import { collect, freePort as freeLoopbackPort, fromItems, withTimeout } from '../helpers/index.js'

// ---------------------------------------------------------------- helpers

/** Packet i: [4-byte BE length, payload] where the payload starts with i and is filled with i's low byte. */
function packet(i: number, size: number): Buffer[] {
  const payload = Buffer.alloc(size, i & 0xff)
  if (size >= 4) payload.writeUInt32BE(i, 0)
  const header = Buffer.alloc(4)
  header.writeUInt32BE(size, 0)
  return [header, payload]
}

function joined(packets: readonly Buffer[][]): Buffer {
  return Buffer.concat(packets.flat())
}

/** Cut `bytes` into length-prefixed payloads; `rest` is the count of trailing bytes that do not make a whole packet. */
function parse(bytes: Buffer): { payloads: Buffer[]; rest: number } {
  const payloads: Buffer[] = []
  let pos = 0
  while (bytes.length - pos >= 4) {
    const n = bytes.readUInt32BE(pos)
    if (bytes.length - pos - 4 < n) break
    payloads.push(bytes.subarray(pos + 4, pos + 4 + n))
    pos += 4 + n
  }
  return { payloads, rest: bytes.length - pos }
}

/** The index a payload made by packet() carries, after checking every byte of it. */
function indexOf(t: ExecutionContext, payload: Buffer): number {
  const i = payload.readUInt32BE(0)
  t.true(payload.equals(packet(i, payload.length)[1]!), `payload of packet ${i} is intact`)
  return i
}

interface TestClient {
  socket: Socket
  /** How the server names this client: 127.0.0.1:<local port>. */
  peer: string
  chunks: Buffer[]
  received(): number
  bytes(): Buffer
  /** Resolves when the server closes the connection. */
  closed: Promise<unknown>
}

async function connectClient(t: ExecutionContext, port: number, options: { paused?: boolean } = {}): Promise<TestClient> {
  const socket = net.connect({ host: '127.0.0.1', port })
  t.teardown(() => {
    socket.destroy()
  })
  const chunks: Buffer[] = []
  let received = 0
  socket.on('data', (c: Buffer) => {
    chunks.push(c)
    received += c.length
  })
  if (options.paused) socket.pause()
  const closed = once(socket, 'close')
  await withTimeout(once(socket, 'connect'), 5000, 'client connect')
  return { socket, peer: `127.0.0.1:${socket.localPort}`, chunks, received: () => received, bytes: () => Buffer.concat(chunks), closed }
}

/** Poll (every 5 ms) until `cond` holds. */
function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  return withTimeout(
    (async () => {
      while (!cond()) await new Promise((r) => setTimeout(r, 5))
    })(),
    ms,
    what,
  )
}

function portOf(stream: { address(): AddressInfo | null }): number {
  const a = stream.address()
  if (!a) throw new Error('not listening')
  return a.port
}

async function listening<S extends { address(): AddressInfo | null } & NodeJS.EventEmitter>(
  t: ExecutionContext,
  stream: S,
): Promise<number> {
  t.teardown(() => {
    ;(stream as unknown as Readable).destroy()
  })
  if (!stream.address()) await withTimeout(once(stream, 'listening'), 5000, 'listening')
  return portOf(stream)
}

async function rawServer(t: ExecutionContext, port = 0, onConnection: (s: Socket) => void = () => undefined): Promise<Server> {
  const sockets = new Set<Socket>()
  const server = net.createServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    onConnection(s)
  })
  t.teardown(() => {
    server.close()
    for (const s of sockets) s.destroy()
  })
  server.listen(port, '127.0.0.1')
  await withTimeout(once(server, 'listening'), 5000, 'raw server listening')
  return server
}

async function freePort(_t: ExecutionContext): Promise<number> {
  return freeLoopbackPort('tcp')
}

/** A Writable that keeps what reaches it (the readable side of a sink). */
function keep<T>(into: T[]): Writable {
  return new Writable({
    objectMode: true,
    write(chunk: T, _e, cb) {
      into.push(chunk)
      cb()
    },
  })
}

/** Resolves once `value()` has stayed the same for 20 turns of the event loop in a row (I/O included). */
async function settled(value: () => number, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  let last = value()
  let same = 0
  while (same < 20) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the value to settle')
    await new Promise((r) => setImmediate(r))
    const now = value()
    same = now === last ? same + 1 : 0
    last = now
  }
}

function counters(stream: Stream): Counters {
  return stageInfo(stream)!.counters
}

function clientEvents(stream: NodeJS.EventEmitter): ClientEvent[] {
  const events: ClientEvent[] = []
  stream.on('client', (e: ClientEvent) => events.push(e))
  return events
}

// ---------------------------------------------------------------- tcp-server sink

test('tcp-server sink: every client receives every packet byte for byte', async (t) => {
  const sizes = [0, 1, 3, 4, 100, 70_000, 1460, 300_000, 5]
  const packets = Array.from({ length: 60 }, (_, i) => packet(i, sizes[i % sizes.length]!))
  const sink = tcpServerSink({ port: 0, wait: 3 })
  const port = await listening(t, sink)
  const clients = await Promise.all([0, 1, 2].map(() => connectClient(t, port)))
  const passed: ByteChunk[] = []
  await withTimeout(pipeline(fromItems(packets), sink, keep(passed)), 20_000, 'pipeline')
  await withTimeout(Promise.all(clients.map((c) => c.closed)), 5000, 'clients closed by the server')
  const expected = joined(packets)
  for (const c of clients) t.true(c.bytes().equals(expected))
  t.is(passed.length, packets.length, 'the sink passes every packet on')
  t.is(counters(sink).frames, 60)
  t.is(counters(sink).drops, 0)
  t.is(counters(sink).bytes, expected.length * 3)
  t.is(counters(sink).clients, 0)
})

test('tcp-server sink: a stalled client loses its oldest packets; the source and the other client never wait', async (t) => {
  const count = 300
  const size = 64 * 1024
  const sink = tcpServerSink({ port: 0, wait: 2, linger: 20_000 })
  const events = clientEvents(sink)
  const port = await listening(t, sink)
  const fast = await connectClient(t, port)
  const stalled = await connectClient(t, port, { paused: true })
  let stalledWhenAllTaken = -1
  let taken = 0
  const observer = new Writable({
    objectMode: true,
    write(_chunk, _e, cb) {
      if (++taken === count) {
        // The source has handed over its last packet while this client has read nothing.
        stalledWhenAllTaken = stalled.received()
        stalled.socket.resume()
      }
      cb()
    },
  })
  const source = Readable.from(
    (function* () {
      for (let i = 0; i < count; i++) yield packet(i, size)
    })(),
    { objectMode: true },
  )
  await withTimeout(pipeline(source, sink, observer), 30_000, 'pipeline')
  await withTimeout(Promise.all([fast.closed, stalled.closed]), 5000, 'clients closed by the server')

  t.is(stalledWhenAllTaken, 0)
  t.is(counters(sink).frames, count)
  const fastParsed = parse(fast.bytes())
  t.is(fastParsed.rest, 0)
  t.deepEqual(
    fastParsed.payloads.map((p) => indexOf(t, p)),
    Array.from({ length: count }, (_, i) => i),
    'the fast client gets all packets in order',
  )

  const slowParsed = parse(stalled.bytes())
  t.is(slowParsed.rest, 0, 'no packet was cut')
  const indexes = slowParsed.payloads.map((p) => indexOf(t, p))
  t.true(
    indexes.every((v, i) => i === 0 || v > indexes[i - 1]!),
    'in order, gaps only',
  )
  const slowDrops = events.find((e) => e.event === 'leave' && e.peer === stalled.peer)?.drops
  t.true(slowDrops !== undefined && slowDrops > 0)
  t.is(indexes.length, count - slowDrops!)
  t.is(indexes[indexes.length - 1], count - 1, 'the newest packets are kept')
  t.is(counters(sink).drops, slowDrops!)
})

test('tcp-server sink: a client that leaves mid-frame disturbs neither the server nor the other client', async (t) => {
  const count = 100
  const sink = tcpServerSink({ port: 0, wait: 2 })
  const events = clientEvents(sink)
  const port = await listening(t, sink)
  const steady = await connectClient(t, port)
  const leaver = await connectClient(t, port)
  leaver.socket.once('data', () => leaver.socket.destroy())
  const packets = Array.from({ length: count }, (_, i) => packet(i, 50_000))
  await withTimeout(pipeline(fromItems(packets), sink), 20_000, 'pipeline')
  await withTimeout(steady.closed, 5000, 'steady client closed by the server')
  t.true(steady.bytes().equals(joined(packets)))
  t.true(leaver.received() < count * 50_004)
  const leave = events.find((e) => e.event === 'leave' && e.peer === leaver.peer)
  t.truthy(leave, 'the leaver is logged')
  t.is(counters(sink).clients, 0)
})

test('tcp-server sink: with no client and wait=0 packets are discarded, not counted as drops', async (t) => {
  const sink = tcpServerSink({ port: 0 })
  await listening(t, sink)
  await withTimeout(pipeline(fromItems([packet(0, 10), packet(1, 10)]), sink), 5000, 'pipeline')
  t.is(counters(sink).frames, 2)
  t.is(counters(sink).drops, 0)
  t.is(counters(sink).bytes, 0)
})

test('tcp-server sink: a stopping pipeline stops waiting for `wait` clients (Ctrl-C with nobody connected)', async (t) => {
  const sink = tcpServerSink({ port: 0, wait: 1 })
  await listening(t, sink)
  const source = new Readable({ objectMode: true, read() {} })
  source.push(packet(0, 10))
  const running = pipeline(source, sink)
  // The first packet is held: nobody is connected.
  await new Promise<void>((resolve) => setImmediate(resolve))
  t.is(counters(sink).frames, 0)
  stopPipeline([source, sink])
  await withTimeout(running, 5000, 'pipeline after stop')
  t.is(counters(sink).frames, 1)
})

test('tcp-server sink: connections beyond maxClients are closed and logged', async (t) => {
  const sink = tcpServerSink({ port: 0, maxClients: 1, wait: 1 })
  const events = clientEvents(sink)
  const port = await listening(t, sink)
  const first = await connectClient(t, port)
  const extra = await connectClient(t, port)
  await withTimeout(extra.closed, 5000, 'extra client closed')
  t.true(events.some((e) => e.event === 'leave' && e.reason?.startsWith('refused') === true))
  await withTimeout(pipeline(fromItems([packet(7, 100)]), sink), 5000, 'pipeline')
  await withTimeout(first.closed, 5000, 'first client closed')
  t.true(first.bytes().equals(joined([packet(7, 100)])))
  t.is(extra.received(), 0)
})

// ---------------------------------------------------------------- tcp-server source

test("tcp-server source: clients take turns; one cut mid-frame ends at a Boundary before the next one's bytes", async (t) => {
  const source = tcpServerSource({ port: 0 })
  const events = clientEvents(source)
  const port = await listening(t, source)
  const items: ByteChunk[] = []
  const starts: Boundary[] = []
  // Start markers (with hangUp) are checked apart; the rest is the bytes and end markers.
  source.on('data', (c: ByteChunk) => (isBoundary(c) && c.reason === 'start' ? starts.push(c) : items.push(c)))

  const first = packet(1, 1000)
  const a = await connectClient(t, port)
  await until(() => events.length === 1, 'first client joins')
  a.socket.write(Buffer.concat([first[0]!, first[1]!.subarray(0, 300)]))
  const b = await connectClient(t, port)
  const second = [packet(2, 5000), packet(3, 0), packet(4, 70_000)]
  b.socket.end(joined(second))
  // b waits, unread, until a leaves.
  await until(() => counters(source).waiting === 1, 'b waiting')
  await new Promise((r) => setTimeout(r, 20))
  t.is(events.filter((e) => e.event === 'join').length, 1)
  a.socket.destroy()
  await until(() => items.filter(isBoundary).length === 2, 'both boundaries')
  source.stop()
  await withTimeout(once(source, 'end'), 5000, 'source end')

  const cut = items.findIndex(isBoundary)
  const aBytes = Buffer.concat(items.slice(0, cut) as Buffer[])
  t.true(aBytes.equals(Buffer.concat([first[0]!, first[1]!.subarray(0, 300)])))
  const boundaryA = items[cut] as Boundary
  t.is(boundaryA.peer, a.peer)
  const bEnd = items.findIndex((c, i) => i > cut && isBoundary(c))
  t.is(bEnd, items.length - 1)
  t.true(Buffer.concat(items.slice(cut + 1, bEnd) as Buffer[]).equals(joined(second)))
  t.deepEqual(items[bEnd], { boundary: true, peer: b.peer, reason: 'end' })
  t.deepEqual(
    starts.map((s) => [s.peer, typeof s.hangUp]),
    [
      [a.peer, 'function'],
      [b.peer, 'function'],
    ],
  )
  t.deepEqual(
    events.map((e) => e.event),
    ['join', 'leave', 'join', 'leave'],
  )
  t.is(counters(source).clients, 0)
})

test("tcp-server source → unprefix: the partial frame of a client that left is dropped, the next client's frames arrive", async (t) => {
  const source = tcpServerSource({ port: 0, maxWaiting: 4 })
  const events = clientEvents(source)
  const port = await listening(t, source)
  const cutter = unprefix()
  const done = collect<Frame>(source.pipe(cutter))
  const a = await connectClient(t, port)
  await until(() => events.length === 1, 'a joins')
  const whole = packet(10, 2000)
  const partial = packet(11, 2000)
  a.socket.write(Buffer.concat([...whole, partial[0]!, partial[1]!.subarray(0, 1000)]))
  const b = await connectClient(t, port)
  b.socket.end(joined([packet(12, 3000), packet(13, 10)]))
  a.socket.destroy()
  await until(() => counters(cutter).frames === 3, 'three frames')
  source.stop()
  const frames = await withTimeout(done, 5000, 'collect')
  t.deepEqual(
    frames.map((f) => f.data.readUInt32BE(0)),
    [10, 12, 13],
  )
  t.is(counters(cutter).drops, 1)
})

test('tcp-server source: once ends the stream when the first client leaves', async (t) => {
  const source = tcpServerSource({ port: 0, once: true })
  const port = await listening(t, source)
  const done = collect<ByteChunk>(source)
  const c = await connectClient(t, port)
  c.socket.end(joined([packet(1, 10)]))
  const items = await withTimeout(done, 5000, 'source end')
  t.true(Buffer.concat(items.filter((x): x is Buffer => Buffer.isBuffer(x))).equals(joined([packet(1, 10)])))
  t.true(isBoundary(items[items.length - 1]))
  t.is(source.address(), null, 'the server is closed')
})

test('tcp-server source: connections beyond maxWaiting are closed and logged', async (t) => {
  const source = tcpServerSource({ port: 0, maxWaiting: 1 })
  const events = clientEvents(source)
  const port = await listening(t, source)
  source.resume()
  await connectClient(t, port)
  await until(() => events.length === 1, 'first joins')
  await connectClient(t, port)
  const third = await connectClient(t, port)
  await withTimeout(third.closed, 5000, 'third closed')
  t.is(counters(source).waiting, 1)
  t.true(events.some((e) => e.event === 'leave' && e.reason === 'refused: 1 clients already waiting'))
  source.stop()
  await withTimeout(once(source, 'end'), 5000, 'source end')
})

test('tcp-server source: backpressure pauses the client instead of buffering without bound', async (t) => {
  const source = tcpServerSource({ port: 0 })
  const port = await listening(t, source)
  const c = await connectClient(t, port)
  const big = Buffer.alloc(32 * 2 ** 20, 1)
  let flushed = false
  c.socket.write(big, () => {
    flushed = true
  })
  // Nobody reads the source: after a while the source holds at most ~16 chunks and the rest waits in TCP.
  await new Promise((r) => setTimeout(r, 300))
  t.true(source.readableLength <= 16)
  t.true(counters(source).bytes < big.length)
  t.false(flushed)
  source.resume()
  await until(() => counters(source).bytes === big.length, 'all bytes read', 10_000)
  t.is(counters(source).bytes, big.length)
  source.stop()
})

// ---------------------------------------------------------------- tcp-client sink

test('tcp-client sink: reconnects after the server restarts on the same port; the new connection starts at a packet boundary', async (t) => {
  const size = 128 * 1024
  let stopAt = Infinity
  let produced = 0
  const source = new Readable({
    objectMode: true,
    highWaterMark: 1,
    read() {
      // Paced, like a camera: one packet per event-loop turn.
      setImmediate(() => this.push(produced < stopAt ? packet(produced++, size) : null))
    },
  })

  const first: Buffer[] = []
  let firstBytes = 0
  let cutFirst!: () => void
  const firstCut = new Promise<void>((r) => {
    cutFirst = r
  })
  const server1 = await rawServer(t, 0, (s) => {
    s.on('data', (c: Buffer) => {
      first.push(c)
      firstBytes += c.length
      if (firstBytes > 1_000_000) {
        s.destroy()
        cutFirst()
      }
    })
  })
  const port = (server1.address() as AddressInfo).port
  const sink = tcpClientSink({ port, retryMin: 10, retryMax: 50 })
  t.teardown(() => {
    source.destroy()
    sink.destroy()
  })
  const connects: unknown[] = []
  sink.on('connect', (e) => connects.push(e))
  const done = pipeline(source, sink)

  await withTimeout(firstCut, 10_000, 'first server got 1 MB')
  server1.close()
  await withTimeout(once(server1, 'close'), 5000, 'first server closed')
  await new Promise((r) => setTimeout(r, 50)) // a few refused attempts

  const second: Buffer[] = []
  let secondBytes = 0
  const secondClosed = new Promise<void>((resolve) => {
    void rawServer(t, port, (s) => {
      s.on('data', (c: Buffer) => {
        second.push(c)
        secondBytes += c.length
        if (secondBytes > 10 * (size + 4) && stopAt === Infinity) stopAt = produced
      })
      s.on('end', () => resolve())
    })
  })
  await withTimeout(done, 20_000, 'pipeline')
  await withTimeout(secondClosed, 5000, 'the sink closes with FIN')

  const a = parse(Buffer.concat(first))
  t.true(a.rest > 0 || a.payloads.length > 0)
  const lastFirst = a.payloads.length > 0 ? indexOf(t, a.payloads[a.payloads.length - 1]!) : -1
  const b = parse(Buffer.concat(second))
  t.is(b.rest, 0, 'the second connection carries whole packets only')
  t.true(b.payloads.length >= 10)
  const indexes = b.payloads.map((p) => indexOf(t, p))
  t.true(indexes[0]! > lastFirst, 'nothing is resent: a cut packet is never resumed')
  t.true(indexes.every((v, i) => i === 0 || v > indexes[i - 1]!))
  t.is(indexes[indexes.length - 1], produced - 1, 'everything queued at the end is delivered')
  t.is(connects.length, 2)
  t.is(counters(sink).connected, 0)
})

test('tcp-client sink: waitForServer retries the first connection; queued packets are delivered', async (t) => {
  const port = await freePort(t)
  const sink = tcpClientSink({ port, waitForServer: true, retryMin: 10, retryMax: 20 })
  t.teardown(() => {
    sink.destroy()
  })
  const retries: unknown[] = []
  sink.on('retry', (e) => retries.push(e))
  const received: Buffer[] = []
  const got = new Promise<void>((resolve) => {
    setTimeout(() => {
      void rawServer(t, port, (s) => {
        s.on('data', (c: Buffer) => received.push(c))
        s.on('end', () => resolve())
      })
    }, 100)
  })
  const packets = [packet(1, 10), packet(2, 20), packet(3, 30)]
  await withTimeout(pipeline(fromItems(packets), sink), 10_000, 'pipeline')
  await withTimeout(got, 5000, 'server end')
  t.true(Buffer.concat(received).equals(joined(packets)))
  t.true(retries.length > 0)
})

test('tcp-client sink, whenFull=drop: while disconnected it keeps only the newest maxQueue packets', async (t) => {
  const port = await freePort(t)
  const sink = tcpClientSink({ port, waitForServer: true, maxQueue: 2, whenFull: 'drop', retryMin: 10, retryMax: 20, linger: 0 })
  t.teardown(() => {
    sink.destroy()
  })
  await withTimeout(pipeline(fromItems([packet(1, 10), packet(2, 10), packet(3, 10), packet(4, 10)]), sink), 5000, 'pipeline')
  t.is(counters(sink).frames, 4)
  t.is(counters(sink).drops, 4, 'two dropped when full, two left undelivered at the end')
})

test('tcp-client sink, whenFull=wait (default): a server that does not read holds the source back; nothing is dropped', async (t) => {
  let serverSocket: Socket | undefined
  const received: Buffer[] = []
  let serverEnd!: () => void
  const ended = new Promise<void>((resolve) => {
    serverEnd = resolve
  })
  const server = await rawServer(t, 0, (s) => {
    serverSocket = s
    s.pause()
    s.on('data', (c: Buffer) => received.push(c))
    s.on('end', () => serverEnd())
  })
  const port = (server.address() as AddressInfo).port
  const total = 200
  let produced = 0
  const source = new Readable({
    objectMode: true,
    read() {
      if (produced === total) return void this.push(null)
      this.push(packet(produced++, 64 * 1024))
    },
  })
  const sink = tcpClientSink({ port, maxQueue: 4 })
  t.teardown(() => {
    sink.destroy()
    source.destroy()
  })
  const done = pipeline(source, sink)
  await new Promise((r) => setTimeout(r, 300))
  t.true(produced < total / 2, `the source waits while the server does not read (produced ${produced} of ${total})`)
  t.is(counters(sink).drops, 0)
  serverSocket!.resume()
  await withTimeout(done, 10_000, 'pipeline')
  await withTimeout(ended, 5000, 'server end')
  const parsed = parse(Buffer.concat(received))
  t.is(parsed.payloads.length, total)
  t.is(parsed.rest, 0)
  t.is(counters(sink).drops, 0)
})

// ---------------------------------------------------------------- tcp-client source

test('tcp-client source: reads what the server sends until it closes, writing nothing', async (t) => {
  const data = joined([packet(1, 100), packet(2, 200_000)])
  let fromClient = 0
  const server = await rawServer(t, 0, (s) => {
    s.on('data', (c: Buffer) => {
      fromClient += c.length
    })
    s.end(data)
  })
  const source = tcpClientSource({ port: (server.address() as AddressInfo).port })
  t.teardown(() => {
    source.destroy()
  })
  const items = await withTimeout(collect<ByteChunk>(source), 5000, 'source end')
  t.true(
    items.every((x) => Buffer.isBuffer(x)),
    'no Boundary without reconnect',
  )
  t.true(Buffer.concat(items as Buffer[]).equals(data))
  t.is(fromClient, 0)
  t.is(counters(source).bytes, data.length)
})

test('tcp-client source: with reconnect a lost connection becomes a Boundary and the bytes go on', async (t) => {
  let n = 0
  const server = await rawServer(t, 0, (s) => {
    if (n++ === 0) {
      // Half a packet, then the connection drops.
      s.end(Buffer.concat([packet(1, 100)[0]!, packet(1, 100)[1]!.subarray(0, 50)]))
    } else {
      s.write(joined([packet(2, 100)]))
    }
  })
  const source = tcpClientSource({ port: (server.address() as AddressInfo).port, reconnect: true, retryMin: 10 })
  t.teardown(() => {
    source.destroy()
  })
  const cutter = unprefix()
  const frames: Frame[] = []
  cutter.on('data', (f: Frame) => {
    frames.push(f)
    source.stop()
  })
  const done = streamPipeline(source, cutter)
  await withTimeout(done, 5000, 'pipeline')
  t.deepEqual(
    frames.map((f) => f.data.readUInt32BE(0)),
    [2],
  )
  t.is(counters(cutter).drops, 1)
})

// ---------------------------------------------------------------- end to end, addresses and errors

testProp(
  'frames → prefix → tcp-client sink → tcp-server source → unprefix come back whole',
  [fc.array(fc.integer({ min: 0, max: 200_000 }), { minLength: 1, maxLength: 25 }), fc.integer({ min: 0, max: 255 })],
  async (t, sizes, fill) => {
    const frames = sizes.map((n, seq) => makeFrame(Buffer.alloc(n, (fill + seq) & 0xff), { seq }))
    const server = tcpServerSource({ port: 0, once: true })
    let client: Writable | undefined
    try {
      if (!server.address()) await withTimeout(once(server, 'listening'), 5000, 'listening')
      const port = portOf(server)
      const received = collect<Frame>(server.pipe(unprefix({ header: 'native' })))
      client = tcpClientSink({ port, reconnect: false, maxQueue: 1000 })
      await withTimeout(pipeline(fromItems(frames), prefix({ header: 'native' }), client), 10_000, 'sender')
      const got = await withTimeout(received, 10_000, 'receiver')
      t.is(got.length, frames.length)
      got.forEach((f, i) => {
        t.true(f.data.equals(frames[i]!.data))
        t.is(f.seq, i)
      })
    } finally {
      server.destroy()
      client?.destroy()
    }
  },
  { numRuns: 8 },
)

test('servers bind 127.0.0.1 by default', async (t) => {
  const source = tcpServerSource({ port: 0 })
  const sink = tcpServerSink({ port: 0 })
  await listening(t, source)
  await listening(t, sink)
  t.is(source.address()?.address, '127.0.0.1')
  t.is(sink.address()?.address, '127.0.0.1')
})

test('a port in use is one clear error for both servers', async (t) => {
  const taken = await rawServer(t)
  const port = (taken.address() as AddressInfo).port
  for (const make of [() => tcpServerSource({ port }), () => tcpServerSink({ port })]) {
    const stage = make()
    t.teardown(() => {
      stage.destroy()
    })
    const [err] = (await withTimeout(once(stage, 'error'), 5000, 'error')) as [FramePipeError]
    t.true(err instanceof FramePipeError)
    t.is(err.code, 'ERR_NETWORK')
    t.is(err.message, `tcp-server: port in use: 127.0.0.1:${port}`)
  }
})

test('a refused connection is one clear error for both clients', async (t) => {
  const port = await freePort(t)
  for (const make of [() => tcpClientSource({ port }), () => tcpClientSink({ port })]) {
    const stage = make()
    t.teardown(() => {
      stage.destroy()
    })
    const [err] = (await withTimeout(once(stage, 'error'), 5000, 'error')) as [FramePipeError]
    t.is(err.code, 'ERR_NETWORK')
    t.is(err.message, `tcp-client: connection refused by 127.0.0.1:${port} (is the server running?)`)
  }
  const rejected = await withTimeout(
    pipeline(fromItems([packet(1, 1)]), tcpClientSink({ port })).then(
      () => null,
      (e: Error) => e,
    ),
    5000,
    'pipeline',
  )
  t.is(rejected?.message, `tcp-client: connection refused by 127.0.0.1:${port} (is the server running?)`)
})

test('sinks refuse frames: prefix goes first', async (t) => {
  const sink: TcpServerSink = tcpServerSink({ port: 0 })
  await listening(t, sink)
  const err = await t.throwsAsync(streamPipeline(fromItems([makeFrame(Buffer.alloc(3))]), sink))
  t.regex(err!.message, /^tcp-server: expected bytes .* but received a Frame/)
})

// ---------------------------------------------------------------- prefix ! tcp-client, fused

/** A server that keeps every byte it is sent, and resolves with them when the client closes. */
async function byteSink(t: ExecutionContext): Promise<{ port: number; received: Promise<Buffer> }> {
  const chunks: Buffer[] = []
  let done!: (b: Buffer) => void
  const received = new Promise<Buffer>((resolve) => (done = resolve))
  const server = await rawServer(t, 0, (socket) => {
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', () => {
      socket.end()
      done(Buffer.concat(chunks))
    })
  })
  return { port: (server.address() as AddressInfo).port, received }
}

test('prefix ! tcp-client: pipeline() fuses them (prefix runs inside the transport) unless prefix was already read by hand; the wire, counters and close are the same', async (t) => {
  const frames = Array.from({ length: 40 }, (_, i) => makeFrame(Buffer.alloc(100 + i * 37, i), { seq: i }))
  const wire = async (fuse: boolean) => {
    const { port, received } = await byteSink(t)
    const framer = prefix({ header: 'u32be' })
    const sink = tcpClientSink({ port })
    let ran = 0
    const transform = framer._transform.bind(framer)
    framer._transform = (chunk, encoding, callback) => {
      ran++
      transform(chunk, encoding, callback)
    }
    // A stage already read by hand (here a 'data' listener, paused) is left a stream of its own.
    if (!fuse) framer.on('data', () => {}).pause()
    const closed = once(framer, 'close')
    await withTimeout(pipeline(fromItems(frames), framer, sink), 5000, 'pipeline')
    await withTimeout(closed, 5000, "prefix's close")
    return { bytes: await received, ran, prefix: stageInfo(framer)!.counters, sink: stageInfo(sink)!.counters }
  }
  const fused = await wire(true)
  const plain = await wire(false)
  t.is(fused.ran, 0, "fused: prefix's own stream never ran")
  t.is(plain.ran, frames.length)
  t.true(fused.bytes.equals(plain.bytes), 'the same bytes on the wire')
  t.is(
    fused.bytes.length,
    frames.reduce((n, f) => n + 4 + f.data.length, 0),
  )
  t.like(fused.prefix, { frames: 40, bytes: fused.bytes.length })
  t.like(fused.sink, { frames: 40, bytes: fused.bytes.length })
})

test("prefix ! tcp-client fused: a record prefix refuses is prefix's error, and the pipeline fails as unfused", async (t) => {
  const { port } = await byteSink(t)
  const err = await t.throwsAsync(
    withTimeout(
      pipeline(fromItems([makeFrame(Buffer.alloc(8)), Buffer.from('bytes')]), prefix(), tcpClientSink({ port })),
      5000,
      'pipeline',
    ),
  )
  t.regex(err!.message, /^prefix: expected a Frame but received .*a byte stream needs no prefix/)
})

// ---------------------------------------------------------------- tcp-server ! unprefix, fused

test('tcp-server ! unprefix: pipeline() fuses them (the source parses its sockets); frames, counters, per-peer drops and the 2-frame bound as unfused', async (t) => {
  const source = tcpServerSource({ port: 0, maxWaiting: 4 })
  const cutter = unprefix()
  let ran = 0
  const transform = cutter._transform.bind(cutter)
  cutter._transform = (chunk, encoding, callback) => {
    ran++
    transform(chunk, encoding, callback)
  }
  const port = await listening(t, source)
  const events = clientEvents(source)
  const got: Frame[] = []
  // Takes nothing until released: the fused source must hold the client back with at most 2 frames buffered.
  let release: (() => void) | undefined
  let holding = true
  const sink = new Writable({
    objectMode: true,
    highWaterMark: 1,
    write(frame: Frame, _encoding, callback) {
      got.push(frame)
      if (holding) release = callback
      else callback()
    },
  })
  const cutterClosed = once(cutter, 'close')
  const done = pipeline(source, cutter, sink)
  const a = await connectClient(t, port)
  await until(() => events.length === 1, 'a joins')
  const many = Array.from({ length: 400 }, (_, i) => packet(i, 60_000))
  let flushed = false
  a.socket.write(joined(many), () => {
    flushed = true
  })
  await until(() => got.length === 1 && source.readableLength === 2, 'the source holds 2 frames')
  // Held back: the rest waits in TCP, not in memory (24 MB sent, a few frames read), once reading has stopped.
  await settled(() => counters(source).bytes)
  t.is(source.readableHighWaterMark, 2)
  t.is(source.readableLength, 2)
  t.true(counters(cutter).frames <= 4, `frames read while held back: ${counters(cutter).frames}`)
  t.false(flushed)
  holding = false
  release!()
  await until(() => got.length === many.length, 'all of a', 15_000)
  // A client that leaves mid-frame costs that frame only; the next one is served.
  const partial = packet(999, 2000)
  a.socket.end(Buffer.concat([partial[0]!, partial[1]!.subarray(0, 500)]))
  const b = await connectClient(t, port)
  b.socket.end(joined([packet(1000, 3000), packet(1001, 10)]))
  await until(() => got.length === many.length + 2, "b's frames")
  source.stop()
  await withTimeout(done, 5000, 'pipeline')
  await withTimeout(cutterClosed, 5000, "unprefix's close")
  t.is(ran, 0, "fused: unprefix's own stream never ran")
  t.deepEqual(
    got.map((f) => f.data.readUInt32BE(0)),
    [...many.keys(), 1000, 1001],
  )
  t.like(counters(cutter), { frames: many.length + 2, drops: 1 })
  t.is(counters(source).bytes, joined(many).length + 4 + 500 + 4 + 3000 + 4 + 10)
})

test('prefix ! tcp-server sink and tcp-client source ! unprefix: pipeline() fuses both; a held first frame is made into its packet once', async (t) => {
  const frames = Array.from({ length: 30 }, (_, i) => makeFrame(Buffer.alloc(5000 + i * 101, i), { seq: i }))
  const framer = prefix({ header: 'native' })
  const server = tcpServerSink({ port: 0, wait: 1 })
  const cutter = unprefix({ header: 'native' })
  let ran = 0
  for (const stage of [framer, cutter]) {
    const transform = stage._transform.bind(stage)
    stage._transform = (chunk, encoding, callback) => {
      ran++
      transform(chunk, encoding, callback)
    }
  }
  // The sender starts first: its first frame waits in the sink (wait=1) until the client connects.
  const sending = pipeline(fromItems(frames), framer, server)
  const port = await listening(t, server)
  const client = tcpClientSource({ port })
  const got: Frame[] = []
  const receiving = pipeline(client, cutter, keep(got))
  await withTimeout(sending, 10_000, 'sending')
  await withTimeout(receiving, 10_000, 'receiving')
  t.is(ran, 0, "fused: neither prefix's nor unprefix's own stream ran")
  t.is(client.readableHighWaterMark, 2, "the fused source takes unprefix's bound")
  t.deepEqual(
    got.map((f) => [f.seq, f.data.length, f.data[0]]),
    frames.map((f) => [f.seq, f.data.length, f.data[0]]),
  )
  t.like(counters(framer), { frames: 30 })
  t.like(counters(server), { frames: 30 })
  t.like(counters(cutter), { frames: 30, drops: 0 })
})
