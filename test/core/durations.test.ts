// Durations on the command line read as ffmpeg reads them: a bare number is
// seconds, `500ms` milliseconds; the TypeScript API keeps milliseconds.

import test from 'ava'
import { formatDuration, formatType, parseDuration, resolveOptions } from '../../src/core/spec.js'
import { planDescription } from '../../src/launch.js'
import { spec as statsSpec } from '../../src/transforms/stats.js'
import { collisionSuffix } from '../../src/media/recording.js'

test('parseDuration: a bare number is seconds; ms, s, m, h and [HH:]MM:SS', (t) => {
  const cases: Array<[string, number | undefined]> = [
    ['15', 15_000],
    ['0', 0],
    ['0.5', 500],
    ['.25', 250],
    ['500ms', 500],
    ['2s', 2000],
    ['1.5m', 90_000],
    ['1h', 3_600_000],
    ['0.1', 100],
    ['00:01:30', 90_000],
    ['1:30', 90_000],
    ['01:00:00.5', 3_600_500],
    ['-1', undefined],
    ['1.5.2', undefined],
    ['2 s', undefined],
    ['1d', undefined],
    ['soon', undefined],
  ]
  for (const [text, ms] of cases) t.is(parseDuration(text), ms, text)
})

test('pipeline text: `avi segment=15` is 15 seconds, not 15 ms; `segment=500ms` is half a second', (t) => {
  const [, avi] = planDescription('testsrc ! avi segment=15')
  t.is(avi!.options.segment, 15_000)
  const [, , files] = planDescription('testsrc ! jpeg ! files segment=500ms')
  t.is(files!.options.segment, 500)
})

test('errors and inspect say the unit of a duration', (t) => {
  const err = t.throws(() => planDescription('testsrc ! stats interval=0.005 ! null'))
  t.regex(err!.message, /stats: expected duration >= 10ms for interval but received 5ms/)
  const parse = t.throws(() => planDescription('testsrc ! stats interval=soon ! null'))
  t.regex(parse!.message, /expected duration such as 500ms, 2s, 1\.5m \(a bare number is seconds\) for interval but received 'soon'/)
  // The API takes milliseconds and says so in the same words.
  t.throws(() => resolveOptions(statsSpec, { interval: 5 }), { message: /expected duration >= 10ms for interval but received 5ms/ })
  t.is(formatType(statsSpec.options.interval), 'duration 10ms..')
})

test('formatDuration writes what parseDuration reads back', (t) => {
  for (const ms of [0, 1, 10, 250, 999, 1000, 1500, 2000, 60_000, 90_500]) t.is(parseDuration(formatDuration(ms)), ms, String(ms))
  t.is(formatDuration(1000), '1s')
  t.is(formatDuration(1500), '1.5s')
  t.is(formatDuration(250), '250ms')
})

test('collision suffixes sort in the order they were made', (t) => {
  const names = Array.from({ length: 12 }, (_, i) => `rec${collisionSuffix(i + 1)}.avi`)
  t.deepEqual([...names].sort(), names)
  t.is(collisionSuffix(1), '_001')
  t.is(collisionSuffix(999), '_999')
})
