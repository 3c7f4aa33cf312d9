// Attacks on the HTTP stages (issue 10, items 2, 4 and 6 for /stream.mjpg):
// hostile redirects to the http source; idle, slow and never-reading
// connections to the http sink. The process stays up and serves the next
// well-behaved peer.

import test from 'ava'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { readdir, readFile } from 'node:fs/promises'
import http from 'node:http'
import https from 'node:https'
import net, { type AddressInfo, type Socket } from 'node:net'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { FramePipeError } from '../../src/core/errors.js'
import { makeFrame, now, type Frame } from '../../src/core/frame.js'
import { pipeline, stopSource } from '../../src/core/pipeline.js'
import { stageInfo, type Counters } from '../../src/core/stage.js'
import { httpSink } from '../../src/sinks/http.js'
import { httpSource } from '../../src/sources/http.js'
import { tempDir, withTimeout } from '../helpers/index.js'
import { figure, procStats, startCli, until } from './helpers.js'

/** Resolves when the socket closes, whatever ended it (a reset from the server included: 'error' does not reject). */
function closed(s: net.Socket): Promise<void> {
  return s.destroyed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve()))
}

const counters = (s: object): Counters => stageInfo(s as never)!.counters

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

/** A server that answers every request with `answer`; its URL. */
async function server(
  t: { teardown(fn: () => void): void },
  answer: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<{ url: string; requests: http.IncomingMessage[] }> {
  const requests: http.IncomingMessage[] = []
  const s = http.createServer((req, res) => {
    requests.push(req)
    answer(req, res)
  })
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    s.closeAllConnections()
    s.close()
  })
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, requests }
}

async function firstError(source: Readable): Promise<unknown> {
  try {
    for await (const _ of source) {
      // Frames are not expected.
    }
  } catch (err) {
    return err
  }
  return undefined
}

test('http source: redirects to ftp:, file:, a malformed Location or in a loop are one clear error, never an uncaught TypeError', async (t) => {
  const uncaught: unknown[] = []
  const onUncaught = (err: unknown) => uncaught.push(err)
  process.on('uncaughtException', onUncaught)
  t.teardown(() => process.off('uncaughtException', onUncaught))
  const loop = await server(t, (_req, res) => {
    res.writeHead(302, { Location: '/again' })
    res.end()
  })
  const cases: Array<[string, RegExp]> = [
    ['ftp://127.0.0.1/x.mjpg', /redirects to ftp: .*only http and https are; not followed$/],
    ['file:///etc/passwd', /redirects to file: .*not followed$/],
    ['http://[::1', /redirects to a malformed Location "http:\/\/\[::1"; not followed$/],
    ['http://exa mple.com/', /redirects to a malformed Location/],
  ]
  for (const [location, message] of cases) {
    const s = await server(t, (_req, res) => {
      res.writeHead(302, { Location: location })
      res.end()
    })
    // reconnect is on by default: a redirect we will not follow is still an error, like a 4xx.
    const err = await withTimeout(firstError(httpSource({ url: s.url + '/stream.mjpg' })), 5000, location)
    t.true(err instanceof FramePipeError, location)
    t.is((err as FramePipeError).code, 'ERR_NETWORK')
    t.regex((err as Error).message, message)
  }
  const err = await withTimeout(firstError(httpSource({ url: loop.url + '/' })), 5000, 'redirect loop')
  t.regex((err as Error).message, /redirects a 6th time in a row/)
  t.is(loop.requests.length, 6)
  t.deepEqual(uncaught, [])
  figure(t, '2', { hostileRedirects: cases.length + 1, clearErrors: cases.length + 1, uncaught: uncaught.length })
})

