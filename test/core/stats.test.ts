// stats: a pass-through tap that measures. Window arithmetic is checked with
// synthetic times; the stream with synthetic frame timestamps.

import test from 'ava'
import { testProp, fc } from '@fast-check/ava'
import { makeFrame, now, type Boundary, type ByteChunk, type Frame } from '../../src/core/frame.js'
import { LATENCY, LATENCY_SAMPLES, SlidingStats, nearestRank } from '../../src/core/stats.js'
import { formatSnapshot, stats, type StatsSnapshot } from '../../src/transforms/stats.js'
import { stageInfo } from '../../src/core/stage.js'
import { collect, fromItems, run, withTimeout } from '../helpers/index.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const frame = (seq: number, bytes: number, timestamp = now()): Frame => makeFrame(Buffer.alloc(bytes), { format: 'raw', seq, timestamp })

test('window numbers with synthetic times: totals, rates and latency', (t) => {
  const w = new SlidingStats(1000, 0)
  for (let i = 0; i < 10; i++) w.add(i * 100, 100, (i + 1) * 10)
  t.deepEqual(w.snapshot(1000), {
    frames: 10,
    bytes: 1000,
    fps: 10,
    bytesPerSec: 1000,
    latencyMs: { mean: 55, max: 100, p50: 50, p95: 100, p99: 100 },
  })
  // Half a window in: the rate is over the half second that has passed, not a whole one.
  const h = new SlidingStats(1000, 0)
  for (let i = 0; i < 5; i++) h.add(i * 100, 10)
  t.like(h.snapshot(500), { frames: 5, fps: 10, bytesPerSec: 100 })
})

test('the window slides: old frames leave the rates, not the totals', (t) => {
  const w = new SlidingStats(1000, 0)
  // 100 fps for one second, then 10 fps for one second.
  for (let i = 0; i < 100; i++) w.add(i * 10, 1, 1)
  for (let i = 0; i < 10; i++) w.add(1000 + i * 100, 1, 50)
  const s = w.snapshot(2000)
  t.is(s.frames, 110)
  t.is(s.bytes, 110)
  t.is(s.fps, 10)
  t.deepEqual(s.latencyMs, { mean: 50, max: 50, p50: 50, p95: 50, p99: 50 }, 'the quantiles slide too')
  // Long quiet: no rate, no latency, totals kept.
  t.deepEqual(w.snapshot(10_000), { frames: 110, bytes: 110, fps: 0, bytesPerSec: 0, latencyMs: null })
})

testProp(
  'the windowed count never exceeds what was added in the last window and a tenth',
  [fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 200 }), fc.integer({ min: 0, max: 6000 })],
  (t, times, at) => {
    const sorted = [...times].sort((a, b) => a - b).filter((x) => x <= at)
    const w = new SlidingStats(1000, 0)
    for (const x of sorted) w.add(x, 3)
    const s = w.snapshot(at)
    t.is(s.frames, sorted.length)
    t.is(s.bytes, sorted.length * 3)
    const span = Math.min(at, 1000 + (at % 100)) / 1000
    const inWindow = sorted.filter((x) => x >= at - 1100).length
    const inStrictWindow = sorted.filter((x) => x > at - 1000).length
    if (span > 0) {
      t.true(s.fps * span <= inWindow + 1e-6)
      t.true(s.fps * span >= inStrictWindow - 1e-6)
    }
  },
)

test('latency quantiles of known distributions: uniform 1..1000, a long tail, a constant', (t) => {
  const uniform = new SlidingStats(1000, 0)
  // 1000 samples within one window, in a shuffled order: the quantiles do not depend on arrival order.
  const values = Array.from({ length: 1000 }, (_, i) => ((i * 7919) % 1000) + 1)
  values.forEach((v, i) => uniform.add(i * 0.9, 10, v))
  t.like(uniform.snapshot(900).latencyMs, { p50: 500, p95: 950, p99: 990, max: 1000, mean: 500.5 })

  // 98 frames at 5 ms and 2 at 500 ms: the median and p95 stay at 5, p99 and max see the tail.
  const tail = new SlidingStats(1000, 0)
  for (let i = 0; i < 100; i++) tail.add(i * 5, 1, i % 50 === 49 ? 500 : 5)
  t.like(tail.snapshot(500).latencyMs, { p50: 5, p95: 5, p99: 500, max: 500 })

  const constant = new SlidingStats(1000, 0)
  for (let i = 0; i < 30; i++) constant.add(i * 33, 1, 12.5)
  t.like(constant.snapshot(1000).latencyMs, { p50: 12.5, p95: 12.5, p99: 12.5, mean: 12.5 })
})

