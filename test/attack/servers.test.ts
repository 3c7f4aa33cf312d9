// Attacks on the serving side (issue 10, items 6 and 10): clients that never
// read, or say nothing, must not keep their slots for good (tcp-server sink,
// cmd-server, snapshot-server); garbage and refused connections must not
// flood the log. After each attack a well-behaved client is served.

import test from 'ava'
import { once } from 'node:events'
import net, { type Socket } from 'node:net'
import { Readable } from 'node:stream'
import { makeFrame, now } from '../../src/core/frame.js'
import { pipeline } from '../../src/core/pipeline.js'
import { stageInfo, type Counters } from '../../src/core/stage.js'
import { cmdServer } from '../../src/sinks/cmd-server.js'
import { snapshotServer } from '../../src/sinks/snapshot-server.js'
import { tcpServer as tcpServerSink } from '../../src/sinks/tcp-server.js'
import { withTimeout } from '../helpers/index.js'
import { figure, procStats, startCli, until } from './helpers.js'

/** Resolves when the socket closes, whatever ended it (a reset from the server included: 'error' does not reject). */
function closed(s: net.Socket): Promise<void> {
  return s.destroyed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve()))
}

const counters = (s: object): Counters => stageInfo(s as never)!.counters

function fakeJpeg(i: number, size: number): Buffer {
  const b = Buffer.alloc(size, (i * 7) & 0xff)
  b[0] = 0xff
  b[1] = 0xd8
  b[2] = 0xff
  b.writeUInt32BE(i, 3)
  b[size - 2] = 0xff
  b[size - 1] = 0xd9
  return b
}

/** An endless source of `size`-byte items, one every few ms (frames, or [header, payload] packets). */
function endless(size: number, packets: boolean): Readable {
  let i = 0
  return new Readable({
    objectMode: true,
    read() {
      setTimeout(() => {
        const data = fakeJpeg(i++, size)
        if (!packets) return void this.push(makeFrame(data, { seq: i, timestamp: now() }))
        const header = Buffer.alloc(4)
        header.writeUInt32BE(size)
        this.push([header, data])
      }, 2)
    },
  })
}

/** A client that connects, optionally writes, and never reads. */
async function stalledClient(port: number, write?: string): Promise<Socket> {
  const s = net.connect(port, '127.0.0.1')
  s.on('error', () => undefined)
  s.pause()
  await once(s, 'connect')
  if (write) s.write(write)
  return s
}

/** A reading client: resolves with the bytes it got once it has `want` of them. */
function reader(port: number, write: string | undefined, want: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      if (write) s.write(write)
    })
    let got = 0
    s.on('data', (d: Buffer) => {
      got += d.length
      if (got >= want) {
        s.destroy()
        resolve(got)
      }
    })
    s.on('error', reject)
    s.on('close', () => (got < want ? reject(new Error(`closed after ${got} bytes`)) : undefined))
  })
}

/** Try `attempt` again while the server refuses it (closed or reset before the answer). */
async function untilServed(attempt: () => Promise<number>): Promise<number> {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt()
    } catch (err) {
      if (tries >= 100) throw err
      await new Promise((r) => setTimeout(r, 20))
    }
  }
}

type Server = ReturnType<typeof tcpServerSink> | ReturnType<typeof cmdServer> | ReturnType<typeof snapshotServer>

const CASES: Array<{ name: string; make: () => Server; packets: boolean; request?: string; counter: string }> = [
  { name: 'tcp-server sink', make: () => tcpServerSink({ port: 0, maxClients: 4, sendTimeout: 1000 }), packets: true, counter: 'stalled' },
  {
    name: 'cmd-server (streaming clients)',
    make: () => cmdServer({ port: 0, maxClients: 4, sendTimeout: 1000 }),
    packets: false,
    request: '3',
    counter: 'stalled',
  },
  {
    name: 'snapshot-server',
    make: () => snapshotServer({ port: 0, maxClients: 4, idleTimeout: 1000 }),
    packets: false,
    request: 'G',
    counter: 'idle',
  },
]

