// The http sink (viewer, MJPEG, snapshot, stats) and the http source, over
// real loopback HTTP on port 0; the source also against hand-made servers that
// speak the way real cameras and mjpg-streamer do.

import test, { type ExecutionContext } from 'ava'
import http from 'node:http'
import net, { type AddressInfo, type Socket } from 'node:net'
import { once } from 'node:events'
import { PassThrough, Readable } from 'node:stream'
import { makeFrame, now, type Frame } from '../../src/core/frame.js'
import { pipeline, stopSource } from '../../src/core/pipeline.js'
import { httpSink, spec as sinkSpec, type ViewerStats } from '../../src/sinks/http.js'
import { httpSource } from '../../src/sources/http.js'
import type { HttpSink } from '../../src/net/http/viewer.js'
import type { HttpSource } from '../../src/net/http/client.js'
import { testsrc } from '../../src/sources/testsrc.js'
import type { ClientEvent } from '../../src/net/socket.js'
import { stageInfo, type Staged } from '../../src/core/stage.js'
import { fromItems, withTimeout } from '../helpers/index.js'

// ---------------------------------------------------------------- helpers

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A JPEG-shaped payload carrying its index: FF D8 FF, u32 index, filler, FF D9. */
function fakeJpeg(i: number, size: number): Buffer {
  const b = Buffer.alloc(Math.max(size, 9), (i * 7) & 0xff)
  b[0] = 0xff
  b[1] = 0xd8
  b[2] = 0xff
  b.writeUInt32BE(i, 3)
  b[b.length - 2] = 0xff
  b[b.length - 1] = 0xd9
  return b
}
const indexOf = (data: Buffer): number => data.readUInt32BE(3)

function frameOf(i: number, size = 1000): Frame {
  return makeFrame(fakeJpeg(i, size), { seq: i, timestamp: now() })
}

/** Frames 0..n-1, one every `interval` ms, pulled on demand; `gate` holds the first. */
function paced(n: number, interval: number, size: (i: number) => number, gate?: Promise<unknown>, onFrame?: (i: number) => void): Readable {
  return Readable.from(
    (async function* () {
      await gate
      for (let i = 0; i < n; i++) {
        if (i > 0) await sleep(interval)
        onFrame?.(i)
        yield frameOf(i, size(i))
      }
    })(),
    { objectMode: true, highWaterMark: 1 },
  )
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  await withTimeout(
    (async () => {
      while (!cond()) await sleep(10)
    })(),
    ms,
    what,
  )
}

interface Running {
  sink: Staged<HttpSink>
  url: string
  done: Promise<void>
  events: ClientEvent[]
}

/** Start `source ! http` and wait until it listens. */
async function serve(t: ExecutionContext, source: Readable, options: Parameters<typeof httpSink>[0] = {}): Promise<Running> {
  const sink = httpSink({ port: 0, ...options })
  const events: ClientEvent[] = []
  sink.on('client', (e: ClientEvent) => events.push(e))
  const done = pipeline(source, sink)
  // Failures are asserted where they are awaited; keep an early one from being unhandled.
  done.catch(() => undefined)
  t.teardown(() => {
    source.destroy()
    sink.destroy()
  })
  if (!sink.address()) await withTimeout(once(sink, 'listening'), 5000, 'listening')
  return { sink, url: sink.url()!, done, events }
}

/** Collect what an http source emits (until it ends, or the first `n` frames: then stop() and drain). */
async function take(source: Staged<HttpSource>, n = Infinity): Promise<Frame[]> {
  const out: Frame[] = []
  for await (const f of source as AsyncIterable<Frame>) {
    out.push(f)
    if (out.length === n) stopSource(source)
  }
  return out.slice(0, n)
}

