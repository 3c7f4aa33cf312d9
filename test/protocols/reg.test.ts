// reg-server and reg-client (seed 004's protocol) over real loopback sockets:
// frame-pipe on both sides, and hand-driven peers that misbehave the way
// WIRE.md §5 says the originals and their networks do.

import test, { type ExecutionContext } from 'ava'
import { testProp, fc } from '@fast-check/ava'
import dgram, { type RemoteInfo } from 'node:dgram'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { FramePipeError } from '../../src/core/errors.js'
import { makeFrame, type Frame } from '../../src/core/frame.js'
import type { ClientEvent } from '../../src/net/socket.js'
import { MAX_DATAGRAM, parseRegistration, pythonAddress, pythonDatetime, serverLogLine } from '../../src/protocols/reg/messages.js'
import { pipeline, stopSource } from '../../src/core/pipeline.js'
import { regServer, type RegServerOptions } from '../../src/sinks/reg-server.js'
import { regClient } from '../../src/sources/reg-client.js'
import type { RegServerSink } from '../../src/protocols/reg/server.js'
import type { RegClientSource } from '../../src/protocols/reg/client.js'
import { stageInfo, type Counters } from '../../src/core/stage.js'
import { collect, fromItems, tempDir, withTimeout } from '../helpers/index.js'

// ---------------------------------------------------------------- helpers

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A JPEG-looking payload that carries its number: FF D8 FF, u32 BE i, filler, FF D9. */
function payload(i: number, size = 200): Buffer {
  const b = Buffer.alloc(size, i & 0xff)
  b.set([0xff, 0xd8, 0xff], 0)
  b.writeUInt32BE(i, 3)
  b.set([0xff, 0xd9], size - 2)
  return b
}
const numberOf = (data: Buffer) => data.readUInt32BE(3)
const frame = (i: number, size?: number) => makeFrame(payload(i, size), { seq: i })
const counters = (s: RegServerSink | RegClientSource): Counters => stageInfo(s)!.counters

/** Items that arrive one by one, awaited with a bound. */
class Inbox<T> {
  private readonly items: T[] = []
  private waiter: (() => void) | null = null
  readonly all: T[] = []
  push(item: T): void {
    this.items.push(item)
    this.all.push(item)
    this.waiter?.()
  }
  async next(ms = 3000, what = 'item'): Promise<T> {
    return withTimeout(
      (async () => {
        while (this.items.length === 0)
          await new Promise<void>((resolve) => {
            this.waiter = resolve
          })
        this.waiter = null
        return this.items.shift()!
      })(),
      ms,
      what,
    )
  }
  /** Nothing arrives within ms. */
  async none(ms: number): Promise<boolean> {
    await sleep(ms)
    return this.items.length === 0
  }
}

/** A frame source the test feeds by hand; end() ends it. */
class Feed extends Readable {
  constructor() {
    super({ objectMode: true, highWaterMark: 1 })
  }
  override _read(): void {}
  add(f: Frame): void {
    this.push(f)
  }
  stop(): void {
    this.push(null)
  }
}

/** A source that makes frame 0, 1, 2 … every `ms` until stopped. */
class Ticker extends Readable {
  private n = 0
  private timer: NodeJS.Timeout | null = null
  constructor(private readonly ms: number) {
    super({ objectMode: true, highWaterMark: 1 })
  }
  override _read(): void {
    this.timer ??= setInterval(() => this.push(frame(this.n++)), this.ms)
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.push(null)
  }
  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (this.timer) clearInterval(this.timer)
    cb(err)
  }
}

/** Start source ! reg-server; resolves once it listens. The pipeline is stopped and awaited in teardown. */
async function serve(t: ExecutionContext, source: Readable & { stop(): void }, options: RegServerOptions = {}) {
  const server = regServer({ port: 0, ...options })
  const events: ClientEvent[] = []
  const warnings: FramePipeError[] = []
  server.on('client', (e: ClientEvent) => events.push(e))
  server.on('warning', (e: FramePipeError) => warnings.push(e))
  const done = pipeline(source, server)
  t.teardown(async () => {
    stopSource(source)
    await withTimeout(done, 5000, 'server pipeline').catch(() => undefined)
  })
  await once(server, 'listening')
  return { server, port: server.address()!.port, events, warnings, done }
}

