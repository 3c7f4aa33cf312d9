// Seeds 003 and 004 record to AVI: their client roles (cmd-client,
// reg-client) into `avi` with the seeds' file names, against frame-pipe's own
// servers and against the original Python servers; every file checked with
// ffprobe and, against the originals, frame by frame with what they sent.

import test, { type ExecutionContext } from 'ava'
import { once } from 'node:events'
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { pipeline, stopSource } from '../../src/core/pipeline.js'
import { avi, type AviSegmentEvent } from '../../src/sinks/avi.js'
import { cmdServer } from '../../src/sinks/cmd-server.js'
import { regServer } from '../../src/sinks/reg-server.js'
import { cmdClient } from '../../src/sources/cmd-client.js'
import { regClient } from '../../src/sources/reg-client.js'
import { testsrc } from '../../src/sources/testsrc.js'
import { stageInfo } from '../../src/core/stage.js'
import { parseAvi } from '../helpers/avi-parse.js'
import { tempDir, withTimeout } from '../helpers/index.js'
import { FFMPEG, FFPROBE, NO_FFMPEG_REASON, decodeErrors, probe } from '../helpers/media.js'
import { NO_PYTHON_REASON, pythonWithOpenCV, startPeer } from '../helpers/python.js'

const haveTools = FFPROBE !== undefined && FFMPEG !== undefined
if (!haveTools) console.warn(`skipping seed AVI recordings: ${NO_FFMPEG_REASON}`)
const mediaTest = haveTools ? test : test.skip
const python = haveTools ? pythonWithOpenCV() : null
if (haveTools && !python) console.warn(`skipping seed AVI recordings against the Python originals: ${NO_PYTHON_REASON}`)
const peerTest = python ? test : test.skip

const FIXTURES = fileURLToPath(new URL('../../fixtures/images/', import.meta.url))
const FRAME_FILES = ['frame-1.jpg', 'frame-2.jpg', 'frame-3.jpg', 'frame-10.jpg'].map((f) => join(FIXTURES, f))

async function tmp(t: ExecutionContext): Promise<string> {
  const { dir, cleanup } = await tempDir('frame-pipe-avi-seed-')
  t.teardown(cleanup)
  return dir
}

/** A server pipeline fed by testsrc; stopped and awaited in teardown. */
async function serveTestsrc(t: ExecutionContext, server: ReturnType<typeof cmdServer> | ReturnType<typeof regServer>): Promise<number> {
  const source = testsrc({ width: 160, height: 120, fps: 30, format: 'jpeg' })
  const done = pipeline(source, server)
  t.teardown(async () => {
    stopSource(source)
    await withTimeout(done, 5000, 'server pipeline').catch((err: Error) => t.log(`server pipeline: ${err.message}`))
  })
  await once(server, 'listening')
  return server.address()!.port
}

/** Run client ! avi until the sink holds `frames` frames, then stop the client cleanly; returns the closed segments. */
async function recordClient(
  source: Readable,
  options: Parameters<typeof avi>[0],
  frames: number,
): Promise<{ closed: AviSegmentEvent[]; written: number }> {
  const sink = avi(options)
  const closed: AviSegmentEvent[] = []
  sink.on('segment', (e: AviSegmentEvent) => e.event === 'close' && closed.push(e))
  const counters = stageInfo(sink)!.counters
  const poll = setInterval(() => {
    if (counters.frames >= frames) {
      clearInterval(poll)
      stopSource(source)
    }
  }, 10)
  try {
    await withTimeout(pipeline(source, sink), 20_000, 'client recording')
  } finally {
    clearInterval(poll)
  }
  return { closed, written: counters.frames }
}

async function checkSegments(t: ExecutionContext, closed: AviSegmentEvent[], written: number, size: [number, number]): Promise<void> {
  let total = 0
  for (const e of closed) {
    const p = await probe(e.file)
    t.like(p, { frames: e.frames, declared: e.frames, width: size[0], height: size[1] })
    t.is(await decodeErrors(e.file), '')
    total += p.frames
  }
  t.is(total, written, 'the segments hold every frame the client delivered')
}

