// rate: keeps the latest frame, counts drops, never loses the last one.
// Assertions are on which frames come out and how many, not on exact timings.

import test from 'ava'
import { testProp, fc } from '@fast-check/ava'
import type { Duplex } from 'node:stream'
import { FramePipeError } from '../../src/core/errors.js'
import { makeFrame, type Frame } from '../../src/core/frame.js'
import { rate } from '../../src/transforms/rate.js'
import { stageInfo } from '../../src/core/stage.js'
import { collect, withTimeout } from '../helpers/index.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const frame = (seq: number): Frame => makeFrame(Buffer.alloc(10, seq & 0xff), { format: 'raw', seq })
const seqs = (frames: Frame[]) => frames.map((f) => f.seq)

function activeTimeouts(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
}

test.serial('each burst gives its first frame at once and its last at the next slot; the rest are dropped', async (t) => {
  const r = rate({ fps: 20 })
  const out: Frame[] = []
  r.on('data', (f: Frame) => out.push(f))
  const ended = new Promise((resolve) => r.once('end', resolve))
  let seq = 0
  for (let burst = 0; burst < 4; burst++) {
    const last = seq + 4
    for (let i = 0; i < 5; i++) r.write(frame(seq++))
    // Wait (bounded) for the burst's last frame, then one more slot, so the next burst starts on a free slot.
    await withTimeout(
      (async () => {
        while (out.at(-1)?.seq !== last) await sleep(5)
      })(),
      5000,
      `burst ${burst}`,
    )
    await sleep(50 + 20)
  }
  r.end()
  await withTimeout(ended, 5000, 'end')
  t.deepEqual(seqs(out), [0, 4, 5, 9, 10, 14, 15, 19])
  t.like(stageInfo(r)!.counters, { frames: 8, drops: 12, bytes: 80 })
})

test('at the end the pending frame is sent without waiting for its slot', async (t) => {
  const r = rate({ fps: 0.01 })
  const done = collect<Frame>(r)
  for (let i = 0; i < 50; i++) r.write(frame(i))
  r.end()
  // The second slot is 100 s away.
  t.deepEqual(seqs(await withTimeout(done, 5000, 'rate end')), [0, 49])
  t.is(stageInfo(r)!.counters.drops, 48)
})

test.serial('a steady stream is capped: no more than one frame per slot', async (t) => {
  const r = rate({ fps: 10 })
  const done = collect<Frame>(r)
  const start = performance.now()
  let seq = 0
  while (performance.now() - start < 400) {
    r.write(frame(seq++))
    await sleep(2)
  }
  r.end()
  const out = await withTimeout(done, 5000, 'rate')
  const elapsed = performance.now() - start
  // One per 100 ms slot, plus the first at once and the last at the end.
  t.true(out.length <= Math.ceil(elapsed / 100) + 2, `${out.length} frames in ${elapsed} ms`)
  t.true(out.length >= 2)
  t.is(out.at(-1)!.seq, seq - 1)
  t.is(stageInfo(r)!.counters.drops, seq - out.length)
})

test('a slow reader gets the latest frame, and upstream is never held back', async (t) => {
  const r = rate({ fps: 1000 })
  let accepted = 0
  r.write(frame(0), () => accepted++)
  // Nobody reads: frame 0 fills the readable side; the following frames replace each other.
  for (let i = 1; i < 10; i++) {
    await sleep(3)
    r.write(frame(i), () => accepted++)
  }
  await sleep(3)
  t.is(accepted, 10, 'every write was accepted while nothing was read')
  const done = collect<Frame>(r)
  await sleep(20)
  r.end()
  t.deepEqual(seqs(await withTimeout(done, 5000, 'rate')), [0, 9])
  t.is(stageInfo(r)!.counters.drops, 8)
})

test.serial('destroy clears the slot timer', async (t) => {
  const before = activeTimeouts()
  const r = rate({ fps: 0.01 })
  r.resume()
  r.write(frame(0))
  r.write(frame(1))
  await sleep(1)
  t.is(activeTimeouts(), before + 1, 'a timer waits for the next slot')
  r.destroy()
  await new Promise((resolve) => r.once('close', resolve))
  t.is(activeTimeouts(), before)
})

test('fps must be positive', (t) => {
  const err = t.throws(() => rate({ fps: 0 }), { instanceOf: FramePipeError })
  t.is(err.code, 'ERR_INVALID_OPTION')
  t.is(t.throws(() => rate({ fps: -5 }), { instanceOf: FramePipeError }).code, 'ERR_INVALID_OPTION')
})

async function feed(r: Duplex, bursts: number[], gaps: number[]): Promise<number> {
  let seq = 0
  for (let b = 0; b < bursts.length; b++) {
    for (let i = 0; i < bursts[b]!; i++) r.write(frame(seq++))
    const gap = gaps[b % gaps.length]!
    if (gap < 0) await new Promise((resolve) => setImmediate(resolve))
    else if (gap > 0) await sleep(gap)
  }
  r.end()
  return seq
}

testProp(
  'never more frames out than in, in order, the last always out, drops account for the rest',
  [
    fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 8 }),
    fc.array(fc.constantFrom(-1, 0, 1, 3), { minLength: 1, maxLength: 4 }),
    fc.constantFrom(2, 50, 500, 1e6),
    fc.boolean(),
  ],
  async (t, bursts, gaps, fps, slowReader) => {
    const r = rate({ fps })
    const out: Frame[] = []
    const done = (async () => {
      for await (const f of r) {
        out.push(f as Frame)
        if (slowReader) await sleep(1)
      }
    })()
    const total = await feed(r, bursts, gaps)
    await withTimeout(done, 10_000, 'rate')
    t.true(out.length <= total)
    t.true(out.length >= 1)
    t.is(out.at(-1)!.seq, total - 1, 'the last frame is always sent')
    for (let i = 1; i < out.length; i++) t.true(out[i]!.seq > out[i - 1]!.seq, 'a subsequence, in order')
    t.is(out[0]!.seq, 0, 'the first frame goes out at once')
    t.is(stageInfo(r)!.counters.drops + out.length, total)
  },
  { numRuns: 40 },
)
