// The nats sink and source against a real nats-server (started per test on a
// free loopback port, with and without JetStream): fan-out to subscriber
// processes, slow subscribers, a server restart, max_payload, queue groups,
// JetStream's last frame and pre-roll, credentials and TLS.

import test, { type ExecutionContext } from 'ava'
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable, type Readable } from 'node:stream'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { connect, nkeys } from '@nats-io/transport-node'
import { FramePipeError, InvalidOptionError } from '../../src/core/errors.js'
import { makeFrame, type Frame } from '../../src/core/frame.js'
import { pipeline, stopSource } from '../../src/core/pipeline.js'
import { stageInfo, type Counters } from '../../src/core/stage.js'
import { nats as natsSink } from '../../src/sinks/nats.js'
import { nats as natsSource } from '../../src/sources/nats.js'
import { testsrc } from '../../src/sources/testsrc.js'
import { unprefix } from '../../src/transforms/unprefix.js'
import { freePort, fromItems, prng, tempDir, withTimeout } from '../helpers/index.js'
import { HAVE_NATS_SERVER, NO_NATS_SERVER, startNatsServer, type TestNatsServer } from '../helpers/nats.js'

const BIN = fileURLToPath(new URL('../../bin/frame-pipe.js', import.meta.url))

// Every test that needs the server is skipped, saying why, when it is not installed.
const withServer = HAVE_NATS_SERVER ? test.serial : test.skip
if (!HAVE_NATS_SERVER) process.stderr.write(`nats tests skipped: ${NO_NATS_SERVER}\n`)

// ---------------------------------------------------------------- helpers

function counters(stream: Readable | Writable): Counters {
  return stageInfo(stream)!.counters
}

/** Poll (every 20 ms) until `check` holds, or fail saying what we waited for. */
async function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Frame i: `size` seeded pseudo-random bytes starting with i, so every byte is checked. */
function testFrame(i: number, size: number, seed = 1): Frame {
  const rand = prng(seed * 100_003 + i)
  const data = Buffer.allocUnsafe(size)
  for (let k = 0; k < size; k++) data[k] = (rand() * 256) | 0
  if (size >= 4) data.writeUInt32BE(i, 0)
  return makeFrame(data, { format: 'jpeg', width: 640, height: 480, channels: 3, seq: i, timestamp: 1_700_000_000_000 + i * 33.3337 })
}

/** What a subscriber collected, and the stream to pipe into. */
interface Collector {
  frames: Frame[]
  sink: Writable
}

function collector(): Collector {
  const frames: Frame[] = []
  const sink = new Writable({
    objectMode: true,
    highWaterMark: 1,
    write(frame: Frame, _e, cb) {
      frames.push(frame)
      cb()
    },
  })
  return { frames, sink }
}

type Source = ReturnType<typeof natsSource>

/** A subscriber in this process, subscribed before it returns; stopped in teardown. */
async function subscriber(
  t: ExecutionContext,
  options: Parameters<typeof natsSource>[0],
): Promise<Collector & { source: Source; done: Promise<void> }> {
  const source = natsSource(options)
  const c = collector()
  const subscribed = waitEvent(source, 'info', (m) => /^(subscribed|reading)/.test(String(m)), 20_000)
  const done = pipeline(source, c.sink)
  done.catch(() => {})
  t.teardown(() => {
    source.destroy()
  })
  await subscribed
  return { ...c, source, done }
}

/** Resolve on the first `event` whose detail passes `match`, or fail after `ms`. */
function waitEvent(
  emitter: NodeJS.EventEmitter,
  event: string,
  match: (detail: unknown) => boolean = () => true,
  ms = 20_000,
): Promise<unknown> {
  return withTimeout(
    new Promise((resolve) => {
      const on = (detail: unknown) => {
        if (!match(detail)) return
        emitter.off(event, on)
        resolve(detail)
      }
      emitter.on(event, on)
    }),
    ms,
    `'${event}' event`,
  )
}

/** `frame-pipe --quiet '<description>'` as a child process; stdout parsed as native-prefixed frames when asked. */
interface Proc {
  child: ChildProcess
  stderr(): string
  frames: Frame[]
  exit: Promise<number | null>
}

