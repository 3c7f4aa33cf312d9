// File-name patterns: time tokens (local time) and FrameNamer's segment clock
// and counter rules. The files sink's use of them is in files.test.ts.

import test from 'ava'
import { testProp, fc } from '@fast-check/ava'
import { FramePipeError } from '../../src/core/errors.js'
import { compilePattern, FrameNamer, NAME_TOKENS } from '../../src/media/naming.js'

const at = (y: number, mo: number, d: number, h: number, mi: number, s: number, ms = 0) => new Date(y, mo - 1, d, h, mi, s, ms).getTime()
const vars = (timestamp: number, index = 0) => ({ index, seq: 0, ext: 'jpg', timestamp })

test('time tokens in local time', (t) => {
  const ts = at(2024, 1, 2, 3, 4, 5, 678) + 0.25
  const name = (p: string) => compilePattern(p)(vars(ts))
  t.is(name('{date}'), '2024-01-02')
  t.is(name('{time}'), '03-04-05')
  t.is(name('{Y}{M}{D}-{h}{m}{s}'), '20240102-030405')
  t.is(name('{ms}'), String(Math.floor(ts)), 'epoch milliseconds, whole')
  // Seed 003's and seed 004's recordings.
  t.is(name('video_stream_{ms}.avi'), `video_stream_${Math.floor(ts)}.avi`)
  t.is(name('camera{time}.avi'), 'camera03-04-05.avi')
  t.is(compilePattern('{date}_{time}/frame-%06d.{ext}')(vars(at(1999, 12, 31, 23, 59, 59, 999), 7)), '1999-12-31_23-59-59/frame-000007.jpg')
})

test('flags: which patterns use time and the counter', (t) => {
  const flags = (p: string) => {
    const fn = compilePattern(p)
    return [fn.usesTime, fn.usesIndex]
  }
  t.deepEqual(flags('frame-%06d.{ext}'), [false, true])
  t.deepEqual(flags('{time}.jpg'), [true, false])
  t.deepEqual(flags('{seq}-{ms}-%d'), [true, true])
  const p = compilePattern('a{h}b{ms}')
  t.is(p.timeKey(at(2024, 5, 6, 7, 8, 9, 10)), `07\0${at(2024, 5, 6, 7, 8, 9, 10)}`)
  for (const token of ['{ms}', '{date}', '{time}', '{Y}', '{M}', '{D}', '{h}', '{m}', '{s}']) t.true(NAME_TOKENS.includes(token), token)
})

test('unknown or unclosed time tokens are refused', (t) => {
  for (const pattern of ['{H}', '{date', '{Ms}', '{ time}', '{}', '{hasOwnProperty}']) {
    const err = t.throws(() => compilePattern(pattern, 'files'), { instanceOf: FramePipeError }, pattern)
    t.is(err!.code, 'ERR_INVALID_OPTION')
    t.true(err!.message.includes('{date}'), 'lists the tokens')
  }
})

/** Reference local time from Intl, not from the Date getters the implementation uses. */
const local = new Intl.DateTimeFormat('en-CA', {
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
})
function reference(ts: number): Record<string, string> {
  const p = Object.fromEntries(local.formatToParts(new Date(ts)).map((x) => [x.type, x.value]))
  return {
    ms: String(Math.floor(ts)),
    date: `${p.year}-${p.month}-${p.day}`,
    time: `${p.hour}-${p.minute}-${p.second}`,
    Y: p.year!,
    M: p.month!,
    D: p.day!,
    h: p.hour!,
    m: p.minute!,
    s: p.second!,
  }
}

const piece = fc.oneof(
  fc.record({
    kind: fc.constant('literal' as const),
    text: fc.string({ unit: fc.constantFrom('a', '-', '_', '.', '/', '}', '0'), minLength: 1, maxLength: 4 }),
  }),
  fc.record({ kind: fc.constant('index' as const), width: fc.integer({ min: 0, max: 8 }) }),
  fc.record({ kind: fc.constant('time' as const), token: fc.constantFrom('ms', 'date', 'time', 'Y', 'M', 'D', 'h', 'm', 's') }),
  fc.constant({ kind: 'seq' as const }),
)
type Piece = typeof piece extends fc.Arbitrary<infer P> ? P : never
/** 2000-01-01 .. 2100-01-01, with sub-millisecond parts. */
const timestamp = fc.double({ min: 946684800000, max: 4102444800000, noNaN: true })

testProp(
  'a pattern with time tokens expands piece by piece like a reference',
  [fc.array(piece, { minLength: 1, maxLength: 8 }), fc.nat(), fc.nat(), timestamp],
  (t, pieces: Piece[], index, seq, ts) => {
    const ref = reference(ts)
    let pattern = ''
    let expected = ''
    for (const p of pieces) {
      if (p.kind === 'literal') {
        pattern += p.text
        expected += p.text
      } else if (p.kind === 'index') {
        pattern += p.width ? `%0${p.width}d` : '%d'
        expected += String(index).padStart(p.width, '0')
      } else if (p.kind === 'time') {
        pattern += `{${p.token}}`
        expected += ref[p.token]
      } else {
        pattern += '{seq}'
        expected += String(seq)
      }
    }
    t.is(compilePattern(pattern)({ index, seq, ext: 'jpg', timestamp: ts }), expected)
  },
)