testProp(
  'quantiles equal the nearest rank of the window samples (fewer than the ring holds)',
  [fc.array(fc.double({ min: 0, max: 1e4, noNaN: true }), { minLength: 1, maxLength: 300 })],
  (t, latencies) => {
    const w = new SlidingStats(1000, 0)
    latencies.forEach((l, i) => w.add(i, 1, l))
    const s = w.snapshot(latencies.length)!.latencyMs!
    t.is(s.p50, nearestRank(latencies, 0.5))
    t.is(s.p95, nearestRank(latencies, 0.95))
    t.is(s.p99, nearestRank(latencies, 0.99))
  },
)

test('memory is bounded: past LATENCY_SAMPLES in a window, the quantiles cover the most recent ones', (t) => {
  const w = new SlidingStats(1000, 0)
  // 10,000 frames in 1 s: the oldest 5,904 held latency 1000, the most recent 4,096 latency 1..4096.
  const n = 10_000
  for (let i = 0; i < n; i++) {
    const recent = i >= n - LATENCY_SAMPLES
    w.add(i / 10, 1, recent ? i - (n - LATENCY_SAMPLES) + 1 : 1000)
  }
  const l = w.snapshot(1000).latencyMs!
  t.is(l.p50, 2048)
  t.is(l.p99, Math.ceil(0.99 * LATENCY_SAMPLES))
  t.is(l.max, 4096, 'max still covers every frame of the window')
})

test('passes every chunk through unchanged: frames, packets, vectors and boundaries', async (t) => {
  const boundary: Boundary = { boundary: true, peer: '127.0.0.1:1', reason: 'end' }
  const items: Array<Frame | ByteChunk> = [
    frame(0, 10),
    Buffer.from('abc'),
    [Buffer.from('12'), Buffer.from('3456')],
    boundary,
    frame(1, 5),
  ]
  const tap = stats()
  const out = await withTimeout(run(fromItems(items), tap), 5000, 'stats')
  t.is(out.length, items.length)
  out.forEach((item, i) => t.is(item, items[i]))
  const s = (tap as unknown as { snapshot(): StatsSnapshot }).snapshot()
  t.is(s.frames, 4, 'the boundary is not counted')
  t.is(s.bytes, 10 + 3 + 6 + 5)
  t.like(stageInfo(tap)!.counters, { frames: 4, bytes: 24 })
})

test('latency is now − frame.timestamp: mean and max', async (t) => {
  const tap = stats()
  const made = now()
  const items = [frame(0, 1, made - 10), frame(1, 1, made - 30), frame(2, 1, made - 20)]
  const events: StatsSnapshot[] = []
  tap.on('stats', (s: StatsSnapshot) => events.push(s))
  await run(fromItems(items), tap)
  // Each latency is its offset plus the time taken to reach the tap, at most `elapsed`.
  const elapsed = now() - made
  const { mean, max } = events.at(-1)!.latencyMs!
  t.true(max >= 30 && max <= 30 + elapsed, `max ${max}, elapsed ${elapsed}`)
  t.true(mean >= 20 && mean <= 20 + elapsed, `mean ${mean}, elapsed ${elapsed}`)
  t.true(mean < max)
  const { p50, p99 } = events.at(-1)!.latencyMs!
  t.true(p50 >= 20 && p50 <= 20 + elapsed, `p50 ${p50}`)
  t.is(p99, max)
  t.not((tap as unknown as { [LATENCY](): unknown })[LATENCY](), null, "the tap answers the status line's latency question")
})

test('byte edges have no latency', async (t) => {
  const tap = stats()
  const events: StatsSnapshot[] = []
  tap.on('stats', (s: StatsSnapshot) => events.push(s))
  await run(fromItems([Buffer.alloc(100), Buffer.alloc(50)]), tap)
  t.like(events.at(-1), { frames: 2, bytes: 150, latencyMs: null })
})

