// Attacks on the TCP receiving side (issue 10, items 1 and 3): a peer that
// sends a malformed header, a well-framed payload that is not a JPEG, or
// nothing at all must cost that peer only. Each case then serves a
// well-behaved peer and counts its frames.

import test from 'ava'
import net, { type Socket } from 'node:net'
import { once } from 'node:events'
import { readdir } from 'node:fs/promises'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { crc32 } from 'node:zlib'
import sharp from 'sharp'
import { makeFrame, type Frame } from '../../src/core/frame.js'
import { stageInfo, type Counters } from '../../src/core/stage.js'
import { encodeHeader, type HeaderFormat, type UnprefixHeader } from '../../src/wire/headers.js'
import { tcpServer as tcpServerSource } from '../../src/sources/tcp-server.js'
import { tcpClient as tcpClientSource } from '../../src/sources/tcp-client.js'
import { unprefix } from '../../src/transforms/unprefix.js'
import { tempDir, withTimeout } from '../helpers/index.js'
import { figure, procStats, startCli, until } from './helpers.js'

const counters = (s: object): Counters => stageInfo(s as never)!.counters

let jpegCache: Buffer | undefined
/** A real 160x120 JPEG (about 5 KB). */
async function jpeg(): Promise<Buffer> {
  jpegCache ??= await sharp({ create: { width: 160, height: 120, channels: 3, background: '#3a6' } })
    .jpeg({ quality: 80 })
    .toBuffer()
  return jpegCache
}

/** `n` frames of `format`, each with the JPEG as payload and a timestamp of now. */
async function wire(format: HeaderFormat, n: number, stamp: (i: number) => number = () => Date.now()): Promise<Buffer> {
  const data = await jpeg()
  const parts: Buffer[] = []
  for (let i = 0; i < n; i++) {
    const f = makeFrame(data, { seq: i, width: 160, height: 120, channels: 3, timestamp: stamp(i) })
    parts.push(encodeHeader(format, f, format === 'native', 'test') as Buffer, data)
  }
  return Buffer.concat(parts)
}

function nativeHeader(o: { magic?: string; version?: number; headerLength?: number; length: number; crc?: number }): Buffer {
  const h = Buffer.alloc(40)
  h.write(o.magic ?? 'FRMP', 0, 'latin1')
  h[4] = o.version ?? 1
  h[5] = o.crc === undefined ? 0 : 1
  h.writeUInt16BE(o.headerLength ?? 40, 6)
  h.writeUInt32BE(o.length, 8)
  h.writeDoubleBE(Date.now(), 16)
  h.writeUInt32BE(o.crc ?? 0, 36)
  return h
}

/** The malformed headers tried (the 16 and a few more), by the header= they are sent to. */
const MALFORMED: Array<{ header: UnprefixHeader; what: string; bytes: () => Buffer }> = [
  { header: 'u32be', what: 'ff ff ff ff (4 GiB)', bytes: () => Buffer.from([0xff, 0xff, 0xff, 0xff]) },
  { header: 'u32be', what: 'text in the stream', bytes: () => Buffer.from('Unknown command') },
  { header: 'u32le', what: 'ff ff ff ff (4 GiB)', bytes: () => Buffer.from([0xff, 0xff, 0xff, 0xff]) },
  { header: 'ii', what: 'two different lengths', bytes: () => Buffer.from([5, 0, 0, 0, 6, 0, 0, 0]) },
  { header: 'ii', what: 'a negative length', bytes: () => Buffer.alloc(8, 0xff) },
  { header: 'i64le', what: 'a huge length', bytes: () => Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x7f]) },
  { header: 'i64le', what: 'a negative length', bytes: () => Buffer.alloc(8, 0xff) },
  { header: 'native', what: 'bad magic', bytes: () => nativeHeader({ magic: 'XXXX', length: 10 }) },
  { header: 'native', what: 'version 2', bytes: () => nativeHeader({ version: 2, length: 10 }) },
  { header: 'native', what: 'header length 8', bytes: () => nativeHeader({ headerLength: 8, length: 10 }) },
  { header: 'native', what: 'length 4 GiB', bytes: () => nativeHeader({ length: 0xffffffff }) },
  {
    header: 'native',
    what: 'CRC mismatch',
    bytes: () => Buffer.concat([nativeHeader({ length: 5, crc: crc32(Buffer.from('right')) }), Buffer.from('wrong')]),
  },
  { header: 'ascii', what: '20 ASCII digits', bytes: () => Buffer.from('99999999999999999999') },
  { header: 'ascii', what: 'no digit first', bytes: () => Buffer.from('x123') },
  { header: 'auto', what: 'garbage', bytes: () => Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n') },
  { header: 'auto', what: 'ff ff ff ff', bytes: () => Buffer.alloc(64, 0xff) },
]

