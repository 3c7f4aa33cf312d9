// mapFrames: a user's function as a stage, on through2's async form inside
// Node's stream/promises pipeline.

import test from 'ava'
import { testProp, fc } from '@fast-check/ava'
import { Readable, Writable } from 'node:stream'
import { FramePipeError } from '../../src/core/errors.js'
import { makeFrame, type Frame } from '../../src/core/frame.js'
import { mapFrames } from '../../src/core/map-frames.js'
import { pipeline } from '../../src/core/pipeline.js'
import { stageInfo } from '../../src/core/stage.js'
import { nullSink } from '../../src/sinks/null.js'
import { prefix } from '../../src/transforms/prefix.js'
import { collect, fromItems, run, withTimeout } from '../helpers/index.js'

const TIMEOUT = 10_000
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function frame(seq: number, bytes = 4): Frame {
  return makeFrame(Buffer.alloc(bytes, seq & 0xff), {
    format: 'raw',
    width: bytes,
    height: 1,
    channels: 1,
    seq,
    timestamp: 1_700_000_000_000 + seq,
  })
}

/** Endless (or `count`) frames, pulled one at a time; `produced` says how many were taken. */
function frameSource(count = Infinity): Readable & { produced: number } {
  const source = new Readable({
    objectMode: true,
    highWaterMark: 1,
    read() {
      if (source.produced >= count) return void this.push(null)
      this.push(frame(source.produced++))
    },
  }) as Readable & { produced: number }
  source.produced = 0
  return source
}

function sink(write: (frame: Frame) => void | Promise<void> = () => {}): Writable {
  return new Writable({
    objectMode: true,
    highWaterMark: 1,
    write(f: Frame, _enc, cb) {
      Promise.resolve(f)
        .then(write)
        .then(() => cb(), cb)
    },
  })
}

const counters = (s: Parameters<typeof stageInfo>[0]) => stageInfo(s)!.counters

test('maps each frame, counts frames and output bytes, and is tagged as a frames transform', async (t) => {
  const stage = mapFrames((f) => ({ ...f, data: Buffer.concat([f.data, f.data]), width: f.width * 2 }))
  const out = await withTimeout(run<Frame>(fromItems([frame(0), frame(1), frame(2)]), stage), TIMEOUT)
  t.deepEqual(
    out.map((f) => [f.seq, f.width, f.data.length]),
    [
      [0, 8, 8],
      [1, 8, 8],
      [2, 8, 8],
    ],
  )
  t.deepEqual({ ...counters(stage) }, { frames: 3, bytes: 24, drops: 0 })
  t.like(stageInfo(stage), { name: 'map', kind: 'transform', input: 'frames', output: 'frames' })
  t.is(stageInfo(mapFrames((f) => f, { name: 'overlay' }))!.name, 'overlay')
})

test('null and undefined drop the frame and count it', async (t) => {
  const stage = mapFrames((f) => (f.seq % 3 === 0 ? null : f.seq % 3 === 1 ? undefined : f))
  const out = await withTimeout(run<Frame>(fromItems(Array.from({ length: 9 }, (_, i) => frame(i))), stage), TIMEOUT)
  t.deepEqual(
    out.map((f) => f.seq),
    [2, 5, 8],
  )
  t.deepEqual({ ...counters(stage) }, { frames: 3, bytes: 12, drops: 6 })
})

test('an async function keeps input order even when later frames finish sooner', async (t) => {
  const stage = mapFrames(async (f) => {
    await sleep(f.seq % 2 === 0 ? 8 : 0)
    return f.seq === 4 ? null : { ...f, seq: f.seq * 10 }
  })
  const out = await withTimeout(run<Frame>(fromItems(Array.from({ length: 8 }, (_, i) => frame(i))), stage), TIMEOUT)
  t.deepEqual(
    out.map((f) => f.seq),
    [0, 10, 20, 30, 50, 60, 70],
  )
  t.is(counters(stage).drops, 1)
})

test('a thrown error rejects the pipeline with the stage name, destroys the endless source (no hang)', async (t) => {
  const source = frameSource()
  const cause = new Error('overlay font missing')
  const stage = mapFrames(
    (f) => {
      if (f.seq === 5) throw cause
      return f
    },
    { name: 'overlay' },
  )
  const out = sink()
  const err = await t.throwsAsync(withTimeout(pipeline(source, stage, out), TIMEOUT, 'failing pipeline'))
  t.true(err instanceof FramePipeError)
  t.like(err, { code: 'ERR_BAD_FRAME', stage: 'overlay', message: 'overlay: overlay font missing' })
  t.is(err!.cause, cause)
  t.true(source.destroyed)
  t.true(stage.destroyed)
  t.true(out.destroyed)
  t.is(counters(stage).frames, 5)
})