function frameProc(t: ExecutionContext, description: string, o: { env?: Record<string, string>; frames?: boolean } = {}): Proc {
  const child = spawn(process.execPath, [BIN, description], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...o.env },
  })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d
  })
  const frames: Frame[] = []
  if (o.frames) {
    // The test frames carry fixed 2023 capture times: keep them (the default would replace times over an hour off).
    const parser = unprefix({ header: 'native', maxClockSkew: 0 })
    child.stdout!.pipe(parser)
    parser.on('data', (f: Frame) => frames.push(f))
  } else {
    child.stdout!.resume()
  }
  const exit = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT')
      child.kill('SIGKILL')
    }
  })
  return { child, stderr: () => stderr, frames, exit }
}

async function waitStderr(p: Proc, pattern: RegExp, ms: number): Promise<void> {
  await waitFor(() => pattern.test(p.stderr()), ms, `${pattern} on the child's stderr; it said:\n${p.stderr()}`)
}

function sameFrame(t: ExecutionContext, got: Frame | undefined, want: Frame, where: string): void {
  if (!got) return void t.fail(`${where}: frame ${want.seq} missing`)
  t.is(got.seq, want.seq, `${where}: seq`)
  t.true(got.data.equals(want.data), `${where}: frame ${want.seq} byte-identical`)
  t.true(
    Math.abs(got.timestamp - want.timestamp) < 0.002,
    `${where}: capture time of ${want.seq} travels (${got.timestamp} vs ${want.timestamp})`,
  )
}

// ------------------------------------------------- fan-out to processes

withServer('one publisher → three subscriber processes: every frame arrives, byte-identical, with its metadata', async (t) => {
  const server = await startNatsServer(t)
  const subject = 'fan.cam1'
  // The publisher bursts 9 MB as fast as it can, faster than a pipe to this process drains: a queue
  // deep enough for the whole burst keeps every frame (the default, 4, would drop to the newest).
  const subs = [0, 1, 2].map(() =>
    frameProc(t, `nats server=${server.url} subject=${subject} maxQueue=64 ! prefix header=native ! stdout`, { frames: true }),
  )
  await Promise.all(subs.map((p) => waitStderr(p, /subscribed to fan\.cam1/, 30_000)))
  const rand = prng(7)
  const frames = Array.from({ length: 60 }, (_, i) => testFrame(i, 1 + Math.floor(rand() * 300_000)))
  const sink = natsSink({ server: server.url, subject })
  await withTimeout(pipeline(fromItems(frames), sink), 30_000, 'publishing')
  t.is(counters(sink).frames, 60)
  t.is(counters(sink).drops, 0)
  await waitFor(() => subs.every((p) => p.frames.length >= 60), 30_000, 'every subscriber to receive 60 frames')
  subs.forEach((p, n) => {
    t.is(p.frames.length, 60, `subscriber ${n}: no extra frame`)
    frames.forEach((f, i) => sameFrame(t, p.frames[i], f, `subscriber ${n}`))
    t.is(p.frames[5]!.format, 'jpeg')
  })
  // Ctrl-C ends a subscriber cleanly.
  for (const p of subs) p.child.kill('SIGINT')
  const codes = await withTimeout(Promise.all(subs.map((p) => p.exit)), 15_000, 'subscribers to exit')
  t.deepEqual(codes, [0, 0, 0])
})

// ------------------------------------------------- slow subscribers

