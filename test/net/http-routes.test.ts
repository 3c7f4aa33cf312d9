// The http sink as a drop-in for other MJPEG servers (mjpg-streamer's
// /?action=stream and /?action=snapshot, µStreamer's /stream, /snapshot and
// /state) and for Prometheus (/metrics), over real loopback HTTP on port 0.

import test, { type ExecutionContext } from 'ava'
import http from 'node:http'
import { once } from 'node:events'
import { PassThrough, type Readable } from 'node:stream'
import { makeFrame, now, type Frame } from '../../src/core/frame.js'
import { pipeline } from '../../src/core/pipeline.js'
import { httpSink } from '../../src/sinks/http.js'
import type { HttpSink } from '../../src/net/http/viewer.js'
import { routeOf, type Route } from '../../src/net/http/routes.js'
import { stats } from '../../src/transforms/stats.js'
import type { Staged } from '../../src/core/stage.js'
import { withTimeout } from '../helpers/index.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A JPEG-shaped payload carrying its index: FF D8 FF, u32 index, filler, FF D9. */
function fakeJpeg(i: number, size = 1000): Buffer {
  const b = Buffer.alloc(size, (i * 7) & 0xff)
  b[0] = 0xff
  b[1] = 0xd8
  b[2] = 0xff
  b.writeUInt32BE(i, 3)
  b[b.length - 2] = 0xff
  b[b.length - 1] = 0xd9
  return b
}

function frameOf(i: number, age = 0): Frame {
  return makeFrame(fakeJpeg(i), { seq: i, timestamp: now() - age })
}

/** Start `source ! …stages ! http` through pipeline() and wait until it listens. */
async function serve(t: ExecutionContext, source: Readable, middle: Readable[] = []): Promise<{ sink: Staged<HttpSink>; url: string }> {
  const sink = httpSink({ port: 0 })
  const done = pipeline(source, ...(middle as never[]), sink)
  done.catch(() => undefined)
  t.teardown(() => {
    source.destroy()
    sink.destroy()
  })
  if (!sink.address()) await withTimeout(once(sink, 'listening'), 5000, 'listening')
  return { sink, url: sink.url()! }
}

/** The first part of a multipart stream at `url`: its headers and body; the connection is closed after. */
function firstPart(url: string): Promise<{ type: string; headers: string; body: Buffer }> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = http.get(url, (res) => {
        let buf = Buffer.alloc(0)
        res.on('data', (d: Buffer) => {
          buf = Buffer.concat([buf, d])
          const head = buf.indexOf('\r\n\r\n')
          if (head < 0) return
          const headers = buf.subarray(0, head).toString('latin1')
          const length = Number(/Content-Length: (\d+)/i.exec(headers)?.[1])
          if (buf.length < head + 4 + length) return
          req.destroy()
          resolve({ type: String(res.headers['content-type']), headers, body: buf.subarray(head + 4, head + 4 + length) })
        })
        res.on('error', () => undefined)
      })
      req.on('error', reject)
    }),
    5000,
    `the first part of ${url}`,
  )
}

test('routeOf: the URLs of frame-pipe, mjpg-streamer and µStreamer', (t) => {
  const cases: Array<[string, Route]> = [
    ['/', 'page'],
    ['/index.html', 'page'],
    ['/?action=stream', 'stream'],
    ['/?action=snapshot', 'snapshot'],
    ['/?foo=1&action=stream&x', 'stream'],
    ['/?action=unknown', 'page'],
    ['/stream.mjpg', 'stream'],
    ['/stream', 'stream'],
    ['/stream?extra_headers=1', 'stream'],
    ['/snapshot.jpg', 'snapshot'],
    ['/snapshot', 'snapshot'],
    ['/stats', 'stats'],
    ['/state', 'state'],
    ['/metrics', 'metrics'],
    ['/streams', 'not-found'],
    ['/stream/', 'not-found'],
  ]
  for (const [target, route] of cases) t.is(routeOf(target).route, route, target)
})

test("mjpg-streamer's and µStreamer's stream and snapshot URLs serve the same stream and snapshot", async (t) => {
  const source = new PassThrough({ objectMode: true })
  const { url } = await serve(t, source)
  source.write(frameOf(7))
  for (const path of ['?action=snapshot', 'snapshot', 'snapshot.jpg']) {
    let res = await fetch(url + path)
    // The frame may still be on its way to the sink.
    for (let i = 0; res.status === 503 && i < 100; i++) {
      await res.arrayBuffer()
      await sleep(20)
      res = await fetch(url + path)
    }
    t.is(res.status, 200, path)
    t.is(res.headers.get('content-type'), 'image/jpeg', path)
    t.deepEqual(Buffer.from(await res.arrayBuffer()), fakeJpeg(7), path)
  }
  for (const path of ['?action=stream', 'stream', 'stream.mjpg']) {
    const part = await firstPart(url + path)
    t.regex(part.type, /^multipart\/x-mixed-replace; boundary=/, path)
    t.deepEqual(part.body, fakeJpeg(7), path)
  }
  // The page is still the page, with or without another query.
  const page = await fetch(url + '?action=nothing')
  t.is(page.headers.get('content-type'), 'text/html; charset=utf-8')
  await page.arrayBuffer()
})