// ---------------------------------------------------------------- FrameNamer

const named = (namer: FrameNamer, stamps: number[]) => stamps.map((ts, seq) => namer.name({ seq, ext: 'jpg', timestamp: ts }))

test("without segment: time tokens show each frame's own time, the counter runs on", (t) => {
  const base = at(2024, 3, 1, 12, 0, 0)
  const namer = new FrameNamer({ pattern: '{time}/f%d.{ext}' })
  t.deepEqual(named(namer, [base, base + 500, base + 1000, base + 61_000]), [
    '12-00-00/f0.jpg',
    '12-00-00/f1.jpg',
    '12-00-01/f2.jpg',
    '12-01-01/f3.jpg',
  ])
  t.is(namer.segments, 0)
})

test('segment: time tokens show the segment start; a segment starts once `segment` has passed; the counter restarts per segment', (t) => {
  const base = at(2024, 3, 1, 12, 0, 0, 700)
  const namer = new FrameNamer({ pattern: 'camera{time}/frame-%02d.{ext}', segment: 15_000, start: 1 })
  t.deepEqual(named(namer, [base, base + 5_000, base + 14_999, base + 15_000, base + 29_000, base + 31_000]), [
    'camera12-00-00/frame-01.jpg',
    'camera12-00-00/frame-02.jpg',
    'camera12-00-00/frame-03.jpg',
    'camera12-00-15/frame-01.jpg',
    'camera12-00-15/frame-02.jpg',
    'camera12-00-31/frame-01.jpg',
  ])
  t.is(namer.segments, 3)
  t.is(namer.currentSegmentStart, base + 31_000)
})

test('segment without a time token: the counter runs on across segments', (t) => {
  const base = at(2024, 3, 1, 12, 0, 0)
  const namer = new FrameNamer({ pattern: 'f%d', segment: 1000 })
  t.deepEqual(named(namer, [base, base + 1000, base + 2000]), ['f0', 'f1', 'f2'])
  t.is(namer.segments, 3)
})

test('two segments starting in the same second share the time text: the counter continues, nothing is overwritten', (t) => {
  const base = at(2024, 3, 1, 12, 0, 0, 0)
  const namer = new FrameNamer({ pattern: '{date}_{time}/frame-%d.{ext}', segment: 300 })
  t.deepEqual(named(namer, [base, base + 200, base + 300, base + 650, base + 999, base + 1300, base + 1400]), [
    '2024-03-01_12-00-00/frame-0.jpg',
    '2024-03-01_12-00-00/frame-1.jpg',
    '2024-03-01_12-00-00/frame-2.jpg',
    '2024-03-01_12-00-00/frame-3.jpg',
    '2024-03-01_12-00-00/frame-4.jpg',
    '2024-03-01_12-00-01/frame-0.jpg',
    '2024-03-01_12-00-01/frame-1.jpg',
  ])
  t.is(namer.segments, 5)
})

test('a clock stepped back by a segment or more starts a new segment; small jitter does not', (t) => {
  const base = at(2024, 3, 1, 12, 0, 10)
  const namer = new FrameNamer({ pattern: '{time}-%d', segment: 5000 })
  t.deepEqual(named(namer, [base, base - 100, base - 6000, base - 5900]), ['12-00-10-0', '12-00-10-1', '12-00-04-0', '12-00-04-1'])
  // Forward again into a second whose time text an earlier segment used: the counter goes on from where that one stopped.
  t.deepEqual(named(namer, [base + 500, base + 600]), ['12-00-10-2', '12-00-10-3'])
  t.is(namer.segments, 3)
})

testProp(
  'with %d in the pattern, names never repeat, whatever the timestamps and segment length',
  [
    fc.array(fc.integer({ min: 0, max: 4000 }), { minLength: 1, maxLength: 60 }),
    fc.integer({ min: 0, max: 3000 }),
    fc.constantFrom('{time}/%d', '{s}-%d', '%d', '{ms}-%d', '{date}{h}%d'),
  ],
  (t, steps, segment, pattern) => {
    const namer = new FrameNamer({ pattern, segment })
    let ts = at(2024, 3, 1, 12, 0, 0)
    const names = steps.map((step, seq) => namer.name({ seq, ext: 'jpg', timestamp: (ts += step) }))
    t.is(new Set(names).size, names.length)
  },
)

testProp(
  "segments: each starts with a frame `segment` or more after the previous start, and its names show that frame's time",
  [fc.array(fc.integer({ min: 0, max: 2500 }), { minLength: 1, maxLength: 60 }), fc.integer({ min: 1, max: 5000 })],
  (t, steps, segment) => {
    const namer = new FrameNamer({ pattern: '{ms}|%d', segment })
    let ts = at(2024, 3, 1, 12, 0, 0)
    let start = -Infinity
    let expectedIndex = 0
    for (const [seq, step] of steps.entries()) {
      ts += step
      const [shown, index] = namer.name({ seq, ext: 'jpg', timestamp: ts }).split('|').map(Number)
      if (ts - start >= segment) {
        start = ts
        expectedIndex = 0
      }
      t.is(shown, start)
      t.is(index, expectedIndex++)
    }
  },
)
