// Request/reply: snapshot-server keeps the newest frame, snapshot-client and
// requestSnapshot() ask for it ('G' → native header + payload).

import test, { type ExecutionContext } from 'ava'
import net, { type AddressInfo, type Socket } from 'node:net'
import { once } from 'node:events'
import { Writable } from 'node:stream'
import { FramePipeError } from '../../src/core/errors.js'
import { makeFrame, type Frame } from '../../src/core/frame.js'
import { encodeHeader } from '../../src/wire/headers.js'
import { FrameParser } from '../../src/wire/length-parser.js'
import { pipeline } from '../../src/core/pipeline.js'
import { snapshotServer } from '../../src/sinks/snapshot-server.js'
import type { SnapshotServer } from '../../src/protocols/snapshot/server.js'
import { requestSnapshot, snapshotClient } from '../../src/sources/snapshot-client.js'
import { newCounters, stageInfo } from '../../src/core/stage.js'
import { collect, withTimeout } from '../helpers/index.js'

const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0])

/** Capture times near our clock: a client replaces one more than an hour off by the arrival time (maxClockSkew). */
const T0 = Math.floor(Date.now())

function frame(n: number, size = 100): Frame {
  const data = Buffer.concat([JPEG, Buffer.alloc(size - JPEG.length, n & 0xff)])
  return makeFrame(data, { seq: n, width: 160, height: 120, channels: 3, timestamp: T0 + n + 0.25 })
}

/** A snapshot-server written to directly (no source: the test decides which frame is the newest). */
async function server(
  t: ExecutionContext,
  options: Parameters<typeof snapshotServer>[0] = {},
): Promise<{ sink: SnapshotServer; port: number }> {
  const sink = snapshotServer({ port: 0, ...options })
  t.teardown(() => {
    sink.destroy()
  })
  if (!sink.address()) await withTimeout(once(sink, 'listening'), 5000, 'listening')
  return { sink, port: sink.address()!.port }
}

async function write(sink: SnapshotServer, f: Frame): Promise<void> {
  await new Promise<void>((resolve, reject) => sink.write(f, (err) => (err ? reject(err) : resolve())))
}

function same(t: ExecutionContext, got: Frame, want: Frame): void {
  t.true(got.data.equals(want.data), `payload of seq ${want.seq}`)
  // A frame from the network names the peer it came from.
  const { peer, ...meta } = got
  t.regex(peer ?? '', /^127\.0\.0\.1:\d+$/)
  t.deepEqual({ ...meta, data: null }, { ...want, data: null }, 'metadata survives the trip')
}

/** A raw TCP client that parses native replies. */
async function rawClient(t: ExecutionContext, port: number): Promise<{ socket: Socket; frames: Frame[]; closed: Promise<unknown> }> {
  const socket = net.connect({ host: '127.0.0.1', port })
  t.teardown(() => {
    socket.destroy()
  })
  const frames: Frame[] = []
  const parser = new FrameParser({
    header: 'native',
    maxFrameBytes: 2 ** 20,
    stage: 'test',
    counters: newCounters(),
    onFrame: (f) => frames.push(f),
    onWarning: () => undefined,
  })
  socket.on('data', (c: Buffer) => {
    const err = parser.feed(c)
    if (err) socket.destroy(err)
  })
  const closed = once(socket, 'close')
  await withTimeout(once(socket, 'connect'), 5000, 'connect')
  return { socket, frames, closed }
}

function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  return withTimeout(
    (async () => {
      while (!cond()) await new Promise((r) => setTimeout(r, 5))
    })(),
    ms,
    what,
  )
}

test('requestSnapshot gets the newest frame, metadata and all', async (t) => {
  const { sink, port } = await server(t)
  await write(sink, frame(1))
  same(t, await withTimeout(requestSnapshot({ port }), 5000), frame(1))
  await write(sink, frame(2))
  await write(sink, frame(3))
  same(t, await withTimeout(requestSnapshot({ port }), 5000), frame(3))
})

test('a request before the first frame waits for it', async (t) => {
  const { sink, port } = await server(t)
  const reply = requestSnapshot({ port, timeout: 5000 })
  await new Promise((r) => setTimeout(r, 100))
  await write(sink, frame(7))
  same(t, await withTimeout(reply, 5000), frame(7))
})

test('many clients at once each get the newest frame', async (t) => {
  const { sink, port } = await server(t)
  await write(sink, frame(5, 50_000))
  const replies = await withTimeout(Promise.all(Array.from({ length: 8 }, () => requestSnapshot({ port }))), 5000)
  for (const r of replies) same(t, r, frame(5, 50_000))
  t.true(stageInfo(sink)!.counters.bytes >= 8 * 50_040)
})

test('the wire: one G, one native header and payload; pipelined requests get one reply each', async (t) => {
  const { sink, port } = await server(t, { checksum: true })
  const f = frame(9, 16)
  await write(sink, f)
  const c = await rawClient(t, port)
  const bytes: Buffer[] = []
  c.socket.on('data', (d: Buffer) => bytes.push(d))
  c.socket.write('G')
  await until(() => c.frames.length === 1, 'one reply')
  const expected = encodeHeader('native', f, true, 'test') as Buffer
  t.is(Buffer.concat(bytes).toString('hex'), expected.toString('hex') + f.data.toString('hex'))
  t.is(Buffer.concat(bytes).subarray(0, 4).toString('latin1'), 'FRMP')
  c.socket.write('GGG\r\n')
  await until(() => c.frames.length === 4, 'three more replies')
  await new Promise((r) => setTimeout(r, 50))
  t.is(c.frames.length, 4, 'no reply without a request')
})

