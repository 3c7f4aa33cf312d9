// A recording process for the crash-safety tests (run with
// `node --import tsx test/record-child.ts <avi|mp4> <dir> [flushMs]`):
// testsrc JPEG at 30 fps into `avi` or `mp4`, ending cleanly on
// SIGINT/SIGTERM the way the CLI does (stop the source, let the sink
// finalise). Prints one JSON line per event, and the frames handed to the
// sink every 100 ms, so a test knows what was safe before it kills us.

import { pipeline, stopSource } from '../../src/core/pipeline.js'
import { avi } from '../../src/sinks/avi.js'
import { mp4 } from '../../src/sinks/mp4.js'
import { testsrc } from '../../src/sources/testsrc.js'
import { stageInfo } from '../../src/core/stage.js'

const [kind, dir, flushText] = process.argv.slice(2)
if ((kind !== 'avi' && kind !== 'mp4') || !dir) throw new Error('usage: record-child.ts <avi|mp4> <dir> [flushMs]')

const say = (record: object): void => {
  process.stdout.write(JSON.stringify(record) + '\n')
}

const source = testsrc({ width: 160, height: 120, fps: 30, format: 'jpeg' })
const sink =
  kind === 'avi'
    ? avi({ dir, pattern: 'crash-{ms}.avi', flush: Number(flushText ?? 250) })
    : mp4({ dir, pattern: 'crash-{ms}.mp4', fps: 30 })
for (const event of ['flush', 'segment', 'ffmpeg']) sink.on(event, (e: object) => say({ [event]: e }))
const counters = stageInfo(sink)!.counters
const ticker = setInterval(() => say({ written: counters.frames }), 100)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    say({ signal })
    stopSource(source)
  })
}
await pipeline(source, sink)
clearInterval(ticker)
say({ done: true, frames: counters.frames })
