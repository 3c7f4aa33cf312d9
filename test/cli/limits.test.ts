// --frames: where the counter goes, and that it lets exactly N frames through.

import test from 'ava'
import { PassThrough } from 'node:stream'
import { makeFrame, type Boundary } from '../../src/core/frame.js'
import { FrameLimit, limiterIndex } from '../../src/cli/limits.js'
import { planDescription } from '../../src/launch.js'
import { collect } from '../helpers/index.js'

const at = (text: string): number => limiterIndex(planDescription(text).map((p) => p.spec.output))

test('the counter goes on the last edge that carries frames', (t) => {
  t.is(at('testsrc ! jpeg ! files dir=x'), 2, 'before the sink')
  t.is(at('tcp-server port=9000 ! unprefix ! files dir=x'), 2, 'between unprefix and files')
  t.is(at('testsrc ! jpeg ! prefix ! tcp-server port=9000'), 2, 'before prefix: bytes after it are not frames')
  t.is(at('testsrc ! stats ! null'), 2, "a tap passes on what it takes ('any')")
  t.is(at('tcp-client port=9000 ! stats ! stdout'), -1, 'bytes only: nothing to count')
  t.is(at('stdin ! unprefix ! prefix ! stdout'), 2)
})

test('FrameLimit passes N frames, calls reached once, then lets nothing through', async (t) => {
  let reached = 0
  const limit = new FrameLimit(3, () => reached++)
  const input = new PassThrough({ objectMode: true })
  const boundary: Boundary = { boundary: true, peer: 'p', reason: 'end' }
  const out = collect(input.pipe(limit))
  input.write(boundary)
  for (let i = 0; i < 10; i++) input.write(makeFrame(Buffer.from([0xff, 0xd8, i]), { seq: i }))
  input.end()
  const items = await out
  t.is(reached, 1)
  t.deepEqual(
    items.map((x) => ('seq' in (x as object) ? (x as { seq: number }).seq : 'boundary')),
    ['boundary', 0, 1, 2],
  )
})