test('a rejection does the same; a FramePipeError keeps its code, and gets the stage name when it has none', async (t) => {
  const rejecting = mapFrames(async (f) => {
    await sleep(1)
    if (f.seq === 2) throw 'plain string'
    return f
  })
  const err = await t.throwsAsync(withTimeout(pipeline(frameSource(), rejecting, sink()), TIMEOUT))
  t.like(err, { code: 'ERR_BAD_FRAME', message: 'map: plain string' })

  const own = new FramePipeError('ERR_DECODE', 'frame 1 is not a picture')
  const err2 = await t.throwsAsync(
    withTimeout(
      pipeline(
        frameSource(),
        mapFrames((f) => {
          if (f.seq === 1) throw own
          return f
        }),
        sink(),
      ),
      TIMEOUT,
    ),
  )
  t.like(err2, { code: 'ERR_DECODE', stage: 'map', message: 'map: frame 1 is not a picture' })
  t.is(err2!.cause, own)

  const staged = new FramePipeError('ERR_IO', 'disk full', { stage: 'elsewhere' })
  const err3 = await t.throwsAsync(
    withTimeout(
      pipeline(
        frameSource(),
        mapFrames(() => Promise.reject(staged)),
        sink(),
      ),
      TIMEOUT,
    ),
  )
  t.is(err3, staged)
})

test('input that is not a Frame is ERR_BAD_FRAME; so is a function that returns something else', async (t) => {
  const err = await t.throwsAsync(
    withTimeout(
      run(
        fromItems([Buffer.from('bytes')]),
        mapFrames((f) => f),
      ),
      TIMEOUT,
    ),
  )
  t.like(err, { code: 'ERR_BAD_FRAME', message: 'map: expected a Frame but received a Buffer of 5 bytes; insert unprefix before map' })
  const err2 = await t.throwsAsync(
    withTimeout(
      run(
        fromItems([{ seq: 1 }]),
        mapFrames((f) => f),
      ),
      TIMEOUT,
    ),
  )
  t.like(err2, { code: 'ERR_BAD_FRAME', message: 'map: expected a Frame but received an object' })
  const err3 = await t.throwsAsync(
    withTimeout(
      run(
        fromItems([frame(7)]),
        mapFrames((f) => f.data as unknown as Frame),
      ),
      TIMEOUT,
    ),
  )
  t.like(err3, {
    code: 'ERR_BAD_FRAME',
    message: 'map: the function returned a Buffer of 4 bytes for frame 7; return a Frame, or null to drop it',
  })
})

test('backpressure: a slow consumer holds the source back', async (t) => {
  for (const highWaterMark of [1, 2, 4]) {
    const source = frameSource(40)
    let consumed = 0
    let maxAhead = 0
    await withTimeout(
      pipeline(
        source,
        mapFrames(async (f) => f, { highWaterMark }),
        sink(async () => {
          consumed++
          maxAhead = Math.max(maxAhead, source.produced - consumed)
          await sleep(2)
        }),
      ),
      20_000,
      'slow consumer pipeline',
    )
    t.is(consumed, 40)
    // highWaterMark on each side of the stage, one frame in the function,
    // one in the source's buffer, one in the sink's.
    t.true(maxAhead <= 2 * highWaterMark + 3, `highWaterMark ${highWaterMark}: source ran ${maxAhead} frames ahead`)
  }
})

test('works with what Node streams expect: async iteration, destroy(err), checked links', async (t) => {
  const doubled = await withTimeout(
    collect<Frame>(fromItems([frame(1), frame(2)]).pipe(mapFrames((f) => ({ ...f, seq: f.seq * 2 })))),
    TIMEOUT,
  )
  t.deepEqual(
    doubled.map((f) => f.seq),
    [2, 4],
  )

  const stage = mapFrames((f) => f)
  const failed = new Promise<Error>((resolve) => stage.once('error', resolve))
  stage.destroy(new Error('stop here'))
  t.is((await withTimeout(failed, 2000)).message, 'stop here')
  t.true(stage.destroyed)

  const source = frameSource()
  await t.throwsAsync(
    pipeline(
      source,
      prefix(),
      mapFrames((f) => f),
      nullSink(),
    ),
    {
      code: 'ERR_LINK',
      message:
        "cannot link prefix to map: prefix produces bytes but map takes frames; insert 'unprefix' before map to cut the bytes into frames",
    } as any,
  )
  t.true(source.destroyed)
})

test('options are checked', (t) => {
  t.throws(() => mapFrames((f) => f, { highWaterMark: 0 }), {
    code: 'ERR_INVALID_OPTION',
    message: 'map: expected integer >= 1 for highWaterMark but received 0 of type number',
  } as any)
  t.throws(() => mapFrames(42 as any, { name: 'tint' }), {
    code: 'ERR_INVALID_OPTION',
    message: 'tint: expected a function for fn but received 42 of type number',
  } as any)
})

testProp(
  'output = the frames the predicate keeps, in order, whatever mix of sync and async answers',
  [fc.array(fc.record({ bytes: fc.uint8Array({ maxLength: 16 }), keep: fc.boolean(), async: fc.boolean() }), { maxLength: 40 })],
  async (t, items) => {
    const frames = items.map((it, seq) => makeFrame(Buffer.from(it.bytes), { seq }))
    const stage = mapFrames((f) => {
      const it = items[f.seq]!
      const answer = it.keep ? f : null
      return it.async ? Promise.resolve().then(() => answer) : answer
    })
    const out = await withTimeout(run<Frame>(fromItems(frames), stage), TIMEOUT)
    const kept = frames.filter((f) => items[f.seq]!.keep)
    t.deepEqual(out, kept)
    t.true(
      out.every((f, i) => f === kept[i]),
      'frames pass through by reference',
    )
    t.deepEqual(
      { ...counters(stage) },
      {
        frames: kept.length,
        bytes: kept.reduce((n, f) => n + f.data.length, 0),
        drops: frames.length - kept.length,
      },
    )
  },
)