/** A hand-made TCP server that answers each connection with `serveOne`; closed at teardown. */
async function rawServer(
  t: ExecutionContext,
  serveOne: (socket: Socket, n: number) => void,
  port = 0,
): Promise<{ port: number; close: () => Promise<void>; connections: () => number }> {
  const sockets = new Set<Socket>()
  let n = 0
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', (err) => t.log(`raw server socket: ${err.message}`))
    // Wait for the request head, then answer.
    let head = ''
    const onData = (d: Buffer) => {
      head += d.toString('latin1')
      if (head.includes('\r\n\r\n')) {
        socket.off('data', onData)
        socket.resume()
        serveOne(socket, n++)
      }
    }
    socket.on('data', onData)
  })
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  const close = async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  }
  t.teardown(close)
  return { port: (server.address() as AddressInfo).port, close, connections: () => n }
}

function part(data: Buffer, boundary: string, eol = '\r\n', length = true): Buffer {
  return Buffer.concat([
    Buffer.from(`--${boundary}${eol}Content-Type: image/jpeg${eol}${length ? `Content-Length: ${data.length}${eol}` : ''}${eol}`, 'latin1'),
    data,
    Buffer.from(eol, 'latin1'),
  ])
}

async function getJson(url: string): Promise<ViewerStats> {
  const res = await fetch(url)
  return (await res.json()) as ViewerStats
}

// ---------------------------------------------------------------- sink + source

test('frame-pipe to frame-pipe over HTTP: every frame byte for byte, with seq and capture time', async (t) => {
  const sizes = (i: number) => [100, 70_000, 9, 300_000, 4096][i % 5]!
  const sent: Frame[] = []
  const source = new PassThrough({ objectMode: true })
  const { url, done } = await serve(t, source, { lazy: true, maxQueue: 64 })
  const viewer = httpSource({ url: url + 'stream.mjpg', reconnect: false })
  const got = take(viewer)
  for (let i = 0; i < 40; i++) {
    const f = frameOf(i, sizes(i))
    sent.push(f)
    if (!source.write(f)) await once(source, 'drain')
  }
  source.end()
  await withTimeout(done, 10_000, 'sink')
  const frames = await withTimeout(got, 10_000, 'viewer')
  t.is(frames.length, 40)
  frames.forEach((f, i) => {
    t.true(f.data.equals(sent[i]!.data), `frame ${i} intact`)
    t.is(f.seq, i)
    t.is(f.format, 'jpeg')
    t.true(Math.abs(f.timestamp - sent[i]!.timestamp) < 0.002, `frame ${i} keeps its capture time`)
  })
})

test('/snapshot.jpg: 503 before the first frame, then the latest frame at once', async (t) => {
  const source = new PassThrough({ objectMode: true })
  const { sink, url, done } = await serve(t, source)
  const before = await fetch(url + 'snapshot.jpg')
  t.is(before.status, 503)
  t.regex(await before.text(), /no frame yet/)
  source.write(frameOf(0, 500))
  source.write(frameOf(1, 600))
  await until('2 frames', () => sink.stats().frames === 2)
  const res = await fetch(url + 'snapshot.jpg')
  t.is(res.status, 200)
  t.is(res.headers.get('content-type'), 'image/jpeg')
  t.is(res.headers.get('x-seq'), '1')
  t.true(Buffer.from(await res.arrayBuffer()).equals(fakeJpeg(1, 600)))
  source.end()
  await withTimeout(done, 5000, 'end')
})