mediaTest("seed 003: cmd-client records cmd-server's stream to video_stream_{ms}.avi", async (t) => {
  const dir = await tmp(t)
  const port = await serveTestsrc(t, cmdServer({ port: 0 }))
  const started = Date.now()
  const { closed, written } = await recordClient(cmdClient({ port }), { dir, pattern: 'video_stream_{ms}.avi' }, 40)
  t.true(written >= 40)
  t.is(closed.length, 1)
  const name = closed[0]!.file.slice(dir.length + 1)
  t.regex(name, /^video_stream_\d{13}\.avi$/)
  const ms = Number(/\d+/.exec(name)![0])
  t.true(ms >= started && ms <= Date.now(), "named by the first frame's time in epoch ms")
  await checkSegments(t, closed, written, [160, 120])
})

mediaTest("seed 004: reg-client records reg-server's stream to camera{time}.avi in short segments", async (t) => {
  const dir = await tmp(t)
  const port = await serveTestsrc(t, regServer({ port: 0 }))
  const { closed, written } = await recordClient(regClient({ port }), { dir, pattern: 'camera{time}.avi', segment: 400 }, 45)
  t.true(closed.length >= 2, `${closed.length} segments`)
  for (const e of closed) t.regex(e.file.slice(dir.length + 1), /^camera\d\d-\d\d-\d\d(_\d+)?\.avi$/)
  t.is(new Set(closed.map((e) => e.file)).size, closed.length, 'segments in the same second get _001, _002 …: none replaced')
  t.deepEqual((await readdir(dir)).sort(), closed.map((e) => e.file.slice(dir.length + 1)).sort())
  await checkSegments(t, closed, written, [160, 120])
})

/** The JPEGs an original server wrote to its dump directory, in the order it sent them. */
async function dumped(dir: string, filter: (name: string) => boolean = () => true): Promise<Buffer[]> {
  const names = (await readdir(dir)).filter(filter).sort()
  return Promise.all(names.map((n) => readFile(join(dir, n))))
}

peerTest('seed 003 original server → cmd-client → AVI: every frame byte for byte as the server sent it', async (t) => {
  const dir = await tmp(t)
  const sent = join(dir, 'sent')
  await mkdir(sent)
  const peer = startPeer(t, 'seed003_server.py', ['--host', '127.0.0.1', '--port', '0', '--fps', '30', '--sent', sent, ...FRAME_FILES])
  const port = Number((await peer.waitFor(/listening on (\d+)/, 15_000))[1])
  const rec = join(dir, 'rec')
  const { closed, written } = await recordClient(cmdClient({ port }), { dir: rec, pattern: 'video_stream_{ms}.avi' }, 20)
  t.is(closed.length, 1)
  await checkSegments(t, closed, written, [64, 48])
  const frames = parseAvi(await readFile(closed[0]!.file)).frames
  const original = await dumped(sent)
  // In stream mode the server may send a frame or two after 'q' that the client no longer reads.
  t.true(original.length >= frames.length)
  frames.forEach((f, i) => t.true(f.equals(original[i]!), `frame ${i} as sent`))
})

peerTest('seed 004 original server → reg-client → camera{time}.avi segments: every frame byte for byte', async (t) => {
  const dir = await tmp(t)
  await mkdir(join(dir, 'week13'))
  const dump = join(dir, 'sent')
  await mkdir(dump)
  const peer = startPeer(t, 'seed004_server.py', [
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--log',
    join(dir, 'week13', 'ServerLog.txt'),
    '--dump',
    dump,
    '--fps',
    '30',
    ...FRAME_FILES,
  ])
  const port = Number((await peer.waitFor(/listening (\d+)/, 15_000))[1])
  const src = regClient({ port })
  const { closed, written } = await recordClient(src, { dir: join(dir, 'rec'), pattern: 'camera{time}.avi', segment: 300 }, 30)
  t.true(closed.length >= 2, `${closed.length} segments`)
  await checkSegments(t, closed, written, [64, 48])
  const frames = []
  for (const e of closed) frames.push(...parseAvi(await readFile(e.file)).frames)
  const udpPort = src.udpAddress()?.port
  const original = await dumped(dump, (n) => udpPort === undefined || n.startsWith(`${udpPort}-`))
  // The original sends one more frame after the last `continue`, which the client does not deliver.
  t.true(original.length >= frames.length)
  frames.forEach((f, i) => t.true(f.equals(original[i]!), `frame ${i} as sent`))
})