withServer("a stalled subscriber (process stopped, or downstream stuck) does not lower the others' rate", async (t) => {
  // A small max_pending, so the server cuts the stopped process off soon.
  const server = await startNatsServer(t, { maxPending: 1024 * 1024, writeDeadline: '2s' })
  const subject = 'stall.cam'
  const stopped = frameProc(t, `nats server=${server.url} subject=${subject} ! null`)
  await waitStderr(stopped, /subscribed to stall\.cam/, 30_000)
  stopped.child.kill('SIGSTOP')
  const a = await subscriber(t, { server: server.url, subject })
  const b = await subscriber(t, { server: server.url, subject })
  // A subscriber whose downstream never takes a frame: its own queue drops the oldest.
  const stuck = natsSource({ server: server.url, subject, maxQueue: 4 })
  const stuckSubscribed = waitEvent(stuck, 'info', (m) => /^subscribed/.test(String(m)))
  void pipeline(
    stuck,
    new Writable({
      objectMode: true,
      highWaterMark: 1,
      write() {
        /* never calls back */
      },
    }),
  ).catch(() => {})
  t.teardown(() => {
    stuck.destroy()
  })
  await stuckSubscribed

  const count = 200
  const frames = Array.from({ length: count }, (_, i) => testFrame(i, 100_000, 3))
  // The subscribers that keep up live in this process: a small window keeps the publisher (same event
  // loop) from getting further ahead of them than max_pending, however loaded the machine is.
  const sink = natsSink({ server: server.url, subject, maxInFlight: 512 * 1024 })
  await withTimeout(pipeline(fromItems(frames), sink), 60_000, 'publishing 20 MB')
  t.is(counters(sink).frames, count, 'the publisher sent every frame')
  t.is(counters(sink).drops, 0, 'and never had to drop one')
  await waitFor(
    () => a.frames.length >= count && b.frames.length >= count,
    30_000,
    `both live subscribers to get ${count} frames (a ${a.frames.length}, b ${b.frames.length})`,
  )
  for (const s of [a, b]) {
    t.is(s.frames.length, count)
    t.deepEqual(
      s.frames.map((f) => f.seq),
      frames.map((f) => f.seq),
      'every frame, in order',
    )
    t.is(counters(s.source).drops, 0)
  }
  await waitFor(() => counters(stuck).received! >= count, 30_000, 'the stuck subscriber to receive every frame')
  t.true(counters(stuck).drops >= count - 8, `the stuck subscriber dropped the frames it could not hand on (${counters(stuck).drops})`)
  t.true(counters(stuck).frames <= 3, 'and handed on only what its downstream buffers hold')
  // The server cut off the process that stopped reading; once it runs again it reconnects.
  await waitFor(() => /slow consumer/i.test(server.log), 30_000, 'the server to report the stopped subscriber as a slow consumer')
  stopped.child.kill('SIGCONT')
  await waitStderr(stopped, /reconnected to/, 30_000)
  t.pass()
})

// ------------------------------------------------- server restart

withServer('nats-server restarted mid-stream: publisher and subscriber resume within a few seconds', async (t) => {
  const server = await startNatsServer(t)
  const subject = 'restart.cam'
  const fast = { retryMin: 50, retryMax: 500 }
  const sub = await subscriber(t, { server: server.url, subject, ...fast })
  const source = testsrc({ width: 64, height: 48, fps: 50 })
  const sink = natsSink({ server: server.url, subject, ...fast })
  const published = pipeline(source, sink)
  t.teardown(() => {
    source.destroy()
  })
  // A second camera whose frames are dropped, not held, while the server is away.
  const other = testsrc({ width: 32, height: 24, fps: 50 })
  const dropper = natsSink({ server: server.url, subject: 'restart.other', whenFull: 'drop', ...fast })
  const droppedRun = pipeline(other, dropper)
  t.teardown(() => {
    other.destroy()
  })
  await waitFor(() => sub.frames.length >= 10, 20_000, 'frames before the restart')

  const lost = Promise.all([waitEvent(sink, 'disconnect'), waitEvent(sub.source, 'disconnect')])
  const back = Promise.all([
    waitEvent(sink, 'connect', (e) => /reconnected/.test((e as { message: string }).message), 30_000),
    waitEvent(sub.source, 'connect', (e) => /reconnected/.test((e as { message: string }).message), 30_000),
  ])
  await server.stop('SIGKILL')
  await lost
  const lastBefore = sub.frames[sub.frames.length - 1]!.seq
  await server.start()
  const restarted = Date.now()
  await back
  await waitFor(() => sub.frames.some((f) => f.seq > lastBefore + 5), 20_000, 'frames after the restart')
  const resumed = Date.now() - restarted
  t.log(`frames flowing again ${resumed} ms after the server was back`)
  t.true(resumed < 10_000, `resumed within a few seconds (${resumed} ms)`)
  stopSource(source)
  await withTimeout(published, 10_000, 'publisher to end')
  t.is(counters(sink).drops, 0, 'whenFull=wait held the source back instead of dropping')
  const sentBefore = counters(dropper).frames
  await waitFor(() => counters(dropper).frames > sentBefore, 10_000, 'the dropping publisher to publish again')
  t.true(counters(dropper).drops > 0, `whenFull=drop dropped the frames of the outage (${counters(dropper).drops})`)
  stopSource(other)
  await withTimeout(droppedRun, 10_000, 'the dropping publisher to end')
  sub.source.stop()
  await withTimeout(sub.done, 10_000, 'subscriber to end')
  // Seqs only grow: nothing replayed, nothing out of order.
  const seqs = sub.frames.map((f) => f.seq)
  t.true(
    seqs.every((s, i) => i === 0 || s > seqs[i - 1]!),
    'in order',
  )
})