test('/stats: the numbers as JSON, with viewers and per-viewer counts', async (t) => {
  const source = testsrc({ width: 160, height: 120, fps: 40, format: 'jpeg' })
  const { sink, url, done } = await serve(t, source)
  await until('20 frames', () => sink.stats().frames >= 20)
  const s = await getJson(url + 'stats')
  t.like(s, { width: 160, height: 120, viewers: 0, drops: 0, paused: false })
  t.true(s.fps > 0 && s.fps < 1000, `fps ${s.fps}`)
  t.true(s.bytesPerSec > 0)
  t.true(s.frames >= 20)
  t.true(s.seq >= 19)
  t.true(s.frameBytes > 100)
  t.true(s.uptime > 0)
  t.truthy(s.latencyMs)
  t.true(s.latencyMs!.mean >= 0 && s.latencyMs!.max >= s.latencyMs!.mean)
  const viewer = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(url + 'stream.mjpg', resolve).on('error', reject))
  let received = 0
  viewer.on('data', (d: Buffer) => {
    received += d.length
  })
  await until('a frame received', () => received > 1000)
  // The latest frame goes out on joining, new ones as they come.
  await until('more frames', () => (sink.stats().clients[0]?.sent ?? 0) >= 3)
  const v = await getJson(url + 'stats')
  t.is(v.viewers, 1)
  t.is(v.clients.length, 1)
  t.true(v.clients[0]!.sent >= 3)
  t.is(v.clients[0]!.drops, 0)
  t.true(v.frames > s.frames)
  viewer.destroy()
  await until('viewer gone', () => sink.stats().viewers === 0)
  stopSource(source)
  await withTimeout(done, 5000, 'end')
  t.is(sink.stats().viewers, 0)
})

test('basic auth guards every route; the source sends credentials from its URL', async (t) => {
  const source = new PassThrough({ objectMode: true })
  const { url, done } = await serve(t, source, { auth: 'ann:pa:ss' })
  source.write(frameOf(0))
  for (const path of ['', 'stats', 'snapshot.jpg', 'stream.mjpg', 'nope']) {
    const res = await fetch(url + path)
    t.is(res.status, 401, `/${path} without credentials`)
    t.regex(res.headers.get('www-authenticate') ?? '', /^Basic realm="frame-pipe"/)
    await res.arrayBuffer()
    const wrong = await fetch(url + path, { headers: { Authorization: 'Basic ' + Buffer.from('ann:nope').toString('base64') } })
    t.is(wrong.status, 401, `/${path} with a wrong password`)
    await wrong.arrayBuffer()
  }
  const good = { Authorization: 'Basic ' + Buffer.from('ann:pa:ss').toString('base64') }
  t.is((await fetch(url + 'stats', { headers: good })).status, 200)
  const page = await fetch(url, { headers: good })
  t.is(page.status, 200)
  await page.arrayBuffer()
  const viewer = httpSource({ url: url.replace('http://', 'http://ann:pa%3Ass@') + 'stream.mjpg' })
  const frames = await withTimeout(take(viewer, 1), 5000, 'authenticated viewer')
  t.is(indexOf(frames[0]!.data), 0)
  const refused = httpSource({ url: url + 'stream.mjpg' })
  const err = await t.throwsAsync(take(refused))
  t.regex(err!.message, /answered 401/)
  source.end()
  await withTimeout(done, 5000, 'end')
})