test.serial("a 'stats' event every interval and a final one at the end", async (t) => {
  const tap = stats({ interval: 20 })
  const events: StatsSnapshot[] = []
  tap.on('stats', (s: StatsSnapshot) => events.push(s))
  const done = collect(tap)
  for (let i = 0; i < 10; i++) {
    tap.write(frame(i, 100))
    await sleep(15)
  }
  tap.end()
  await withTimeout(done, 5000, 'stats')
  t.true(events.length >= 2, `${events.length} events`)
  t.like(events.at(-1), { frames: 10, bytes: 1000 })
  t.true(events.at(-1)!.fps > 0)
  for (let i = 1; i < events.length; i++) t.true(events[i]!.frames >= events[i - 1]!.frames)
})

test.serial('log=true writes one line per snapshot to stderr', async (t) => {
  const lines: string[] = []
  const write = process.stderr.write
  process.stderr.write = ((chunk: string) => {
    lines.push(String(chunk))
    return true
  }) as typeof process.stderr.write
  t.teardown(() => {
    process.stderr.write = write
  })
  await run(fromItems([frame(0, 2048), frame(1, 2048)]), stats({ log: true, interval: 60_000 }))
  process.stderr.write = write
  t.is(lines.length, 1)
  t.regex(
    lines[0]!,
    /^stats: 2 frames, 4\.0 KiB, [\d.]+ fps, [\d.]+ (B|KiB|MiB)\/s, latency p50 [\d.]+ \/ p95 [\d.]+ \/ p99 [\d.]+ ms, [\d.]+ ms mean, [\d.]+ ms max\n$/,
  )
})

test('formatSnapshot', (t) => {
  t.is(
    formatSnapshot('stats', {
      frames: 300,
      bytes: 3 * 2 ** 20,
      fps: 30,
      bytesPerSec: 307200,
      latencyMs: { mean: 1.25, max: 3.4, p50: 1.1, p95: 2, p99: 3.06 },
    }),
    'stats: 300 frames, 3.0 MiB, 30.0 fps, 300.0 KiB/s, latency p50 1.1 / p95 2.0 / p99 3.1 ms, 1.3 ms mean, 3.4 ms max',
  )
  t.is(formatSnapshot('stats', { frames: 0, bytes: 0, fps: 0, bytesPerSec: 0, latencyMs: null }), 'stats: 0 frames, 0 B, 0.0 fps, 0 B/s')
})

test('the interval timer is cleared at end and on destroy: no events after', async (t) => {
  const a = stats({ interval: 10 })
  let eventsA = 0
  a.on('stats', () => eventsA++)
  await run(fromItems([frame(0, 1)]), a)
  const atEnd = eventsA
  t.true(atEnd >= 1)
  const b = stats({ interval: 10 })
  let eventsB = 0
  b.on('stats', () => eventsB++)
  b.destroy()
  await new Promise((resolve) => b.once('close', resolve))
  await sleep(100)
  t.is(eventsA, atEnd)
  t.is(eventsB, 0)
})

testProp(
  'any mix of chunks passes through in order, identical, and is counted',
  [
    fc.array(
      fc.oneof(
        fc.integer({ min: 0, max: 64 }).map((n) => frame(n, n) as Frame | ByteChunk),
        fc.uint8Array({ maxLength: 32 }).map((a) => Buffer.from(a) as Frame | ByteChunk),
        fc.array(
          fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)),
          { maxLength: 3 },
        ) as fc.Arbitrary<Frame | ByteChunk>,
        fc.constant({ boundary: true, peer: 'p', reason: 'error' } as Frame | ByteChunk),
      ),
      { maxLength: 30 },
    ),
  ],
  async (t, items) => {
    const tap = stats()
    const out = await run(fromItems(items), tap)
    t.deepEqual(out, items)
    out.forEach((o, i) => t.is(o, items[i]))
    const counted = items.filter((x) => !('boundary' in x))
    const bytes = counted.reduce(
      (n: number, x) =>
        n + ('data' in x ? x.data.length : Buffer.isBuffer(x) ? x.length : (x as Buffer[]).reduce((m, b) => m + b.length, 0)),
      0,
    )
    t.like(stageInfo(tap)!.counters, { frames: counted.length, bytes })
  },
  { numRuns: 50 },
)