// ------------------------------------------------- max_payload

withServer(
  'frames over max_payload are refused, not split: dropped and counted with a line saying how to raise it, or an error',
  async (t) => {
    const limit = 64 * 1024
    const server = await startNatsServer(t, { maxPayload: limit })
    const subject = 'big.cam'
    const sub = await subscriber(t, { server: server.url, subject })
    // Just under the limit with headers, then over it, then small again.
    const frames = [testFrame(0, 1000), testFrame(1, limit - 300), testFrame(2, limit + 1), testFrame(3, 5 * limit), testFrame(4, 2000)]
    const sink = natsSink({ server: server.url, subject })
    const warnings: string[] = []
    sink.on('warning', (w: string) => warnings.push(w))
    await withTimeout(pipeline(fromItems(frames), sink), 20_000, 'publishing')
    t.is(counters(sink).frames, 3)
    t.is(counters(sink).oversize, 2)
    t.is(counters(sink).drops, 2)
    t.is(warnings.length, 1, 'one line, not one per frame')
    t.regex(
      warnings[0]!,
      /frame seq 2 is \d+ bytes with its headers, over the server's max_payload of 65536 bytes: raise max_payload in nats-server.conf/,
    )
    await waitFor(() => sub.frames.length >= 3, 10_000, 'the frames within the limit')
    t.deepEqual(
      sub.frames.map((f) => f.seq),
      [0, 1, 4],
    )
    sameFrame(t, sub.frames[1], frames[1]!, 'frame at the limit')

    const strict = natsSink({ server: server.url, subject, oversize: 'error' })
    const err = await t.throwsAsync(pipeline(fromItems([testFrame(9, 2 * limit)]), strict), { instanceOf: FramePipeError })
    t.is((err as FramePipeError).code, 'ERR_FRAME_TOO_LARGE')
    t.regex(err!.message, /^nats: frame seq 9 is \d+ bytes .* \(e\.g\. max_payload: 8MB; at most 64MB\)/)
    t.false(err!.message.includes('\n'))
  },
)

// ------------------------------------------------- queue groups, wildcards

withServer('queue group: each frame goes to exactly one worker; a plain wildcard subscriber gets them all', async (t) => {
  const server = await startNatsServer(t)
  const workers = await Promise.all([0, 1, 2].map(() => subscriber(t, { server: server.url, subject: 'q.cam1', queue: 'workers' })))
  const all = await subscriber(t, { server: server.url, subject: 'q.*' })
  const other = await subscriber(t, { server: server.url, subject: 'q.cam2' })
  const count = 90
  const frames = Array.from({ length: count }, (_, i) => testFrame(i, 2000, 5))
  await withTimeout(pipeline(fromItems(frames), natsSink({ server: server.url, subject: 'q.cam1' })), 20_000, 'publishing')
  const shared = () => workers.reduce((n, w) => n + w.frames.length, 0)
  await waitFor(() => shared() >= count && all.frames.length >= count, 20_000, 'every frame to reach the group and the wildcard subscriber')
  const seqs = workers.flatMap((w) => w.frames.map((f) => f.seq)).sort((x, y) => x - y)
  t.deepEqual(
    seqs,
    frames.map((f) => f.seq),
    'each frame delivered to exactly one worker',
  )
  for (const [n, w] of workers.entries()) t.true(w.frames.length > 0, `worker ${n} had a share (${w.frames.length})`)
  t.is(all.frames.length, count)
  t.is(other.frames.length, 0, "another camera's subject gets nothing")
})

// ------------------------------------------------- JetStream