/** A hand-driven seed-004 client: its own UDP socket (bound first) and TCP registration. */
async function rawClient(t: ExecutionContext, serverPort: number, registration?: string) {
  const udp = dgram.createSocket('udp4')
  const frames = new Inbox<{ data: Buffer; from: RemoteInfo }>()
  udp.on('message', (data, from) => frames.push({ data, from }))
  udp.bind(0, '127.0.0.1')
  await once(udp, 'listening')
  const port = udp.address().port
  const tcp = net.connect(serverPort, '127.0.0.1')
  await once(tcp, 'connect')
  tcp.write(registration ?? String(port))
  let udpOpen = true
  const tcpClosed = once(tcp, 'close')
  tcp.on('error', () => undefined)
  t.teardown(() => {
    tcp.destroy()
    if (udpOpen) udp.close()
  })
  return {
    port,
    frames,
    tcp,
    tcpClosed,
    reply(text: string, to: RemoteInfo) {
      udp.send(text, to.port, to.address)
    },
    closeUdp() {
      udpOpen = false
      udp.close()
    },
  }
}

/** A hand-driven seed-004 server: accepts one registration, sends what the test says. */
async function fakeServer(t: ExecutionContext) {
  const udp = dgram.createSocket('udp4')
  const replies = new Inbox<{ text: string; from: RemoteInfo }>()
  udp.on('message', (data, from) => replies.push({ text: data.toString('latin1'), from }))
  udp.bind(0, '127.0.0.1')
  await once(udp, 'listening')
  const registrations = new Inbox<{ text: string; socket: net.Socket; port: number }>()
  const sockets = new Set<net.Socket>()
  const tcp = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => undefined)
    socket.once('data', (d) => registrations.push({ text: d.toString('latin1'), socket, port: Number(d.toString('latin1')) }))
  })
  tcp.listen(0, '127.0.0.1')
  await once(tcp, 'listening')
  t.teardown(() => {
    tcp.close()
    for (const s of sockets) s.destroy()
    udp.close()
  })
  return {
    port: (tcp.address() as net.AddressInfo).port,
    registrations,
    replies,
    send(data: Buffer, port: number, from = udp) {
      from.send(data, port, '127.0.0.1')
    },
  }
}

/** Read a reg-client into an array, optionally slowly; stop it after `stopAfter` frames. */
async function receive(src: RegClientSource, stopAfter: number, delayMs = 0, onFrame?: (f: Frame, n: number) => void): Promise<Frame[]> {
  const got: Frame[] = []
  await pipelineTo(src, async (f) => {
    got.push(f)
    onFrame?.(f, got.length)
    if (got.length === stopAfter) stopSource(src)
    if (delayMs) await sleep(delayMs)
  })
  return got
}

function pipelineTo(src: Readable, each: (f: Frame) => Promise<void>): Promise<void> {
  const sink = new Writable({
    objectMode: true,
    highWaterMark: 1,
    write(f: Frame, _e, cb) {
      each(f).then(() => cb(), cb)
    },
  })
  return pipeline(src, sink)
}

async function logLines(path: string, count: number): Promise<string[]> {
  return withTimeout(
    (async () => {
      for (;;) {
        const lines = (await readFile(path, 'utf8').catch(() => '')).split('\n').filter(Boolean)
        if (lines.length >= count) return lines
        await sleep(20)
      }
    })(),
    5000,
    `${count} log lines`,
  )
}

// ---------------------------------------------------------------- the protocol text