test('binds 127.0.0.1 on port 8080 unless told otherwise', async (t) => {
  t.is(sinkSpec.options.host.default, '127.0.0.1')
  t.is(sinkSpec.options.port.default, 8080)
  const { sink, url } = await serve(t, new PassThrough({ objectMode: true }))
  t.is(sink.address()!.address, '127.0.0.1')
  t.regex(url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
})

test('frames that are not JPEG are refused with the fix in the message', async (t) => {
  const raw = makeFrame(Buffer.alloc(640 * 480 * 3), { format: 'raw', width: 640, height: 480, channels: 3 })
  const sink = httpSink({ port: 0 })
  const err = await t.throwsAsync(pipeline(fromItems([raw]), sink))
  t.is((err as { code?: string }).code, 'ERR_BAD_FRAME')
  t.regex(err!.message, /^http: expected JPEG frames but received a raw 640x480 frame .*insert jpeg before http$/)
  const bytes = await t.throwsAsync(pipeline(fromItems([Buffer.from([0xff, 0xd8, 0xff])]), httpSink({ port: 0 })))
  t.regex(bytes!.message, /expected a Frame but received a Buffer of 3 bytes; insert unprefix before http/)
})

test('the page, unknown paths and other methods', async (t) => {
  const { url } = await serve(t, new PassThrough({ objectMode: true }))
  const page = await fetch(url)
  t.is(page.status, 200)
  t.is(page.headers.get('content-type'), 'text/html; charset=utf-8')
  const html = await page.text()
  t.regex(html, /<img id="view" src="stream\.mjpg"/)
  t.regex(html, /fetch\('stats'/)
  const missing = await fetch(url + 'nope')
  t.is(missing.status, 404)
  t.regex(await missing.text(), /try \/, \/stream\.mjpg/)
  const post = await fetch(url + 'stats', { method: 'POST' })
  t.is(post.status, 405)
  await post.arrayBuffer()
})

test('viewers are logged as they join and leave; at the end their streams end and the server closes', async (t) => {
  const source = new PassThrough({ objectMode: true })
  const { url, done, events } = await serve(t, source)
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(url + 'stream.mjpg', resolve).on('error', reject))
  t.is(res.headers['content-type'], 'multipart/x-mixed-replace; boundary=frame-pipe-boundary')
  t.is(res.headers['transfer-encoding'], undefined)
  let body = ''
  res.on('data', (d: Buffer) => {
    body += d.toString('latin1')
  })
  await until('join', () => events.length === 1)
  t.like(events[0], { event: 'join' })
  source.write(frameOf(5, 50))
  await until('a part', () => body.includes('X-Seq: 5'))
  t.regex(body, /^--frame-pipe-boundary\r\nContent-Type: image\/jpeg\r\nContent-Length: 50\r\nX-Timestamp: \d+\.\d{6}\r\nX-Seq: 5\r\n\r\n/)
  t.true(body.endsWith('\xff\xd9\r\n--frame-pipe-boundary\r\n'))
  source.end()
  await withTimeout(Promise.all([done, once(res, 'end')]), 5000, 'end')
  t.like(events[1], { event: 'leave', peer: events[0]!.peer, reason: 'end', drops: 0 })
  await t.throwsAsync(fetch(url + 'stats'))
})

test('maxViewers: one viewer too many gets 503 and is logged', async (t) => {
  const source = new PassThrough({ objectMode: true })
  const { url, events } = await serve(t, source, { maxViewers: 1 })
  const first = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(url + 'stream.mjpg', resolve).on('error', reject))
  t.teardown(() => first.destroy())
  const second = await fetch(url + 'stream.mjpg')
  t.is(second.status, 503)
  t.regex(await second.text(), /too many viewers \(maxViewers=1\)/)
  t.like(events[1], { event: 'leave', reason: 'refused: already 1 viewers (maxViewers)' })
})

test('a viewer that never reads costs the others nothing: the source is never blocked and the fast viewer keeps up', async (t) => {
  const N = 100
  let open!: () => void
  const gate = new Promise<void>((resolve) => {
    open = resolve
  })
  const dropsAt: Record<number, ViewerStats['clients']> = {}
  let sink: Staged<HttpSink> | undefined
  const source = paced(
    N,
    10,
    () => 128 * 1024,
    gate,
    (i) => {
      if (i === 50 || i === N - 1) dropsAt[i] = sink!.stats().clients
    },
  )
  const running = await serve(t, source, { linger: 300 })
  sink = running.sink
  const port = sink.address()!.port
  // A viewer that sends its request and never reads a byte.
  const stalled = net.connect(port, '127.0.0.1', () => stalled.write('GET /stream.mjpg HTTP/1.1\r\nHost: localhost\r\n\r\n'))
  stalled.pause()
  stalled.on('error', () => t.log('stalled viewer was cut off'))
  t.teardown(() => stalled.destroy())
  await until('stalled join', () => running.events.length === 1)
  const fast = httpSource({ url: running.url + 'stream.mjpg', reconnect: false })
  const got = take(fast)
  await until('fast join', () => running.events.length === 2)
  const stalledPeer = `127.0.0.1:${stalled.localPort}`
  open()
  await withTimeout(running.done, 20_000, 'the source never blocked')
  const frames = await withTimeout(got, 5000, 'fast viewer')
  t.true(frames.length >= N * 0.9, `fast viewer got ${frames.length} of ${N}`)
  const ids = frames.map((f) => indexOf(f.data))
  t.deepEqual(
    ids,
    [...ids].sort((a, b) => a - b),
    'in order',
  )
  const early = dropsAt[50]!.find((c) => c.peer === stalledPeer)!
  const late = dropsAt[N - 1]!.find((c) => c.peer === stalledPeer)!
  t.true(late.drops > early.drops && late.drops >= 20, `stalled viewer drops ${early.drops} → ${late.drops}`)
  t.true(late.queued <= 2)
  const fastStats = dropsAt[N - 1]!.find((c) => c.peer !== stalledPeer)!
  t.true(fastStats.drops <= N * 0.1, `fast viewer drops ${fastStats.drops}`)
  t.log(
    `fast viewer: ${frames.length}/${N} frames, ${fastStats.drops} drops; stalled viewer: drops ${early.drops} at frame 50, ${late.drops} at frame ${N - 1}`,
  )
})

