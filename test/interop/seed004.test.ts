// Seed 004 against the real Python programs (test/peers/seed004_*.py): each
// frame-pipe role against the untouched other side, frames checked byte for
// byte, the server log checked against the original's format.

import test, { type ExecutionContext } from 'ava'
import { spawnSync } from 'node:child_process'
import dgram from 'node:dgram'
import { once } from 'node:events'
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Frame } from '../../src/core/frame.js'
import type { ClientEvent } from '../../src/net/socket.js'
import { pythonDatetime } from '../../src/protocols/reg/messages.js'
import { pipeline, stopSource } from '../../src/core/pipeline.js'
import { files as filesSink } from '../../src/sinks/files.js'
import { regServer } from '../../src/sinks/reg-server.js'
import { files as filesSource } from '../../src/sources/files.js'
import { regClient } from '../../src/sources/reg-client.js'
import { stageInfo } from '../../src/core/stage.js'
import { tempDir, withTimeout } from '../helpers/index.js'
import { NO_PYTHON_REASON, pythonWithOpenCV, startPeer } from '../helpers/python.js'

const python = pythonWithOpenCV()
if (!python) console.warn(`skipping seed 004 peer tests: ${NO_PYTHON_REASON}`)
const peerTest = python ? test : test.skip

const FIXTURES = fileURLToPath(new URL('../../fixtures/images/', import.meta.url))
/** The source order of `files path=fixtures/images/frame-*.jpg` (natural order). */
const FRAME_FILES = ['frame-1.jpg', 'frame-2.jpg', 'frame-3.jpg', 'frame-10.jpg'].map((f) => join(FIXTURES, f))