async function connect(port: number): Promise<Socket> {
  const s = net.connect({ host: '127.0.0.1', port })
  s.on('error', () => undefined)
  await once(s, 'connect')
  return s
}

/** Resolves when the server closes the connection (reading what it sends). */
function closed(s: Socket): Promise<void> {
  s.resume()
  return s.destroyed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve()))
}

for (const header of [...new Set(MALFORMED.map((m) => m.header))]) {
  test(`tcp-server ! unprefix header=${header}: each malformed header costs its peer only; the next peer is served`, async (t) => {
    const source = tcpServerSource({ port: 0 })
    const cutter = unprefix({ header })
    const frames: Frame[] = []
    const warnings: Error[] = []
    cutter.on('warning', (w: Error) => warnings.push(w))
    const done = pipeline(
      source,
      cutter,
      new Writable({
        objectMode: true,
        write(f: Frame, _e, cb) {
          frames.push(f)
          cb()
        },
      }),
    )
    t.teardown(() => source.destroy())
    await withTimeout(once(source, 'listening'), 5000, 'listening')
    const port = source.address()!.port
    const cases = MALFORMED.filter((m) => m.header === header)
    const good = await wire(header === 'auto' ? 'u32be' : header, 3)
    for (const [i, c] of cases.entries()) {
      const bad = await connect(port)
      const gone = closed(bad)
      // The attacker stays connected: the server hangs up on it.
      bad.write(c.bytes())
      await withTimeout(gone, 5000, `hang-up on ${c.what}`)
      const ok = await connect(port)
      ok.end(good)
      await until(() => frames.length === 3 * (i + 1), 5000, `good peer's frames after ${c.what}`)
    }
    t.is(counters(cutter).badPeers, cases.length)
    t.true(warnings.length >= 1 && warnings.every((w) => /^unprefix: peer 127\.0\.0\.1:\d+ cut off: /.test(w.message)))
    t.true(frames.every((f) => f.data.equals(jpegCache!)))
    source.stop()
    await withTimeout(done, 5000, 'pipeline end')
  })
}

test('tcp-client reconnect=true ! unprefix: a server that sends a bad header is hung up on and reconnected to', async (t) => {
  let n = 0
  const good = await wire('u32be', 2)
  const server = net.createServer((s) => {
    s.on('error', () => undefined)
    // The first connection gets garbage, the next ones two good frames each.
    s.end(n++ === 0 ? Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]) : good)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const source = tcpClientSource({ port: (server.address() as net.AddressInfo).port, reconnect: true, retryMin: 20 })
  const cutter = unprefix()
  const frames: Frame[] = []
  const done = pipeline(
    source,
    cutter,
    new Writable({
      objectMode: true,
      write(f: Frame, _e, cb) {
        frames.push(f)
        cb()
      },
    }),
  )
  await until(() => frames.length >= 2, 10_000, 'frames from the second connection')
  source.stop()
  await withTimeout(done, 5000, 'pipeline end')
  t.is(counters(cutter).badPeers, 1)
  t.true(frames.every((f) => f.peer !== undefined && f.data.equals(jpegCache!)))
})

// ---------------------------------------------------------------- the CLI, as in the issue