withServer('JetStream: a late joiner gets the last frame at once, then live ones; a recorder gets its pre-roll', async (t) => {
  const server = await startNatsServer(t, { jetstream: true })
  const frames = Array.from({ length: 10 }, (_, i) => testFrame(i, 20_000, 9))
  const keeper = natsSink({ server: server.url, subject: 'js.cam1', keep: 1 })
  const infos: string[] = []
  keeper.on('info', (m: string) => infos.push(m))
  await withTimeout(pipeline(fromItems(frames), keeper), 20_000, 'publishing')
  t.regex(infos.join('\n'), /JetStream stream js_cam1 \(memory\) keeps the last 1 frame of js\.cam1/)

  const started = Date.now()
  const late = await subscriber(t, { server: server.url, subject: 'js.*', last: true })
  await waitFor(() => late.frames.length >= 1, 5000, 'the last frame')
  t.log(`last frame after ${Date.now() - started} ms`)
  t.is(late.frames.length, 1, 'only the last frame is kept')
  sameFrame(t, late.frames[0], frames[9]!, 'late joiner')
  // Then live frames follow.
  const next = testFrame(10, 20_000, 9)
  await pipeline(fromItems([next]), natsSink({ server: server.url, subject: 'js.cam1', keep: 1 }))
  await waitFor(() => late.frames.length >= 2, 10_000, 'the live frame')
  sameFrame(t, late.frames[1], next, 'live after the last')

  // keepFor: the last minute is kept; preroll reads the last 30 s of it.
  const recorded = Array.from({ length: 12 }, (_, i) => testFrame(i, 5000, 11))
  await pipeline(fromItems(recorded), natsSink({ server: server.url, subject: 'js.cam2', keepFor: 60_000 }))
  // A recorder whose downstream is stuck until the whole pre-roll has arrived: live frames would
  // drop to the newest (maxQueue=1), the pre-roll is kept whole.
  const recorder = natsSource({ server: server.url, subject: 'js.cam2', preroll: 30_000, maxQueue: 1 })
  const got: Frame[] = []
  let held: (() => void) | null = null
  const gate = new Writable({
    objectMode: true,
    highWaterMark: 1,
    write(frame: Frame, _e, cb) {
      got.push(frame)
      if (counters(recorder).received! >= recorded.length) cb()
      else held = cb
    },
  })
  const recording = pipeline(recorder, gate)
  t.teardown(() => {
    recorder.destroy()
  })
  await waitFor(() => counters(recorder).received! >= recorded.length, 10_000, 'the pre-roll to arrive')
  const release = held as (() => void) | null
  release?.()
  await waitFor(() => got.length >= recorded.length, 10_000, 'the pre-roll to be handed on')
  t.is(counters(recorder).drops, 0, 'no pre-roll frame dropped')
  recorded.forEach((f, i) => sameFrame(t, got[i], f, 'pre-roll'))
  recorder.stop()
  await withTimeout(recording, 10_000, 'the recorder to end')

  // Nothing kept for a subject: one clear line.
  const none = natsSource({ server: server.url, subject: 'nothing.here', last: true })
  const err = await t.throwsAsync(pipeline(none, collector().sink))
  t.regex(err!.message, /^nats: no JetStream stream keeps nothing\.here on 127\.0\.0\.1:\d+: publish with the nats sink's keep=/)
})

withServer('JetStream asked of a server without it: one line saying how to enable it', async (t) => {
  const server = await startNatsServer(t)
  const sink = natsSink({ server: server.url, subject: 'x.cam', keep: 1 })
  const err = await t.throwsAsync(pipeline(fromItems([testFrame(0, 10)]), sink))
  t.regex(err!.message, /^nats: keep needs JetStream, which 127\.0\.0\.1:\d+ does not offer: .*\(start nats-server with -js/)
  t.false(err!.message.includes('\n'))
})

// ------------------------------------------------- messages from other tools

withServer('a message without frame headers (another NATS client) becomes a frame: format sniffed, numbered on arrival', async (t) => {
  const server = await startNatsServer(t)
  const sub = await subscriber(t, { server: server.url, subject: 'raw.cam' })
  const nc = await connect({ servers: `127.0.0.1:${server.port}` })
  t.teardown(() => nc.close())
  const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9])
  nc.publish('raw.cam', jpeg)
  nc.publish('raw.cam', Buffer.from('not an image'))
  nc.publish('raw.cam', new Uint8Array(0))
  await nc.flush()
  await waitFor(() => sub.frames.length >= 2 && counters(sub.source).received! >= 3, 10_000, 'the messages')
  t.is(sub.frames[0]!.format, 'jpeg')
  t.true(sub.frames[0]!.data.equals(jpeg))
  t.deepEqual(
    sub.frames.map((f) => f.seq),
    [0, 1],
  )
  t.is(sub.frames[1]!.format, 'unknown')
  t.is(counters(sub.source).drops, 1, 'the empty message is dropped, counted')
})