test('anything but G closes the connection with a warning; the server goes on', async (t) => {
  const { sink, port } = await server(t)
  const warnings: Error[] = []
  sink.on('warning', (w: Error) => warnings.push(w))
  await write(sink, frame(1))
  const bad = await rawClient(t, port)
  bad.socket.write('0')
  await withTimeout(bad.closed, 5000, 'bad client closed')
  t.is(bad.frames.length, 0)
  t.is(warnings.length, 1)
  t.regex(warnings[0]!.message, /^snapshot-server: 127\.0\.0\.1:\d+ sent 30, not a request \('G' = 47\); connection closed$/)
  same(t, await withTimeout(requestSnapshot({ port }), 5000), frame(1))
})

test('snapshot-client asks once per period and ends after count', async (t) => {
  const { sink, port } = await server(t)
  await write(sink, frame(1))
  const client = snapshotClient({ port, every: 20, count: 3 })
  t.teardown(() => {
    client.destroy()
  })
  let n = 1
  const got: Frame[] = []
  await withTimeout(
    pipeline(
      client,
      new Writable({
        objectMode: true,
        write(f: Frame, _e, cb) {
          got.push(f)
          write(sink, frame(++n)).then(() => cb(), cb)
        },
      }),
    ),
    5000,
    'pipeline',
  )
  t.deepEqual(
    got.map((f) => f.seq),
    [1, 2, 3],
    'each request got the frame that was newest then',
  )
})

test('snapshot-client asks only while downstream wants frames', async (t) => {
  let requests = 0
  const reply = Buffer.concat([encodeHeader('native', frame(1), false, 'test') as Buffer, frame(1).data])
  const raw = net.createServer((s) => {
    s.on('data', (d: Buffer) => {
      for (const b of d)
        if (b === 0x47) {
          requests++
          s.write(reply)
        }
    })
  })
  t.teardown(() => {
    raw.close()
  })
  raw.listen(0, '127.0.0.1')
  await once(raw, 'listening')
  const client = snapshotClient({ port: (raw.address() as AddressInfo).port, every: 0, count: 10 })
  t.teardown(() => {
    client.destroy()
  })
  let consumed = 0
  let maxAhead = 0
  await withTimeout(
    pipeline(
      client,
      new Writable({
        objectMode: true,
        highWaterMark: 1,
        write(_f, _e, cb) {
          consumed++
          maxAhead = Math.max(maxAhead, requests - consumed)
          setTimeout(cb, 20)
        },
      }),
    ),
    10_000,
    'pipeline',
  )
  t.is(consumed, 10)
  t.is(requests, 10, 'no request beyond count')
  t.true(maxAhead <= 3, `asked ${maxAhead} frames ahead of the consumer`)
})

test('server gone: refused, no reply, closed — one clear error each', async (t) => {
  const probe = net.createServer()
  probe.listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const freePort = (probe.address() as AddressInfo).port
  probe.close()
  await once(probe, 'close')
  const refused = await t.throwsAsync(withTimeout(requestSnapshot({ port: freePort }), 5000))
  t.like(refused, { code: 'ERR_NETWORK', message: `snapshot-client: connection refused by 127.0.0.1:${freePort} (is the server running?)` })

  const sockets: Socket[] = []
  const mute = net.createServer((s) => {
    sockets.push(s)
    s.resume()
  })
  t.teardown(() => {
    mute.close()
    for (const s of sockets) s.destroy()
  })
  mute.listen(0, '127.0.0.1')
  await once(mute, 'listening')
  const mutePort = (mute.address() as AddressInfo).port
  const silent = await t.throwsAsync(withTimeout(requestSnapshot({ port: mutePort, timeout: 200 }), 5000))
  t.like(silent, { code: 'ERR_NETWORK', message: `snapshot-client: no reply from 127.0.0.1:${mutePort} within 200ms` })

  const { sink, port } = await server(t)
  await write(sink, frame(1))
  const client = snapshotClient({ port, every: 50 })
  t.teardown(() => {
    client.destroy()
  })
  const frames: Frame[] = []
  const done = pipeline(
    client,
    new Writable({
      objectMode: true,
      write(f: Frame, _e, cb) {
        frames.push(f)
        if (frames.length === 2) sink.destroy()
        cb()
      },
    }),
  )
  const lost = await t.throwsAsync(withTimeout(done, 5000, 'pipeline'))
  t.true(lost instanceof FramePipeError)
  t.regex(
    lost!.message,
    new RegExp(
      `^snapshot-client: (127\\.0\\.0\\.1:${port} closed the connection( before replying)?|connection to 127\\.0\\.0\\.1:${port} failed: .*)$`,
    ),
  )
})

test('snapshot-server passes frames on and releases its clients at the end', async (t) => {
  const sink = snapshotServer({ port: 0, linger: 200 })
  if (!sink.address()) await withTimeout(once(sink, 'listening'), 5000)
  const port = sink.address()!.port
  const c = await rawClient(t, port)
  c.socket.write('G')
  // Requests that arrive after the end are not answered: make sure this one is in.
  await until(() => stageInfo(sink)!.counters.requests === 1, 'request received')
  const passed = collect<Frame>(sink)
  sink.end(frame(4))
  t.deepEqual(
    (await withTimeout(passed, 5000)).map((f) => f.seq),
    [4],
  )
  await withTimeout(c.closed, 5000, 'client released')
  t.deepEqual(
    c.frames.map((f) => f.seq),
    [4],
  )
})

test('snapshot-client: stop() before the connection is made ends at once', async (t) => {
  const { sink, port } = await server(t)
  await write(sink, frame(1))
  const client = snapshotClient({ port })
  client.stop()
  t.deepEqual(await withTimeout(collect(client), 5000, 'end'), [])
  t.is(stageInfo(sink)!.counters.requests, 0)
})