async function untilAsync(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

async function fileCount(dir: string): Promise<number> {
  return (await readdir(dir)).filter((f) => !f.startsWith('.')).length
}

test('CLI tcp-server ! unprefix ! avi ! files: 16 malformed headers and 16 well-framed non-JPEG payloads; the process stays up and records every good frame', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  // header=auto: every format's malformed header reaches the same pipeline. An attacker whose
  // header is incomplete and who then goes quiet is cut by idleTimeout once the good peer waits.
  const cli = startCli(t, `tcp-server port=0 idleTimeout=1s ! unprefix header=auto ! avi dir=${dir}/avi ! files dir=${dir}/files`)
  const port = await cli.port('tcp-server')
  const good = await wire('u32be', 5)
  const before = procStats(cli.pid)
  let sent = 0
  const sendGood = async () => {
    const ok = await connect(port)
    ok.end(good)
    sent += 5
    await untilAsync(async () => (await fileCount(`${dir}/files`)) === sent, 10_000, `${sent} good frames written`)
  }
  for (const c of MALFORMED) {
    const bad = await connect(port)
    const gone = closed(bad)
    // The attacker stays connected: cut for its fault, or for its silence while the good peer waits.
    bad.write(c.bytes())
    await sendGood()
    await withTimeout(gone, 5000, `${c.what} cut off`)
  }
  // Well framed (native headers, which auto recognises by their magic), but not what avi takes:
  // each such frame is dropped and counted; the peer is not at fault for its framing.
  const text = (word: string) => {
    const data = Buffer.from(word)
    return [encodeHeader('native', makeFrame(data, { format: 'unknown' }), false, 'test') as Buffer, data]
  }
  for (let i = 0; i < 16; i++) {
    const s = await connect(port)
    s.end(Buffer.concat([...text('hello'), ...text('world')]))
    await sendGood()
  }
  const after = procStats(cli.pid)
  t.true(cli.alive())
  // The counters as of the next --json snapshot.
  const taken = cli.snapshots.length
  await until(() => cli.snapshots.length > taken, 5000, 'a --json snapshot')
  const server = cli.counters(0)!
  const cutter = cli.counters(1)!
  const recorder = cli.counters(2)!
  t.is((cutter.badPeers ?? 0) + server.timeouts!, MALFORMED.length)
  t.is(recorder.rejected, 32)
  t.is(recorder.frames, sent)
  t.is(await fileCount(`${dir}/files`), sent)
  t.true(after.fds <= before.fds + 2, `fds ${before.fds} → ${after.fds}`)
  const r = await cli.stop()
  t.is(r.code, 0)
  t.true(
    cli.lines.every((l) => !/^([\w-]+): \1: /.test(l)),
    'one prefix per line',
  )
  figure(t, '1', {
    attacks: MALFORMED.length + 16,
    goodFrames: `${recorder.frames}/${sent}`,
    badPeers: cutter.badPeers,
    idleCut: server.timeouts,
    rejected: recorder.rejected,
    rssKiB: `${before.rssKiB} → ${after.rssKiB}`,
    fds: `${before.fds} → ${after.fds}`,
    exit: r.code,
  })
})

test('CLI tcp-server idleTimeout=1s: one silent client and 16 silent waiting ones cannot lock out a real sender', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const cli = startCli(t, `tcp-server port=0 idleTimeout=1s ! unprefix ! files dir=${dir}`)
  const port = await cli.port('tcp-server')
  const before = procStats(cli.pid)
  const silent: Socket[] = []
  for (let i = 0; i < 17; i++) silent.push(await connect(port))
  await until(() => cli.lines.some((l) => /joined/.test(l)), 5000, 'the first silent client served')
  const started = Date.now()
  // The real sender retries while its connection is refused (all 16 waiting places are taken at first).
  let accepted: Socket | undefined
  const frames = await wire('u32be', 20)
  while (!accepted) {
    const s = await connect(port)
    const gone = closed(s)
    s.write(frames)
    const kept = await Promise.race([gone.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 200))])
    if (kept) accepted = s
    else if (Date.now() - started > 10_000) throw new Error('the real sender was never accepted')
  }
  accepted.end()
  await until(() => (cli.counters(2)?.frames ?? 0) === 20, 15_000, "the real sender's 20 frames")
  const took = Date.now() - started
  const after = procStats(cli.pid)
  const timeouts = cli.counters(0)!.timeouts
  t.true(timeouts! >= 1)
  t.true(cli.alive())
  for (const s of silent) s.destroy()
  await cli.stop()
  figure(t, '3', {
    goodFrames: '20/20',
    msToServeGood: took,
    idleCut: timeouts,
    rssKiB: `${before.rssKiB} → ${after.rssKiB}`,
    fds: `${before.fds} → ${after.fds}`,
  })
})