test('lazy: the source stays paused until the first viewer and pauses again after the last', async (t) => {
  const source = testsrc({ width: 64, height: 48, fps: 200, format: 'jpeg' })
  const produced = () => stageInfo(source)!.counters.frames
  const { sink, url, done } = await serve(t, source, { lazy: true })
  await sleep(300)
  t.true(produced() <= 5, `produced ${produced()} frames with nobody watching`)
  t.like(sink.stats(), { frames: 0, paused: true })
  const viewer = httpSource({ url: url + 'stream.mjpg', reconnect: false })
  const frames = await withTimeout(take(viewer, 20), 5000, 'viewer')
  t.is(frames.length, 20)
  t.is(frames[0]!.seq, 0, 'the held frame is the first one shown')
  t.true(produced() >= 20)
  await until('viewer left', () => sink.stats().viewers === 0)
  const after = produced()
  await sleep(300)
  t.true(produced() - after <= 5, `${produced() - after} frames produced after the last viewer left`)
  t.true(sink.stats().paused)
  // A stopped source drains once the sink stops waiting for viewers.
  stopSource(source)
  sink.release()
  await withTimeout(done, 5000, 'clean end')
})

// ---------------------------------------------------------------- source vs hand-made servers

test('source: chunked transfer encoding, chunks cut anywhere', async (t) => {
  const frames = [0, 1, 2, 3].map((i) => fakeJpeg(i, 3000 + i * 517))
  const body = Buffer.concat(frames.map((f) => part(f, '--myboundary'.slice(2))))
  const { port } = await rawServer(t, (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=--myboundary\r\nTransfer-Encoding: chunked\r\n\r\n')
    let pos = 0
    let k = 1
    while (pos < body.length) {
      const n = Math.min(body.length - pos, ((k++ * 977) % 2500) + 1)
      socket.write(`${n.toString(16)}\r\n`)
      socket.write(body.subarray(pos, pos + n))
      socket.write('\r\n')
      pos += n
    }
    socket.end('0\r\n\r\n')
  })
  const got = await withTimeout(take(httpSource({ url: `http://127.0.0.1:${port}/video`, reconnect: false })), 5000, 'frames')
  t.deepEqual(
    got.map((f) => f.data.toString('hex')),
    frames.map((f) => f.toString('hex')),
  )
})