test("/state is µStreamer's shape: resolution, online, fps and one entry per viewer", async (t) => {
  const source = new PassThrough({ objectMode: true })
  const { url } = await serve(t, source)
  const before = (await (await fetch(url + 'state')).json()) as any
  t.deepEqual(before, {
    ok: true,
    result: {
      encoder: { type: 'NOOP', quality: 0 },
      source: { resolution: { width: 0, height: 0 }, online: false, desired_fps: 0, captured_fps: 0 },
      stream: { queued_fps: 0, clients: 0, clients_stat: {} },
    },
  })
  const jpeg = await sharpJpeg(32, 24)
  source.write(makeFrame(jpeg, { seq: 0, timestamp: now() }))
  const viewer = http.get(url + 'stream')
  viewer.on('error', () => undefined)
  t.teardown(() => viewer.destroy())
  let state: any
  for (let i = 0; i < 200; i++) {
    state = await (await fetch(url + 'state')).json()
    if (state.result.stream.clients === 1 && state.result.source.online) break
    await sleep(20)
  }
  t.like(state.result.source, { resolution: { width: 32, height: 24 }, online: true })
  t.is(state.result.stream.clients, 1)
  const [id, stat] = Object.entries(state.result.stream.clients_stat)[0]!
  t.regex(id, /^[0-9a-f]+$/)
  t.like(stat, { extra_headers: false, advance_headers: false, dual_final_frames: false, zero_data: false })
  t.is(typeof (stat as { fps: unknown }).fps, 'number')
})

/** Every line of Prometheus' text format: a comment, or `name{labels} value`. */
const SAMPLE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (-?[0-9.]+(e[-+]?\d+)?|NaN|[+-]Inf)$/

function parseMetrics(text: string): Map<string, number> {
  const values = new Map<string, number>()
  for (const line of text.trimEnd().split('\n')) {
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue
    if (!SAMPLE.test(line)) throw new Error(`not a Prometheus sample line: ${line}`)
    const at = line.lastIndexOf(' ')
    values.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return values
}

test('/metrics: Prometheus text with the sink, every stage of its pipeline and the latency quantiles', async (t) => {
  // Open: the server lives while the source does.
  const source = new PassThrough({ objectMode: true })
  const tap = stats()
  const { url, sink } = await serve(t, source, [tap])
  for (let i = 0; i < 20; i++) source.write(frameOf(i, 10 + i))
  await withTimeout(
    (async () => {
      while (sink.stats().frames < 20) await sleep(10)
    })(),
    5000,
    'the frames to arrive',
  )
  const res = await fetch(url + 'metrics')
  t.is(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8')
  const text = await res.text()
  t.regex(text, /^# HELP frame_pipe_http_frames_total /m)
  t.regex(text, /^# TYPE frame_pipe_http_frames_total counter$/m)
  t.regex(text, /^# TYPE frame_pipe_http_latency_seconds summary$/m)
  const m = parseMetrics(text)
  t.is(m.get('frame_pipe_http_frames_total'), 20)
  t.is(m.get('frame_pipe_http_bytes_total'), 20 * 1000)
  t.is(m.get('frame_pipe_http_viewers'), 0)
  t.is(m.get('frame_pipe_http_latency_seconds_count'), 20)
  const p50 = m.get('frame_pipe_http_latency_seconds{quantile="0.5"}')!
  const p99 = m.get('frame_pipe_http_latency_seconds{quantile="0.99"}')!
  // Frame i was made 10 + i ms before its timestamp said: the median is at least 19 ms, p99 at least 29 ms.
  t.true(p50 >= 0.019 && p50 < 5, `p50 ${p50}`)
  t.true(p99 >= 0.029 && p99 >= p50, `p99 ${p99}`)
  // Per stage, labelled by position, name and kind.
  t.is(m.get('frame_pipe_stage_frames_total{index="1",stage="stats",kind="transform"}'), 20)
  t.is(m.get('frame_pipe_stage_frames_total{index="2",stage="http",kind="sink"}'), 20)
  t.true(m.has('frame_pipe_stage_latency_seconds{index="1",stage="stats",kind="transform",quantile="0.95"}'))
  t.true(m.has('frame_pipe_stage_drops_total{index="2",stage="http",kind="sink"}'))
})

test('/metrics of a sink piped by hand (outside pipeline()) has its own numbers only', async (t) => {
  const sink = httpSink({ port: 0 })
  t.teardown(() => sink.destroy())
  await withTimeout(once(sink, 'listening'), 5000, 'listening')
  const text = await (await fetch(sink.url()! + 'metrics')).text()
  const m = parseMetrics(text)
  t.is(m.get('frame_pipe_http_frames_total'), 0)
  t.is(m.get('frame_pipe_http_latency_seconds_count'), 0)
  t.false([...m.keys()].some((k) => k.startsWith('frame_pipe_stage_')))
})

async function sharpJpeg(width: number, height: number): Promise<Buffer> {
  const { default: sharp } = await import('sharp')
  return sharp({ create: { width, height, channels: 3, background: '#808080' } })
    .jpeg()
    .toBuffer()
}