// ------------------------------------------------- credentials

/** A server that wants a token, user/password or an nkey (one each for this test). */
async function authServer(t: ExecutionContext, auth: string): Promise<TestNatsServer> {
  return startNatsServer(t, { extra: auth })
}

withServer(
  'a wrong credential gives one clear line that shows no secret; the right one from a file or env works and never shows in argv',
  async (t) => {
    const token = 'tok-' + 'x7Qp2LmZ9aB4'
    const server = await authServer(t, `authorization { token: "${token}" }`)
    const { dir, cleanup } = await tempDir()
    t.teardown(cleanup)
    const good = join(dir, 'token')
    const bad = join(dir, 'wrong')
    await writeFile(good, token + '\n', { mode: 0o600 })
    await writeFile(bad, 'tok-wrong-guess-123\n', { mode: 0o600 })

    const wrong = frameProc(t, `nats server=${server.url} subject=auth.cam token=@${bad} ! null`)
    const code = await withTimeout(wrong.exit, 20_000, 'the refused subscriber to exit')
    t.is(code, 1)
    const lines = wrong.stderr().trim().split('\n')
    t.is(lines.length, 1, `one line: ${wrong.stderr()}`)
    t.regex(
      lines[0]!,
      /^frame-pipe: nats: 127\.0\.0\.1:\d+ refused the credentials \(.*[Aa]uthorization [Vv]iolation.*\): check token, user\/password, nkey or creds$/,
    )
    t.false(wrong.stderr().includes('tok-wrong-guess-123'))

    const none = frameProc(t, `nats server=${server.url} subject=auth.cam ! null`)
    t.is(await withTimeout(none.exit, 20_000, 'the subscriber without a token to exit'), 1)
    t.regex(none.stderr(), /refused the credentials/)

    // Right token by file and by environment variable: subscribed, frames arrive, the secret is in no argv and no log.
    const byFile = frameProc(t, `nats server=${server.url} subject=auth.cam token=@${good} ! prefix header=native ! stdout`, {
      frames: true,
    })
    const byEnv = frameProc(t, `nats server=${server.url} subject=auth.cam token=env:FP_TEST_NATS_TOKEN ! prefix header=native ! stdout`, {
      frames: true,
      env: { FP_TEST_NATS_TOKEN: token },
    })
    await Promise.all([byFile, byEnv].map((p) => waitStderr(p, /subscribed to auth\.cam/, 30_000)))
    for (const p of [byFile, byEnv]) {
      const argv = readFileSync(`/proc/${p.child.pid}/cmdline`, 'utf8')
      t.true(argv.includes('token='), 'the option is there')
      t.false(argv.includes(token), 'the secret is not in argv')
    }
    await pipeline(fromItems([testFrame(0, 100)]), natsSink({ server: server.url, subject: 'auth.cam', token: `@${good}` }))
    await waitFor(() => byFile.frames.length >= 1 && byEnv.frames.length >= 1, 10_000, 'the frame through the authenticated connections')
    for (const p of [byFile, byEnv]) t.false(p.stderr().includes(token), 'the secret is in no log line')

    // A reference that cannot be resolved names the reference, not a value.
    t.throws(() => natsSource({ server: server.url, subject: 'a', token: 'env:FP_TEST_UNSET_VARIABLE' }), {
      instanceOf: InvalidOptionError,
      message: 'nats: token=env:FP_TEST_UNSET_VARIABLE: the environment variable FP_TEST_UNSET_VARIABLE is not set',
    })
  },
)