test('http source: an https → http redirect is not followed; credentials never follow a redirect to another origin', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    join(dir, 'key.pem'),
    '-out',
    join(dir, 'cert.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ])
  const cert = await readFile(join(dir, 'cert.pem'))
  const plain = await server(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'image/jpeg' })
    res.end(fakeJpeg(1, 100))
  })
  const secure = https.createServer({ key: await readFile(join(dir, 'key.pem')), cert }, (_req, res) => {
    res.writeHead(302, { Location: plain.url + '/snapshot.jpg' })
    res.end()
  })
  await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve))
  t.teardown(() => secure.close())
  const err = await withTimeout(
    firstError(httpSource({ url: `https://127.0.0.1:${(secure.address() as AddressInfo).port}/`, ca: join(dir, 'cert.pem') })),
    5000,
    'downgrade',
  )
  t.regex((err as Error).message, /redirects from https down to http .*not followed$/)
  t.is(plain.requests.length, 0, 'the http URL was never fetched')

  // Credentials stay with their origin.
  const origin = await server(t, (_req, res) => {
    res.writeHead(302, { Location: plain.url + '/snapshot.jpg' })
    res.end()
  })
  const frames: Frame[] = []
  for await (const f of httpSource({ url: origin.url.replace('http://', 'http://user:secret@') + '/' })) frames.push(f as Frame)
  t.is(frames.length, 1)
  t.truthy(origin.requests[0]!.headers.authorization)
  t.is(plain.requests[0]!.headers.authorization, undefined)
})

test('http source with reconnect: a server that sends a part over maxFrameBytes is retried, and its next good stream is read', async (t) => {
  let n = 0
  const s = await server(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'multipart/x-mixed-replace; boundary=b' })
    if (n++ === 0) {
      res.write('--b\r\nContent-Type: image/jpeg\r\nContent-Length: 4294967296\r\n\r\n')
      return
    }
    const jpeg = fakeJpeg(n, 200)
    res.write(`--b\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`)
    res.end(Buffer.concat([jpeg, Buffer.from('\r\n--b--\r\n')]))
  })
  const source = httpSource({ url: s.url + '/', maxFrameBytes: 1 << 20, retryMin: 20 })
  const frames: Frame[] = []
  for await (const f of source) {
    frames.push(f as Frame)
    stopSource(source)
  }
  t.is(frames.length, 1)
  t.is(counters(source).badPeers, 1)
  t.is(frames[0]!.peer, s.url + '/')
})

// ---------------------------------------------------------------- the sink

async function fileCount(dir: string): Promise<number> {
  return (await readdir(dir)).filter((f) => !f.startsWith('.')).length
}

/** Connect from `localAddress` (127.0.0.x: loopback takes them all); resolves once connected, or with null when refused. */
function openIdle(port: number, localAddress: string): Promise<Socket | null> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress })
    s.on('error', () => resolve(null))
    s.once('connect', () => resolve(s))
  })
}

test('CLI http sink: 1100 idle connections under a 1024-descriptor limit cost neither the files sink nor later viewers', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const cli = startCli(t, `testsrc fps=20 width=160 height=120 ! jpeg ! http port=0 headerTimeout=2s ! files dir=${dir}`, { fdLimit: 1024 })
  const port = await cli.port('http')
  await until(() => (cli.counters(3)?.frames ?? 0) > 0, 10_000, 'the first files')
  const before = procStats(cli.pid)
  const sockets: Socket[] = []
  t.teardown(() => {
    for (const s of sockets) s.destroy()
  })
  // Eleven attacking addresses, 100 connections each: over maxPerAddress (32) each, over maxConnections (128) in all.
  for (let a = 0; a < 11; a++) {
    const opened = await Promise.all(Array.from({ length: 100 }, () => openIdle(port, `127.0.0.${2 + a}`)))
    for (const s of opened) if (s) sockets.push(s)
  }
  const filesDuring = await fileCount(dir)
  const during = procStats(cli.pid)
  t.true(during.fds <= before.fds + 128 + 4, `fds ${before.fds} → ${during.fds}`)
  // The files sink in the same process goes on writing.
  await until(() => (cli.counters(3)?.frames ?? 0) >= filesDuring + 20, 10_000, 'files written during the attack')
  // Idle connections get headerTimeout: then a viewer is served again.
  const started = Date.now()
  let status = 0
  while (status !== 200) {
    status = await fetch(`http://127.0.0.1:${port}/snapshot.jpg`)
      .then(async (r) => {
        await r.arrayBuffer()
        return r.status
      })
      .catch(() => 0)
    if (Date.now() - started > 15_000) break
  }
  t.is(status, 200)
  const after = procStats(cli.pid)
  t.true(cli.alive())
  const sink = cli.counters(2)!
  await cli.stop()
  t.true(cli.lines.filter((l) => /refused/.test(l)).length <= 30, 'refusals are rate-limited log lines')
  figure(t, '4', {
    attackConnections: 1100,
    filesDuringAttack: `${filesDuring} → ${await fileCount(dir)}`,
    msUntilViewerServed: Date.now() - started,
    connectionsOpenAtPeak: sink.connections,
    rssKiB: `${before.rssKiB} → ${during.rssKiB} → ${after.rssKiB}`,
    fds: `${before.fds} → ${during.fds} → ${after.fds}`,
  })
})