for (const c of CASES) {
  test(`${c.name}: 4 clients that never read lose their slots; the next client is served`, async (t) => {
    const sink = c.make()
    const done = pipeline(endless(200_000, c.packets), sink)
    done.catch(() => undefined)
    t.teardown(() => sink.destroy())
    if (!sink.address()) await withTimeout(once(sink, 'listening'), 5000, 'listening')
    const port = sink.address()!.port
    const stalled: Socket[] = []
    t.teardown(() => {
      for (const s of stalled) s.destroy()
    })
    for (let k = 0; k < 4; k++) stalled.push(await stalledClient(port, c.request))
    await until(() => counters(sink).clients === 4, 5000, 'four clients')
    // A fifth is refused while the four hold their slots.
    const fifth = net.connect(port, '127.0.0.1')
    fifth.on('error', () => undefined)
    fifth.resume()
    await withTimeout(closed(fifth), 5000, 'fifth refused')
    const t0 = Date.now()
    await until(() => counters(sink)[c.counter] === 4, 15_000, `the four cut off (${c.counter})`)
    // A closed client's slot is free once its connection is gone (at most linger after our FIN).
    await until(() => counters(sink).clients === 0, 15_000, 'slots free')
    const took = Date.now() - t0
    // Two frames (snapshot-server: one reply per request).
    const want = c.request === 'G' ? 200_000 : 400_000
    const got = await withTimeout(reader(port, c.request, want), 10_000, 'a new client served')
    t.true(got >= want)
    figure(t, `6-${c.name}`, { cutOff: 4, counter: c.counter, msToCut: took, newClientBytes: got })
  })
}

test('cmd-server: a client that never sends a command is closed after idleTimeout', async (t) => {
  const sink = cmdServer({ port: 0, idleTimeout: 300 })
  const done = pipeline(endless(1000, false), sink)
  done.catch(() => undefined)
  t.teardown(() => sink.destroy())
  await withTimeout(once(sink, 'listening'), 5000, 'listening')
  const silent = net.connect(sink.address()!.port, '127.0.0.1')
  silent.on('error', () => undefined)
  silent.resume()
  await withTimeout(closed(silent), 5000, 'silent client closed')
  t.is(counters(sink).idle, 1)
})

test('CLI cmd-server: 1000 garbage writes and 200 refused connections give a few rate-limited lines, one prefix each; a good client is served', async (t) => {
  const cli = startCli(t, 'testsrc fps=20 width=160 height=120 ! jpeg ! cmd-server port=0 maxClients=2')
  const port = await cli.port('cmd-server')
  const before = procStats(cli.pid)
  const linesBefore = cli.lines.length
  const garbage = net.connect(port, '127.0.0.1')
  garbage.on('error', () => undefined)
  garbage.setNoDelay(true)
  await once(garbage, 'connect')
  for (let i = 0; i < 1000; i++) {
    garbage.write('xyz\xff')
    // About one read per write on the server: writes a millisecond apart.
    if (garbage.writableLength > 0) await once(garbage, 'drain')
    await new Promise((r) => setTimeout(r, 1))
  }
  const holder = net.connect(port, '127.0.0.1')
  holder.on('error', () => undefined)
  await once(holder, 'connect')
  // Both slots taken: 200 more connections are refused.
  for (let i = 0; i < 200; i++) {
    const s = net.connect(port, '127.0.0.1')
    s.on('error', () => undefined)
    s.resume()
    await closed(s)
  }
  garbage.destroy()
  holder.destroy()
  // A good client: '0' asks for one image, which comes as a u32be length and a JPEG.
  // The server frees the two slots when it sees them close; a client that comes sooner is refused, as it
  // should be, so it tries again (bounded by the timeout).
  const got = await withTimeout(
    untilServed(() => reader(port, '0', 4)),
    10_000,
    'one image',
  )
  t.true(got >= 4)
  const after = procStats(cli.pid)
  const lines = cli.lines.slice(linesBefore)
  const garbageLines = lines.filter((l) => /unknown command/.test(l)).length
  // Reads of garbage: the lines logged plus the ones they say were held back.
  const heldBack = lines.reduce((n, l) => n + Number(/\((\d+) more held back/.exec(l)?.[1] ?? 0), 0)
  const refusedLines = lines.filter((l) => /refused/.test(l)).length
  t.true(garbageLines <= 40, `${garbageLines} lines for 1000 garbage writes`)
  t.true(refusedLines <= 40, `${refusedLines} lines for 200 refused connections`)
  t.true(
    lines.every((l) => !/^([\w-]+): \1: /.test(l)),
    'one prefix per line',
  )
  t.true(cli.alive())
  await cli.stop()
  figure(t, '10', {
    garbageWrites: 1000,
    garbageLines,
    heldBack,
    refusedConnections: 200,
    refusedLines,
    rssKiB: `${before.rssKiB} → ${after.rssKiB}`,
    fds: `${before.fds} → ${after.fds}`,
  })
})