test('source: mjpg-streamer style, parts without Content-Length, HTTP/1.0, boundary after each frame', async (t) => {
  const frames = [0, 1, 2].map((i) => fakeJpeg(i, 20_000 + i))
  const { port } = await rawServer(t, (socket) => {
    socket.write(
      'HTTP/1.0 200 OK\r\nServer: MJPG-Streamer/0.2\r\nContent-Type: multipart/x-mixed-replace;boundary=boundarydonotcross\r\n\r\n--boundarydonotcross\r\n',
    )
    for (const f of frames) {
      socket.write(`Content-Type: image/jpeg\r\nX-Timestamp: ${(Date.now() / 1000).toFixed(6)}\r\n\r\n`)
      socket.write(f)
      socket.write('\r\n--boundarydonotcross\r\n')
    }
    socket.end()
  })
  const source = httpSource({ url: `http://127.0.0.1:${port}/?action=stream`, reconnect: false })
  const got = await withTimeout(take(source), 5000, 'frames')
  t.deepEqual(
    got.map((f) => f.data.toString('hex')),
    frames.map((f) => f.toString('hex')),
  )
  t.true(
    got.every((f) => Math.abs(f.timestamp - Date.now()) < 60_000),
    'capture time from X-Timestamp',
  )
  t.deepEqual(
    got.map((f) => f.seq),
    [0, 1, 2],
  )
})

test('source: no boundary in the Content-Type, LF line ends and stray CRLFs: the boundary is found', async (t) => {
  const frames = [0, 1, 2].map((i) => fakeJpeg(i, 700))
  const { port } = await rawServer(t, (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace\r\nConnection: close\r\n\r\n\r\n')
    for (const f of frames) socket.write(Buffer.concat([Buffer.from('\r\n'), part(f, 'ipcamera', '\n')]))
    socket.end('--ipcamera--\n')
  })
  const got = await withTimeout(take(httpSource({ url: `http://127.0.0.1:${port}/`, reconnect: false })), 5000, 'frames')
  t.deepEqual(
    got.map((f) => indexOf(f.data)),
    [0, 1, 2],
  )
})

test('source: reconnects with backoff after the server restarts', async (t) => {
  let first = await rawServer(t, (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=b0undary\r\nConnection: close\r\n\r\n')
    for (let i = 0; i < 3; i++) socket.write(part(fakeJpeg(i, 500), 'b0undary'))
    // The server dies without a goodbye.
    setTimeout(() => socket.destroy(), 50)
  })
  const port = first.port
  const source = httpSource({ url: `http://127.0.0.1:${port}/stream.mjpg`, retryMin: 50, retryMax: 200 })
  const events: string[] = []
  for (const e of ['connect', 'disconnect', 'retry'] as const) source.on(e, () => events.push(e))
  const got = take(source, 6)
  await until('first three', () => events.includes('disconnect'))
  await first.close()
  await sleep(300)
  first = await rawServer(
    t,
    (socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=b0undary\r\nConnection: close\r\n\r\n')
      for (let i = 3; i < 6; i++) socket.write(part(fakeJpeg(i, 500), 'b0undary'))
    },
    port,
  )
  const frames = await withTimeout(got, 10_000, 'six frames')
  t.deepEqual(
    frames.map((f) => indexOf(f.data)),
    [0, 1, 2, 3, 4, 5],
  )
  t.is(events.filter((e) => e === 'connect').length, 2)
  t.true(events.filter((e) => e === 'retry').length >= 2, events.join(' '))
})

