// The sharp stages push their results from promise callbacks, after Transform
// has already decided about backpressure: they must hold the source back
// themselves when the reader stops (found with `camera ! jpeg ! http lazy=true`,
// where the held http sink let ~100 encoded frames pile up inside jpeg).

import test from 'ava'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { makeFrame } from '../../src/core/frame.js'
import { decode } from '../../src/transforms/decode.js'
import { jpeg } from '../../src/transforms/jpeg.js'
import { png } from '../../src/transforms/png.js'

const W = 32
const H = 24

function rawSource(): { stream: Readable; produced: () => number } {
  let n = 0
  const stream = new Readable({
    objectMode: true,
    highWaterMark: 1,
    read() {
      this.push(makeFrame(Buffer.alloc(W * H * 3, n & 0xff), { format: 'raw', width: W, height: H, channels: 3, seq: n++ }))
    },
  })
  return { stream, produced: () => n }
}

for (const [name, make] of [
  ['jpeg', () => jpeg({ concurrency: 2 })],
  ['png', () => png({ concurrency: 4 })],
  ['decode after jpeg', () => decode({ concurrency: 3 })],
] as const) {
  test(`${name}: a reader that stops holds the source back (bounded frames inside the stage)`, async (t) => {
    const { stream, produced } = rawSource()
    const stage = make()
    // A sink that takes one frame and then never calls back: the reader has stopped.
    const stuck = new Writable({
      objectMode: true,
      highWaterMark: 1,
      write() {
        /* never done */
      },
    })
    const stages = name === 'decode after jpeg' ? [stream, jpeg({ concurrency: 1 }), stage, stuck] : [stream, stage, stuck]
    const done = pipeline(stages).catch(() => undefined)
    await new Promise((r) => setTimeout(r, 1500))
    const n = produced()
    // source buffer + stage in flight + stage readable buffer + sink buffer, with room for one of each in transit.
    t.true(n <= 20, `the source produced ${n} frames while nobody read`)
    await new Promise((r) => setTimeout(r, 500))
    t.is(produced(), n, 'and no more later')
    for (const s of stages) s.destroy()
    await done
  })
}

test('jpeg: a reader that pauses and resumes gets every frame, in order (no stall)', async (t) => {
  let n = 0
  const total = 60
  const src = new Readable({
    objectMode: true,
    read() {
      if (n === total) return void this.push(null)
      this.push(makeFrame(Buffer.alloc(W * H * 3, n & 0xff), { format: 'raw', width: W, height: H, channels: 3, seq: n++ }))
    },
  })
  const seqs: number[] = []
  const sink = new Writable({
    objectMode: true,
    highWaterMark: 2,
    write(frame: { seq: number }, _e, cb) {
      seqs.push(frame.seq)
      // Stop for a while now and then, as a browser or a slow disk does.
      if (seqs.length % 20 === 5) setTimeout(cb, 300)
      else cb()
    },
  })
  await Promise.race([
    pipeline(src, jpeg({ concurrency: 2 }), sink),
    new Promise((_, reject) => setTimeout(() => reject(new Error(`stalled after ${seqs.length} frames`)), 15_000)),
  ])
  t.deepEqual(
    seqs,
    Array.from({ length: total }, (_, i) => i),
  )
})