test('http sink: slow and idle connections are closed after headerTimeout and idleTimeout', async (t) => {
  const source = new Readable({ objectMode: true, read() {} })
  const sink = httpSink({ port: 0, headerTimeout: 300, idleTimeout: 300 })
  const done = pipeline(source, sink)
  done.catch(() => undefined)
  t.teardown(() => sink.destroy())
  await withTimeout(once(sink, 'listening'), 5000, 'listening')
  const port = sink.address()!.port
  const t0 = Date.now()
  const idle = net.connect(port, '127.0.0.1')
  const slow = net.connect(port, '127.0.0.1', () => slow.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n'))
  const kept = net.connect(port, '127.0.0.1', () => kept.write('GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'))
  for (const s of [idle, slow, kept]) {
    s.on('error', () => undefined)
    s.resume()
  }
  await withTimeout(Promise.all([idle, slow, kept].map((s) => closed(s))), 5000, 'all three closed')
  const took = Date.now() - t0
  t.true(took < 3000, `closed after ${took} ms`)
  source.push(null)
})

test('http sink: viewers of /stream.mjpg that never read are cut off after sendTimeout; a new viewer gets the stream', async (t) => {
  let i = 0
  const source = new Readable({
    objectMode: true,
    read() {
      setTimeout(() => this.push(makeFrame(fakeJpeg(i++, 200_000), { seq: i, timestamp: now() })), 5)
    },
  })
  const sink = httpSink({ port: 0, maxViewers: 4, sendTimeout: 1000 })
  const done = pipeline(source, sink)
  done.catch(() => undefined)
  t.teardown(() => {
    source.destroy()
    sink.destroy()
  })
  await withTimeout(once(sink, 'listening'), 5000, 'listening')
  const port = sink.address()!.port
  const stalled: Socket[] = []
  for (let k = 0; k < 4; k++) {
    const s = net.connect(port, '127.0.0.1', () => s.write('GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'))
    s.on('error', () => undefined)
    // Never read: the socket stays paused.
    s.pause()
    stalled.push(s)
  }
  await until(() => sink.stats().viewers === 4, 5000, 'four viewers')
  const refused = await fetch(`http://127.0.0.1:${port}/stream.mjpg`)
  t.is(refused.status, 503)
  await refused.arrayBuffer()
  const t0 = Date.now()
  await until(() => counters(sink).stalled === 4, 10_000, 'the four cut off')
  const took = Date.now() - t0
  const res = await fetch(`http://127.0.0.1:${port}/stream.mjpg`)
  t.is(res.status, 200)
  const reader = res.body!.getReader()
  let bytes = 0
  while (bytes < 400_000) bytes += (await reader.read()).value!.length
  await reader.cancel()
  for (const s of stalled) s.destroy()
  figure(t, '6-http', { stalledCut: 4, msToCut: took, newViewerBytes: bytes })
})