/** `2022-12-04 23:25:34.123456 客户端('127.0.0.1', 40000) 接入`, microseconds optional as in str(datetime). */
function logLine(port: number, event: '接入' | '退出'): RegExp {
  return new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d(\\.\\d{6})? 客户端\\('127\\.0\\.0\\.1', ${port}\\) ${event}$`)
}

async function tmp(t: ExecutionContext): Promise<string> {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  return dir
}

/** Wait (bounded) until the file's lines satisfy `ok`. */
async function waitForLines(path: string, ok: (lines: string[]) => boolean, ms: number): Promise<string[]> {
  return withTimeout(
    (async () => {
      for (;;) {
        let text = ''
        try {
          text = await readFile(path, 'utf8')
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        }
        const lines = text.split('\n').filter(Boolean)
        if (ok(lines)) return lines
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    })(),
    ms,
    `lines in ${path}`,
  )
}

/** A UDP port that was free a moment ago (the original client needs a number to register). */
async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4')
  s.bind(0, '127.0.0.1')
  await once(s, 'listening')
  const port = s.address().port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

async function startOriginalServer(t: ExecutionContext, dir: string, fps = 30) {
  const log = join(dir, 'week13', 'ServerLog.txt')
  const dump = join(dir, 'sent')
  // The original dies on its first log write without week13/ (WIRE §5, fragility 4).
  await mkdir(join(dir, 'week13'))
  await mkdir(dump)
  const peer = startPeer(t, 'seed004_server.py', [
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--log',
    log,
    '--dump',
    dump,
    '--fps',
    String(fps),
    ...FRAME_FILES,
  ])
  const m = await peer.waitFor(/listening (\d+)/, 15_000)
  return { peer, port: Number(m[1]), log, dump }
}

/** What the original server sent to one client, in order. */
async function sentTo(dump: string, udpPort: number): Promise<Buffer[]> {
  const names = (await readdir(dump)).filter((n) => n.startsWith(`${udpPort}-`)).sort()
  return Promise.all(names.map((n) => readFile(join(dump, n))))
}

// ---------------------------------------------------------------------------
// frame-pipe reg-client ↔ original server

peerTest('reg-client ↔ original server: frames byte for byte, the extra frame absorbed, log lines in the original format', async (t) => {
  const dir = await tmp(t)
  const server = await startOriginalServer(t, dir)
  const src = regClient({ port: server.port })
  const got: Frame[] = []
  let udpPort = 0
  await withTimeout(
    (async () => {
      for await (const f of src) {
        if (got.length === 0) udpPort = src.udpAddress()!.port
        got.push(f as Frame)
        if (got.length === 8) stopSource(src)
      }
    })(),
    15_000,
    'reg-client',
  )
  t.true(got.length >= 8)
  const lines = await waitForLines(server.log, (l) => l.length >= 2, 10_000)
  t.regex(lines[0]!, logLine(udpPort, '接入'))
  t.regex(lines[1]!, logLine(udpPort, '退出'))
  const sent = await sentTo(server.dump, udpPort)
  // The server sends one frame after the last `continue`: it went to us and was not delivered.
  t.is(sent.length, got.length + 1)
  got.forEach((f, i) => {
    t.true(f.data.equals(sent[i]!), `frame ${i}`)
    t.like(f, { seq: i, format: 'jpeg' })
  })
  const c = stageInfo(src)!.counters
  t.like(c, { frames: got.length, drops: 0, resends: 0 })
  t.true(c.extra! <= 1)
  t.regex(server.peer.output(), new RegExp(`exit \\('127\\.0\\.0\\.1', ${udpPort}\\)`))
})

peerTest('recording with rotation: reg-client ! files pattern=camera{date}_{time}/frame-%06d.{ext} segment=1s', async (t) => {
  const dir = await tmp(t)
  const server = await startOriginalServer(t, dir)
  const rec = join(dir, 'rec')
  const src = regClient({ port: server.port })
  const sink = filesSink({ dir: rec, pattern: 'camera{date}_{time}/frame-%06d.{ext}', segment: 1000 })
  let udpPort = 0
  src.once('data', () => {
    udpPort = src.udpAddress()!.port
  })
  const timer = setTimeout(() => stopSource(src), 2400)
  t.teardown(() => clearTimeout(timer))
  await withTimeout(pipeline(src, sink), 15_000, 'recording')
  const folders = (await readdir(rec)).sort()
  t.true(folders.length >= 2, `segments: ${folders.join(' ')}`)
  const recorded: Buffer[] = []
  let previous = -Infinity
  for (const folder of folders) {
    const m = /^camera(\d{4})-(\d\d)-(\d\d)_(\d\d)-(\d\d)-(\d\d)$/.exec(folder)
    t.truthy(m, folder)
    const start = new Date(+m![1]!, +m![2]! - 1, +m![3]!, +m![4]!, +m![5]!, +m![6]!).getTime()
    t.true(start - previous >= 1000, 'segments start at least segment apart')
    previous = start
    const names = (await readdir(join(rec, folder))).sort()
    // The counter restarts in each segment.
    t.deepEqual(
      names,
      names.map((_, i) => `frame-${String(i).padStart(6, '0')}.jpg`),
    )
    for (const n of names) recorded.push(await readFile(join(rec, folder, n)))
  }
  t.is(recorded.length, stageInfo(sink)!.counters.frames)
  t.is(stageInfo(sink)!.counters.segments, folders.length)
  await waitForLines(server.log, (l) => l.length >= 2, 10_000)
  const sent = await sentTo(server.dump, udpPort)
  t.is(sent.length, recorded.length + 1)
  recorded.forEach((data, i) => t.true(data.equals(sent[i]!), `frame ${i}`))
})

// ---------------------------------------------------------------------------
// original client ↔ frame-pipe reg-server

peerTest('original client ↔ reg-server: byte for byte, its continue+end handled, log lines in the original format', async (t) => {
  const dir = await tmp(t)
  const log = join(dir, 'week13', 'ServerLog.txt')
  const out = join(dir, 'received')
  await mkdir(out)
  const src = filesSource({ path: join(FIXTURES, 'frame-*.jpg'), loop: true })
  // skip=false: the client paces the source, so it gets every frame in order.
  const server = regServer({ port: 0, log, wait: 1, skip: false })
  const events: ClientEvent[] = []
  server.on('client', (e: ClientEvent) => events.push(e))
  const done = pipeline(src, server)
  t.teardown(() => stopSource(src))
  await once(server, 'listening')
  const udpPort = await freeUdpPort()
  const client = startPeer(t, 'seed004_client.py', [
    '127.0.0.1',
    String(server.address()!.port),
    String(udpPort),
    out,
    '10',
    '0.2',
    '127.0.0.1',
  ])
  t.is(await client.exited(15_000), 0, client.output())
  const lines = await waitForLines(log, (l) => l.length >= 2, 10_000)
  stopSource(src)
  await withTimeout(done, 10_000, 'pipeline')

  const sources = await Promise.all(FRAME_FILES.map((f) => readFile(f)))
  const names = (await readdir(out)).sort()
  t.is(names.length, 10)
  for (const [i, n] of names.entries()) t.true((await readFile(join(out, n))).equals(sources[i % 4]!), n)
  t.regex(lines[0]!, logLine(udpPort, '接入'))
  t.regex(lines[1]!, logLine(udpPort, '退出'))
  t.is(lines.length, 2)
  t.deepEqual(
    events.map((e) => [e.event, e.peer, e.reason]),
    [
      ['join', `127.0.0.1:${udpPort}`, undefined],
      ['leave', `127.0.0.1:${udpPort}`, 'end'],
    ],
  )
  const c = stageInfo(server)!.counters
  // Ten frames and the one after the final continue, plus any resend if a datagram was lost.
  t.is(c.sent! - c.resends!, 11)
  t.like(c, { clients: 0, drops: 0, lost: 0 })
  // The original's rotation logic still runs: it would have opened new files.
  t.true((client.output().match(/new file /g) ?? []).length >= 2, client.output())
})

peerTest('original client killed mid-stream: reg-server drops it once its registration closes, logs the exit, keeps serving', async (t) => {
  const dir = await tmp(t)
  const log = join(dir, 'ServerLog.txt')
  const src = filesSource({ path: join(FIXTURES, 'frame-*.jpg'), loop: true, fps: 50 })
  const server = regServer({ port: 0, log, ackTimeout: 300 })
  const events: ClientEvent[] = []
  server.on('client', (e: ClientEvent) => events.push(e))
  const done = pipeline(src, server)
  t.teardown(() => stopSource(src))
  await once(server, 'listening')
  const out = join(dir, 'a')
  await mkdir(out)
  const udpPort = await freeUdpPort()
  const client = startPeer(t, 'seed004_client.py', [
    '127.0.0.1',
    String(server.address()!.port),
    String(udpPort),
    out,
    '0',
    '15',
    '127.0.0.1',
  ])
  await client.waitFor(/received \d+[\s\S]*received \d+/, 10_000)
  client.child.kill('SIGKILL')
  const lines = await waitForLines(log, (l) => l.length >= 2, 10_000)
  t.regex(lines[1]!, logLine(udpPort, '退出'))
  const leave = events.find((e) => e.event === 'leave')!
  t.regex(leave.reason!, /registration connection closed/)
  // Still serving: a new original client gets frames.
  const out2 = join(dir, 'b')
  await mkdir(out2)
  const second = startPeer(t, 'seed004_client.py', [
    '127.0.0.1',
    String(server.address()!.port),
    String(await freeUdpPort()),
    out2,
    '3',
    '15',
    '127.0.0.1',
  ])
  t.is(await second.exited(10_000), 0, second.output())
  t.is((await readdir(out2)).length, 3)
  stopSource(src)
  await withTimeout(done, 10_000, 'pipeline')
})

peerTest("pythonDatetime is Python's str(datetime), microseconds dropped when zero", (t) => {
  const cases: Array<[number, number]> = [
    [1670167534, 123456],
    [1670167534, 0],
    [1700000000, 1],
    [1700000000, 999999],
    [946684800, 500000],
    [1719791999, 10],
  ]
  const script = `import sys, datetime\nfor a in sys.argv[1:]:\n  s, us = map(int, a.split(':'))\n  print(datetime.datetime.fromtimestamp(s) + datetime.timedelta(microseconds=us))`
  const r = spawnSync(python!, ['-c', script, ...cases.map(([s, us]) => `${s}:${us}`)], { encoding: 'utf8', timeout: 10_000 })
  t.is(r.status, 0, r.stderr)
  t.deepEqual(
    cases.map(([s, us]) => pythonDatetime(s * 1000 + us / 1000)),
    r.stdout.trim().split('\n'),
  )
})