test('log lines: str(datetime.now()), the address tuple, 接入/退出', (t) => {
  const at = new Date(2022, 11, 4, 23, 25, 34).getTime()
  t.is(serverLogLine('join', '127.0.0.1', 40000, at + 123.456), "2022-12-04 23:25:34.123456 客户端('127.0.0.1', 40000) 接入\n")
  t.is(serverLogLine('exit', '127.0.0.1', 40000, at), "2022-12-04 23:25:34 客户端('127.0.0.1', 40000) 退出\n")
  t.is(pythonDatetime(at + 0.001), '2022-12-04 23:25:34.000001')
  t.is(pythonDatetime(at + 999.9996), '2022-12-04 23:25:35', 'rounds to the microsecond like fromtimestamp')
  t.is(pythonAddress('::1', 5), "('::1', 5)")
})

testProp(
  'pythonDatetime: seconds as Date shows them, microseconds 6 digits or none',
  [fc.integer({ min: 946684800, max: 4102444800 }), fc.integer({ min: 0, max: 999999 })],
  (t, s, us) => {
    const text = pythonDatetime(s * 1000 + us / 1000)
    const m = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{6}))?$/.exec(text)
    t.truthy(m, text)
    t.is(new Date(+m![1]!, +m![2]! - 1, +m![3]!, +m![4]!, +m![5]!, +m![6]!).getTime(), s * 1000)
    t.is(m![7] === undefined ? 0 : Number(m![7]), us)
  },
)

/** Python's int(text) for the alphabet used below, plus the port range and the length cap. */
function reference(text: string): number | undefined {
  if (text.length > 16 || !/^\s*\d+\s*$/.test(text)) return undefined
  const n = Number(text.trim())
  return n >= 1 && n <= 65535 ? n : undefined
}

testProp(
  'a registration reads like Python int(): whitespace around digits only, port 1..65535',
  [fc.string({ unit: fc.constantFrom('0', '1', '4', '7', '9', ' ', '\n', '\t', 'a', '-', '.'), maxLength: 20 })],
  (t, text) => {
    const r = parseRegistration(text, true)!
    const expected = reference(text)
    if (expected === undefined) t.true('error' in r, text)
    else t.deepEqual(r, { port: expected })
  },
)

testProp(
  'split anywhere, a registration is never taken early: a prefix waits or agrees',
  [fc.integer({ min: 1, max: 65535 }), fc.constantFrom('', '\n', '\r\n', ' '), fc.constantFrom('', ' '), fc.nat()],
  (t, port, tail, head, cut) => {
    const text = `${head}${port}${tail}`
    const at = cut % (text.length + 1)
    const early = parseRegistration(text.slice(0, at), false)
    if (early !== undefined) t.deepEqual(early, { port })
    t.deepEqual(parseRegistration(text, true), { port })
  },
)

// ---------------------------------------------------------------- frame-pipe ↔ frame-pipe