withServer('user/password (password from env) and nkey seed (from a file) authenticate', async (t) => {
  const user = nkeys.createUser()
  const seed = new TextDecoder().decode(user.getSeed())
  const server = await authServer(
    t,
    `authorization { users = [ { user: "cam", password: "pw-s3cret-17" }, { nkey: "${user.getPublicKey()}" } ] }`,
  )
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const seedFile = join(dir, 'cam.nk')
  await writeFile(seedFile, seed + '\n', { mode: 0o600 })
  process.env.FP_TEST_NATS_PASSWORD = 'pw-s3cret-17'
  t.teardown(() => {
    delete process.env.FP_TEST_NATS_PASSWORD
  })
  const a = await subscriber(t, { server: server.url, subject: 'u.cam', user: 'cam', password: 'env:FP_TEST_NATS_PASSWORD' })
  const b = await subscriber(t, { server: server.url, subject: 'u.cam', nkey: `@${seedFile}` })
  await pipeline(fromItems([testFrame(0, 100)]), natsSink({ server: server.url, subject: 'u.cam', nkey: `@${seedFile}` }))
  await waitFor(() => a.frames.length >= 1 && b.frames.length >= 1, 10_000, 'the frame')
  const wrong = natsSource({ server: server.url, subject: 'u.cam', user: 'cam', password: 'pw-wrong' })
  const err = await t.throwsAsync(pipeline(wrong, collector().sink))
  t.regex(err!.message, /refused the credentials/)
  t.false(err!.message.includes('pw-wrong'))
  t.throws(() => natsSource({ subject: 'a', nkey: 'SUnot-a-seed' }), { message: /^nats: nkey: expected a user nkey seed \(starts with SU/ })
})

// ------------------------------------------------- TLS

const execFileAsync = promisify(execFile)

withServer('TLS: with the CA the connection is made; without it, one line naming the certificate problem', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const file = (name: string) => join(dir, name)
  try {
    await execFileAsync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=frame-pipe test CA',
      '-keyout',
      file('ca.key'),
      '-out',
      file('ca.pem'),
    ])
    await execFileAsync('openssl', [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      file('server.key'),
      '-out',
      file('server.csr'),
    ])
    await writeFile(file('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
    await execFileAsync('openssl', [
      'x509',
      '-req',
      '-in',
      file('server.csr'),
      '-CA',
      file('ca.pem'),
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      file('ext.cnf'),
      '-out',
      file('server.pem'),
    ])
  } catch (err) {
    return void t.log(`openssl could not make test certificates (${(err as Error).message}); TLS not tested`)
  }
  const server = await startNatsServer(t, {
    extra: `tls { cert_file: ${JSON.stringify(file('server.pem'))}, key_file: ${JSON.stringify(file('server.key'))} }`,
  })
  const sub = await subscriber(t, { server: server.url, subject: 'tls.cam', ca: file('ca.pem') })
  await pipeline(
    fromItems([testFrame(0, 5000)]),
    natsSink({ server: `tls://127.0.0.1:${server.port}`, subject: 'tls.cam', ca: file('ca.pem') }),
  )
  await waitFor(() => sub.frames.length >= 1, 10_000, 'the frame over TLS')
  const untrusted = natsSource({ server: server.url, subject: 'tls.cam', tls: true })
  const err = await t.throwsAsync(pipeline(untrusted, collector().sink))
  t.regex(err!.message, /^nats: TLS with 127\.0\.0\.1:\d+ failed: .*certificate.*give the CA that signed the server's certificate with ca=/)
})

// ------------------------------------------------- options (no server)

test('options: subjects, credentials and combinations are checked before anything connects', (t) => {
  t.throws(() => natsSink({ subject: 'frames.*' }), {
    instanceOf: InvalidOptionError,
    message: /subject 'frames\.\*' has a wildcard: a publisher needs one subject/,
  })
  t.throws(() => natsSource({ subject: 'frames..cam' }), { message: /has an empty token/ })
  t.throws(() => natsSource({ subject: 'frames.>.x' }), { message: /> stands for the rest/ })
  t.notThrows(() => natsSource({ subject: 'frames.*.hd' }).destroy())
  t.throws(() => natsSource({ subject: 'a', queue: 'w', last: true }), { message: /queue= shares live frames/ })
  t.throws(() => natsSource({ subject: 'a', server: 'nats://cam:pw@host:4222' }), { message: /credentials in the URL would show in ps/ })
  t.throws(() => natsSource({ subject: 'a', token: 't', user: 'u' }), {
    message: /give one way to authenticate, not token and user\/password/,
  })
  t.throws(() => natsSource({ subject: 'a', password: 'p' }), { message: /password needs user=/ })
  t.throws(() => natsSource({ subject: 'a', cert: '/x.pem' }), { message: /needs both cert= and key=/ })
  t.throws(() => natsSink({} as never), { message: /option 'subject' is required/ })
  t.throws(() => natsSource({ subject: 'a', creds: '/nonexistent/user.creds' }), {
    message: /^nats: creds: cannot read the file \/nonexistent\/user\.creds \(ENOENT\)$/,
  })
})

test('creds: a file that is not a NATS creds file is refused without echoing it', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const path = join(dir, 'user.creds')
  await writeFile(path, 'SUSECRETSEEDTEXT\n')
  const err = t.throws(() => natsSource({ subject: 'a', creds: path }), { message: /^nats: creds: .*user\.creds is not a NATS creds file/ })
  t.false(err!.message.includes('SUSECRETSEEDTEXT'))
})