test('source: 503 is retried, 404 and a page that is not MJPEG are errors', async (t) => {
  const { port } = await rawServer(t, (socket, n) => {
    if (n < 2) return void socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=x1x1x1\r\nConnection: close\r\n\r\n')
    socket.end(part(fakeJpeg(9, 100), 'x1x1x1'))
  })
  const source = httpSource({ url: `http://127.0.0.1:${port}/`, retryMin: 20 })
  const retries: string[] = []
  source.on('retry', (e: { message: string }) => retries.push(e.message))
  const frames = await withTimeout(take(source, 1), 5000, 'after 503s')
  t.is(indexOf(frames[0]!.data), 9)
  t.is(retries.length, 2)
  t.regex(retries[0]!, /answered 503 Service Unavailable; retrying in 20 ms/)

  const notFound = await rawServer(t, (socket) => socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'))
  const e404 = await t.throwsAsync(take(httpSource({ url: `http://127.0.0.1:${notFound.port}/cam` })))
  t.is(e404!.message, `http: GET http://127.0.0.1:${notFound.port}/cam answered 404 Not Found`)

  const html = await rawServer(t, (socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi'))
  const eHtml = await t.throwsAsync(take(httpSource({ url: `http://127.0.0.1:${html.port}/` })))
  t.regex(eHtml!.message, /answered with text\/html, not an MJPEG stream/)
})

test('source: without reconnect, a refused connection is one clear error', async (t) => {
  const closed = await rawServer(t, (socket) => socket.end())
  await closed.close()
  const err = await t.throwsAsync(take(httpSource({ url: `http://127.0.0.1:${closed.port}/stream.mjpg`, reconnect: false })))
  t.is((err as { code?: string }).code, 'ERR_NETWORK')
  t.is(err!.message, `http: connection refused by http://127.0.0.1:${closed.port}/stream.mjpg (is the server running?)`)
})

test('source: a part larger than maxFrameBytes is an error (reconnect=false), raised before the memory is set aside', async (t) => {
  const { port } = await rawServer(t, (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=b\r\n\r\n')
    socket.write('--b\r\nContent-Type: image/jpeg\r\nContent-Length: 4294967296\r\n\r\n')
  })
  // With reconnect (the default) the connection is retried instead: test/attack/http-source.test.ts.
  const err = await t.throwsAsync(take(httpSource({ url: `http://127.0.0.1:${port}/`, maxFrameBytes: 1 << 20, reconnect: false })))
  t.is((err as { code?: string }).code, 'ERR_FRAME_TOO_LARGE')
  t.regex(err!.message, /4294967296 bytes, more than maxFrameBytes \(1048576\)/)
})

test('source: a server that goes quiet is dropped after `timeout` and retried', async (t) => {
  const { port, connections } = await rawServer(t, (socket, n) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=qq1\r\n\r\n')
    socket.write(part(fakeJpeg(n, 100), 'qq1'))
    // …and then nothing.
  })
  const source = httpSource({ url: `http://127.0.0.1:${port}/`, timeout: 300, retryMin: 20 })
  const reasons: string[] = []
  source.on('disconnect', (e: { reason: string }) => reasons.push(e.reason))
  const frames = await withTimeout(take(source, 2), 10_000, 'two connections')
  const ids = frames.map((f) => indexOf(f.data))
  // Each connection sends its own number: the second frame came over a new connection.
  t.true(ids[1]! > ids[0]!, `connections ${ids.join(', ')}`)
  t.true(connections() >= 2)
  t.is(reasons[0], 'ETIMEDOUT')
})

test('source: a snapshot URL gives one frame, or one every `every`', async (t) => {
  const src = testsrc({ width: 64, height: 48, fps: 50, format: 'jpeg' })
  const { url, sink } = await serve(t, src)
  await until('a frame', () => sink.stats().frames > 0)
  const once_ = await withTimeout(take(httpSource({ url: url + 'snapshot.jpg' })), 5000, 'one snapshot')
  t.is(once_.length, 1)
  t.is(once_[0]!.format, 'jpeg')
  const poller = httpSource({ url: url + 'snapshot.jpg', every: 60 })
  let connects = 0
  poller.on('connect', () => connects++)
  const started = performance.now()
  const polled = await withTimeout(take(poller, 4), 5000, 'polled snapshots')
  t.is(polled.length, 4)
  // One request per image, one 'connect' in the log.
  t.is(connects, 1)
  // Paced by `every`: four fetches cannot take less than three intervals.
  t.true(performance.now() - started >= 3 * 60 - 5)
  const seqs = polled.map((f) => f.seq)
  t.true(
    seqs.every((s, i) => i === 0 || s >= seqs[i - 1]!),
    `seqs ${seqs.join(',')} never go back`,
  )
  stopSource(src)
})