test('reg-client ↔ reg-server (skip=false): every frame byte for byte; end handled; the extra frame absorbed; log lines', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const log = join(dir, 'logs', 'ServerLog.txt')
  const input = Array.from({ length: 40 }, (_, i) => frame(i, 100 + i * 37))
  const source = fromItems(input) as Readable & { stop(): void }
  source.stop = () => source.destroy()
  const { server, port, events } = await serve(t, source, { log, wait: 1, skip: false })
  const src = regClient({ port })
  const got = await withTimeout(receive(src, 12), 5000, 'client')
  const udpPort = Number(events[0]!.peer.split(':')[1])
  t.true(got.length >= 12)
  got.forEach((f, i) => t.true(f.data.equals(input[i]!.data), `frame ${i}`))
  const lines = await logLines(log, 2)
  t.is(lines[0], lines[0]!.replace(/ 客户端.*/, '') + ` 客户端${pythonAddress('127.0.0.1', udpPort)} 接入`)
  t.regex(lines[1]!, new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d(\\.\\d{6})? 客户端\\('127\\.0\\.0\\.1', ${udpPort}\\) 退出$`))
  t.deepEqual(
    events.map((e) => [e.event, e.reason]),
    [
      ['join', undefined],
      ['leave', 'end'],
    ],
  )
  const c = counters(server)
  t.is(c.sent! - c.resends!, got.length + 1, 'one frame after the last continue')
  t.true(counters(src).extra! <= 1)
  t.like(counters(src), { frames: got.length, drops: 0 })
})

test('reg-client ends cleanly when reg-server stops: registration closed, then silence', async (t) => {
  const input = Array.from({ length: 5 }, (_, i) => frame(i))
  const source = fromItems(input) as Readable & { stop(): void }
  source.stop = () => source.destroy()
  const { port, events } = await serve(t, source, { wait: 1, skip: false })
  const src = regClient({ port, timeout: 100, retries: 2 })
  const disconnects: string[] = []
  src.on('disconnect', (e: { message: string }) => disconnects.push(e.message))
  const got = await withTimeout(collect<Frame>(src), 5000, 'client')
  t.deepEqual(
    got.map((f) => numberOf(f.data)),
    [0, 1, 2, 3, 4],
  )
  t.deepEqual(
    events.map((e) => [e.event, e.reason]),
    [
      ['join', undefined],
      ['leave', 'server stopped'],
    ],
  )
  t.is(disconnects.length, 2)
  t.regex(disconnects[1]!, /end of stream/)
})

test("clients at different paces: each gets the newest frame at its own pace; one client's end does not stop the other", async (t) => {
  const ticker = new Ticker(10)
  const { server, port, events } = await serve(t, ticker)
  const fast = regClient({ port })
  const slow = regClient({ port })
  let fastPort = 0
  let fastLeft = false
  let slowAfterFastLeft = 0
  const slowDone = receive(slow, Infinity, 120, () => {
    if (fastLeft && ++slowAfterFastLeft === 3) stopSource(slow)
  })
  const fastGot = await withTimeout(
    receive(fast, 40, 0, () => {
      fastPort ||= fast.udpAddress()!.port
    }),
    10_000,
    'fast client',
  )
  await withTimeout(
    (async () => {
      while (!events.some((e) => e.event === 'leave')) await sleep(10)
    })(),
    5000,
    'fast leave',
  )
  fastLeft = true
  const slowGot = await withTimeout(slowDone, 10_000, 'slow client')
  const numbers = (fs: Frame[]) => fs.map((f) => numberOf(f.data))
  for (const got of [numbers(fastGot), numbers(slowGot)]) {
    t.true(
      got.every((n, i) => i === 0 || n > got[i - 1]!),
      `always newer: ${got.join(' ')}`,
    )
  }
  t.true(slowAfterFastLeft >= 3)
  // The slow client skipped frames (counted in drops) and took fewer.
  const slowNumbers = numbers(slowGot)
  t.true(
    slowNumbers[slowNumbers.length - 1]! - slowNumbers[0]! + 1 > slowNumbers.length,
    `slow client skipped frames: ${slowNumbers.join(' ')}`,
  )
  t.true(counters(server).drops > 0)
  const leaves = events.filter((e) => e.event === 'leave')
  t.deepEqual(
    leaves.map((e) => [e.peer, e.reason]),
    [
      [`127.0.0.1:${fastPort}`, 'end'],
      [leaves[1]!.peer, 'end'],
    ],
  )
  t.not(leaves[1]!.peer, leaves[0]!.peer)
  t.is(counters(server).lost, 0)
})

// ---------------------------------------------------------------- reg-server failure modes

test('a reply that never comes: ackTimeout sends the newest frame again, the stream goes on', async (t) => {
  const feed = new Feed()
  const { server, port } = await serve(t, feed, { ackTimeout: 400 })
  feed.add(frame(0))
  const c = await rawClient(t, port)
  const first = await c.frames.next()
  t.is(numberOf(first.data), 0)
  // Lost reply (or lost frame: the same silence): no answer to frame 0.
  const again = await c.frames.next(2000, 'resend')
  t.is(numberOf(again.data), 0)
  t.is(counters(server).resends, 1)
  c.reply('continue', again.from)
  feed.add(frame(1))
  const next = await c.frames.next()
  t.is(numberOf(next.data), 1)
  c.reply('continue', next.from)
  c.reply('end', next.from)
  t.is(counters(server).lost, 0)
})

test('a duplicated reply asks for nothing: no frame is sent twice', async (t) => {
  const feed = new Feed()
  const { server, port } = await serve(t, feed)
  const c = await rawClient(t, port)
  for (let i = 0; i < 4; i++) {
    feed.add(frame(i))
    const f = await c.frames.next()
    t.is(numberOf(f.data), i)
    c.reply('continue', f.from)
    c.reply('continue', f.from)
    await withTimeout(
      (async () => {
        while (counters(server).late! < i + 1) await sleep(5)
      })(),
      2000,
      'duplicate seen',
    )
  }
  t.true(await c.frames.none(100))
  t.is(counters(server).sent, 4)
  t.is(counters(server).late, 4)
})

test('a client that vanishes (closes UDP, keeps TCP) is dropped after `retries` resends, counted and logged', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const log = join(dir, 'ServerLog.txt')
  const feed = new Feed()
  const { server, port, events } = await serve(t, feed, { ackTimeout: 80, retries: 2, log })
  feed.add(frame(0))
  const c = await rawClient(t, port)
  await c.frames.next()
  c.closeUdp()
  await withTimeout(c.tcpClosed, 3000, 'server closes the registration')
  t.like(counters(server), { resends: 2, lost: 1, clients: 0 })
  t.regex(events[1]!.reason!, /no reply to 3 frames in a row/)
  const lines = await logLines(log, 2)
  t.regex(lines[1]!, new RegExp(`客户端\\('127\\.0\\.0\\.1', ${c.port}\\) 退出$`))
})

test('registration closed: nothing more is sent; an `end` within ackTimeout still counts as end, else it is dropped', async (t) => {
  const feed = new Feed()
  const { server, port, events } = await serve(t, feed, { ackTimeout: 500 })
  feed.add(frame(0))
  const a = await rawClient(t, port)
  const b = await rawClient(t, port)
  const fa = await a.frames.next()
  const fb = await b.frames.next()
  a.tcp.destroy()
  b.tcp.destroy()
  await sleep(50)
  a.reply('continue', fa.from)
  a.reply('end', fa.from)
  b.reply('continue', fb.from)
  feed.add(frame(1))
  await withTimeout(
    (async () => {
      while (counters(server).clients! > 0) await sleep(10)
    })(),
    3000,
    'both dropped',
  )
  const reasons = Object.fromEntries(events.filter((e) => e.event === 'leave').map((e) => [e.peer, e.reason]))
  t.is(reasons[`127.0.0.1:${a.port}`], 'end')
  t.regex(reasons[`127.0.0.1:${b.port}`]!, /registration connection closed/)
  t.true(await a.frames.none(50))
  t.true(await b.frames.none(0))
  t.is(counters(server).sent, 2)
})

test('bad registrations are refused one connection at a time; the server keeps accepting', async (t) => {
  const feed = new Feed()
  const { server, port, warnings, events } = await serve(t, feed, { registerTimeout: 300 })
  feed.add(frame(7))
  for (const text of ['hello', '70000', '0', '400 01', '12345678901234567', '-5']) {
    const sock = net.connect(port, '127.0.0.1')
    sock.on('error', () => undefined)
    await once(sock, 'connect')
    sock.write(text)
    await withTimeout(once(sock, 'close'), 2000, `refusal of ${JSON.stringify(text)}`)
  }
  // Silent connection: refused after registerTimeout.
  const silent = net.connect(port, '127.0.0.1')
  silent.on('error', () => undefined)
  await withTimeout(once(silent, 'close'), 2000, 'silent refusal')
  t.is(counters(server).refused, 7)
  t.is(warnings.length, 7)
  t.true(warnings.every((w) => w.code === 'ERR_BAD_HEADER' && w.message.startsWith('reg-server: registration from 127.0.0.1:')))
  t.regex(warnings[0]!.message, /not a port number: "hello"/)
  t.regex(warnings[1]!.message, /70000 is out of range 1\.\.65535/)
  t.regex(warnings[6]!.message, /no port number within 300 ms/)
  t.true(events.every((e) => e.event === 'leave' && e.reason!.startsWith('refused: ')))
  // …and still serves a well-behaved client.
  const src = regClient({ port })
  const got = await withTimeout(receive(src, 1), 3000, 'client after refusals')
  t.is(numberOf(got[0]!.data), 7)
})

test('a port split over several reads is joined (quiet time); a newline ends it at once', async (t) => {
  const feed = new Feed()
  const { port } = await serve(t, feed, { quiet: 300 })
  feed.add(frame(1))
  const splits: Array<(text: string) => string[]> = [
    (text) => [text.slice(0, 2), text.slice(2)],
    (text) => [...text],
    (text) => [`${text}\n`],
  ]
  for (const split of splits) {
    const udp = dgram.createSocket('udp4')
    t.teardown(() => udp.close())
    udp.bind(0, '127.0.0.1')
    await once(udp, 'listening')
    const parts = split(String(udp.address().port))
    const tcp = net.connect(port, '127.0.0.1')
    t.teardown(() => tcp.destroy())
    await once(tcp, 'connect')
    for (const p of parts) {
      tcp.write(p)
      await sleep(10)
    }
    const [data] = (await withTimeout(once(udp, 'message'), 2000, `frame after ${JSON.stringify(parts)}`)) as [Buffer]
    t.is(numberOf(data), 1)
  }
})

test('maxClients: a registration over the limit is refused', async (t) => {
  const feed = new Feed()
  const { server, port, warnings } = await serve(t, feed, { maxClients: 1 })
  await rawClient(t, port)
  await withTimeout(
    (async () => {
      while (counters(server).clients !== 1) await sleep(5)
    })(),
    2000,
    'first client',
  )
  const second = await rawClient(t, port)
  await withTimeout(second.tcpClosed, 2000, 'second refused')
  t.regex(warnings[0]!.message, /already 1 clients \(maxClients\)/)
})

test('frames over 65507 bytes are skipped with a warning and counted; 65507 bytes still go', async (t) => {
  const input = [frame(0), frame(1, MAX_DATAGRAM + 1), frame(2, MAX_DATAGRAM), frame(3, 300_000), frame(4)]
  const source = fromItems(input) as Readable & { stop(): void }
  source.stop = () => source.destroy()
  const { server, port, warnings } = await serve(t, source, { wait: 1, skip: false })
  const src = regClient({ port, timeout: 100, retries: 1 })
  const got = await withTimeout(collect<Frame>(src), 5000, 'client')
  t.deepEqual(
    got.map((f) => numberOf(f.data)),
    [0, 2, 4],
  )
  t.true(got[1]!.data.equals(input[2]!.data))
  t.like(counters(server), { oversize: 2, drops: 2, frames: 3 })
  t.deepEqual(
    warnings.map((w) => w.code),
    ['ERR_FRAME_TOO_LARGE', 'ERR_FRAME_TOO_LARGE'],
  )
  t.is(warnings[0]!.message, 'reg-server: frame 1 is 65508 bytes, more than one UDP datagram holds (65507): skipped (1 so far)')
})

test('replies from unknown addresses are ignored and counted', async (t) => {
  const feed = new Feed()
  const { server, port } = await serve(t, feed)
  feed.add(frame(0))
  const c = await rawClient(t, port)
  const f = await c.frames.next()
  const stranger = dgram.createSocket('udp4')
  t.teardown(() => stranger.close())
  stranger.send('end', f.from.port, '127.0.0.1')
  await withTimeout(
    (async () => {
      while (counters(server).strays !== 1) await sleep(5)
    })(),
    2000,
    'stray counted',
  )
  t.is(counters(server).clients, 1)
})

// ---------------------------------------------------------------- reg-client failure modes

test('reg-client binds before it registers: a frame sent the instant the port arrives is received', async (t) => {
  const srv = await fakeServer(t)
  const udp = dgram.createSocket('udp4')
  udp.bind(0, '127.0.0.1')
  await once(udp, 'listening')
  const wanted = udp.address().port
  udp.close()
  const src = regClient({ port: srv.port, udpPort: wanted })
  const got = receive(src, 1)
  const reg = await srv.registrations.next()
  t.is(reg.text, String(wanted), 'the port as ASCII digits, nothing else')
  srv.send(payload(5), reg.port)
  const frames = await withTimeout(got, 3000, 'first frame')
  t.true(frames[0]!.data.equals(payload(5)))
  t.like(frames[0], { seq: 0, format: 'jpeg', width: 0, height: 0 })
  const continueReply = await srv.replies.next()
  t.is(continueReply.text, 'continue')
  t.is((await srv.replies.next()).text, 'end')
})

test('reg-client: a lost frame or reply is retried after `timeout`; the extra frame after the last continue is absorbed', async (t) => {
  const srv = await fakeServer(t)
  const src = regClient({ port: srv.port, timeout: 300 })
  const done = receive(src, 5)
  const { port } = await srv.registrations.next()
  let n = 0
  srv.send(payload(n++), port)
  // The reply to frame 0 is "lost": ignore it; the client sends it again.
  t.is((await srv.replies.next()).text, 'continue')
  t.is((await srv.replies.next(2000, 'resent continue')).text, 'continue')
  srv.send(payload(n++), port)
  // From here on a frame answers every continue, the way the original does, up to `end`.
  for (;;) {
    const r = await srv.replies.next(3000, 'reply')
    if (r.text === 'end') break
    t.is(r.text, 'continue')
    srv.send(payload(n++), port)
  }
  const got = await withTimeout(done, 3000, 'client')
  t.deepEqual(
    got.map((f) => numberOf(f.data)),
    Array.from({ length: got.length }, (_, i) => i),
  )
  // One frame after the last continue; a stalled test machine may add resends, each costing the server one more frame.
  t.true(counters(src).resends! >= 1)
  t.true(n - got.length >= 1 && n - got.length <= counters(src).resends!, `${n} sent, ${got.length} delivered`)
  await withTimeout(
    (async () => {
      while (!src.destroyed) await sleep(5)
    })(),
    2000,
    'closed',
  )
  t.is(counters(src).extra, 1)
})

test('reg-client: no frame at all is a clear error after retries', async (t) => {
  const srv = await fakeServer(t)
  const src = regClient({ port: srv.port, timeout: 60, retries: 2 })
  const retries: string[] = []
  src.on('retry', (e: { message: string }) => retries.push(e.message))
  const err = await t.throwsAsync(withTimeout(collect(src), 3000, 'client'), { instanceOf: FramePipeError })
  t.is(err!.code, 'ERR_NETWORK')
  t.is(err!.message, `reg-client: no frame from 127.0.0.1:${srv.port} for 180 ms since registering (3 × timeout 60 ms)`)
  t.is(retries.length, 2)
})

test('reg-client: the server closing the registration (as the original does when the next client registers) does not end the stream', async (t) => {
  const srv = await fakeServer(t)
  const src = regClient({ port: srv.port })
  const done = receive(src, 4)
  const reg = await srv.registrations.next()
  reg.socket.destroy()
  for (let i = 0; i < 5; i++) {
    await sleep(i === 0 ? 50 : 0)
    srv.send(payload(i), reg.port)
    const r = await srv.replies.next(2000, 'reply')
    if (r.text === 'end') break
  }
  const got = await withTimeout(done, 3000, 'client')
  t.deepEqual(
    got.map((f) => numberOf(f.data)),
    [0, 1, 2, 3],
  )
})

test('reg-client: a datagram that is not an image is dropped (counted) and answered; one from another address is ignored', async (t) => {
  const srv = await fakeServer(t)
  const src = regClient({ port: srv.port })
  const warnings: FramePipeError[] = []
  src.on('warning', (w: FramePipeError) => warnings.push(w))
  const done = receive(src, 2)
  const { port } = await srv.registrations.next()
  srv.send(Buffer.from('garbage'), port)
  t.is((await srv.replies.next()).text, 'continue')
  const stranger = dgram.createSocket('udp4')
  t.teardown(() => stranger.close())
  stranger.bind(0, '127.0.0.2')
  await once(stranger, 'listening')
  srv.send(payload(99), port, stranger)
  srv.send(payload(0), port)
  t.is((await srv.replies.next()).text, 'continue')
  srv.send(payload(1), port)
  const got = await withTimeout(done, 3000, 'client')
  t.deepEqual(
    got.map((f) => numberOf(f.data)),
    [0, 1],
  )
  t.like(counters(src), { drops: 1, strays: 1, frames: 2 })
  t.deepEqual(
    warnings.map((w) => w.code),
    ['ERR_BAD_FRAME', 'ERR_NETWORK'],
  )
  t.is(srv.replies.all.filter((r) => r.from.address !== '127.0.0.1').length, 0)
})

test('reg-client: a slow consumer holds the reply (the server waits), a frame that comes meanwhile replaces the parked one', async (t) => {
  const srv = await fakeServer(t)
  const src = regClient({ port: srv.port, timeout: 5000 })
  const { port } = await srv.registrations.next()
  // Nobody reads yet: the readable buffer (4 frames) fills, then the reply is held.
  for (let i = 0; i < 3; i++) {
    srv.send(payload(i), port)
    t.is((await srv.replies.next(3000, `reply ${i}`)).text, 'continue')
  }
  srv.send(payload(3), port)
  t.true(await srv.replies.none(100), 'no reply while downstream is full')
  srv.send(payload(4), port) // e.g. a resend: parked
  srv.send(payload(5), port) // replaces it
  await sleep(50)
  const got: Frame[] = []
  for await (const f of src) {
    got.push(f as Frame)
    if (got.length === 5) break
  }
  t.deepEqual(
    got.map((f) => numberOf(f.data)),
    [0, 1, 2, 3, 5],
  )
  t.is(counters(src).drops, 1)
  t.is((await srv.replies.next(3000, 'held reply')).text, 'continue')
})

for (const dedupe of [true, false]) {
  test(`reg-client: a datagram that arrives twice is answered twice and ${dedupe ? 'delivered once (dedupe, counted)' : 'delivered twice (dedupe=false)'}`, async (t) => {
    const srv = await fakeServer(t)
    const src = regClient({ port: srv.port, dedupe })
    const done = receive(src, dedupe ? 2 : 3)
    const { port } = await srv.registrations.next()
    srv.send(payload(0), port)
    srv.send(payload(0), port)
    t.is((await srv.replies.next()).text, 'continue')
    t.is((await srv.replies.next()).text, 'continue')
    srv.send(payload(1), port)
    const got = await withTimeout(done, 3000, 'client')
    t.deepEqual(
      got.map((f) => numberOf(f.data)),
      dedupe ? [0, 1] : [0, 0, 1],
    )
    t.deepEqual(
      got.map((f) => f.seq),
      dedupe ? [0, 1] : [0, 1, 2],
    )
    t.is(counters(src).repeats, dedupe ? 1 : 0)
  })
}

test('reg-server: a log that cannot be opened is one ERR_IO at start, naming the path', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  await writeFile(join(dir, 'week13'), 'a file, not a directory')
  const log = join(dir, 'week13', 'ServerLog.txt')
  const err = await t.throwsAsync(withTimeout(pipeline(new Feed(), regServer({ port: 0, log })), 3000, 'pipeline'), {
    instanceOf: FramePipeError,
  })
  t.is(err!.code, 'ERR_IO')
  t.true(err!.message.startsWith(`reg-server: cannot open log '${log}': `), err!.message)
})