test('no server: one line, and waitForServer keeps trying', async (t) => {
  // Nothing listens there: freePort() has just closed it.
  const port = await freePort()
  const err = await t.throwsAsync(pipeline(natsSource({ server: `127.0.0.1:${port}`, subject: 'a' }), collector().sink))
  t.regex(err!.message, /^nats: connection refused by 127\.0\.0\.1:\d+ \(is nats-server running\?\)$/)
  const waiting = natsSource({ server: `127.0.0.1:${port}`, subject: 'a', waitForServer: true, retryMin: 20, retryMax: 40 })
  const retries: string[] = []
  waiting.on('retry', (e: { message: string }) => retries.push(e.message))
  const run = pipeline(waiting, collector().sink).catch((e: Error) => e)
  await waitFor(() => retries.length >= 2, 10_000, 'retries')
  t.regex(retries[1]!, /^connecting to 127\.0\.0\.1:\d+ failed \(refused\); retrying in 40 ms$/)
  waiting.destroy()
  await run
})

withServer('the CLI logs connect, disconnect and reconnect as lines', async (t) => {
  const server = await startNatsServer(t)
  const p = frameProc(t, `nats server=${server.url} subject=log.cam retryMin=50ms retryMax=200ms ! null`)
  await waitStderr(p, /^nats: connected to 127\.0\.0\.1:\d+ \(nats-server [\d.]+, max_payload 1048576 bytes\)$/m, 30_000)
  await server.stop()
  await waitStderr(p, /^nats: disconnected from 127\.0\.0\.1:\d+$/m, 20_000)
  await waitStderr(p, /^nats: reconnecting to 127\.0\.0\.1:\d+ failed; retrying in \d+ ms$/m, 20_000)
  await server.start()
  await waitStderr(p, /^nats: reconnected to 127\.0\.0\.1:\d+$/m, 20_000)
  p.child.kill('SIGINT')
  t.is(await withTimeout(p.exit, 15_000, 'exit'), 0)
})

test('a connection lost while the subscription is being confirmed is a reconnect, not a failure', async (t) => {
  // A scripted server: the first connection answers the handshake's PING and closes on the next
  // one (the subscription's); later connections answer every PING. No nats-server needed.
  let connections = 0
  const subs: string[] = []
  const server = net.createServer((socket) => {
    const n = ++connections
    let pings = 0
    let text = ''
    socket.on('error', () => undefined)
    socket.write(
      `INFO {"server_id":"fake","server_name":"fake","version":"2.9.10","proto":1,"go":"go1.20","host":"127.0.0.1","port":${(server.address() as net.AddressInfo).port},"headers":true,"max_payload":1048576}\r\n`,
    )
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1')
      let end: number
      while ((end = text.indexOf('\r\n')) >= 0) {
        const line = text.slice(0, end)
        text = text.slice(end + 2)
        if (line.startsWith('SUB ')) subs.push(`${n}: ${line}`)
        if (line !== 'PING') continue
        if (n === 1 && ++pings === 2) socket.destroy()
        else socket.write('PONG\r\n')
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const source = natsSource({
    server: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    subject: 'cam.a',
    retryMin: 20,
    retryMax: 40,
  })
  const infos: string[] = []
  const connects: string[] = []
  source.on('info', (m: string) => infos.push(m))
  source.on('connect', (e: { message: string }) => connects.push(e.message))
  const run = pipeline(source, collector().sink).then(
    () => undefined,
    (err: Error) => err,
  )
  await waitFor(() => subs.some((s) => s.startsWith('2: SUB cam.a')), 10_000, 'the subscription sent again on the second connection')
  await waitFor(() => connects.some((m) => m.startsWith('reconnected to ')), 10_000, 'the reconnect')
  t.false(source.destroyed)
  t.true(infos.includes('subscribing to cam.a once the connection is back'), infos.join(' | '))
  stopSource(source)
  t.is(await withTimeout(run, 10_000, 'pipeline end'), undefined)
})
