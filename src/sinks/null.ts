// The end of a pipeline that keeps nothing: counts what arrives and drops it.

import { Transform, type TransformCallback } from 'node:stream'
import { isBoundary, isFrame, packetLength, releaseFrame, type ByteChunk, type Frame } from '../core/frame.js'
import { defineStage } from '../core/spec.js'
import { stageFactory, type StageContext } from '../core/stage.js'

export interface NullOptions {}

export const spec = defineStage<NullOptions, Transform>({
  name: 'null',
  kind: 'sink',
  input: 'any',
  output: 'any',
  description: 'Discard everything (frames or bytes), counting frames and bytes',
  passes: 'what it received, unchanged',
  options: {},
  create(_o, ctx) {
    return createNullSink(ctx)
  },
})

export const nullSink = stageFactory(spec)

function createNullSink(ctx: StageContext): Transform {
  // Node's own Transform rather than through2's, for start-up: see transforms/prefix.ts.
  const sink: Transform = new Transform({
    objectMode: true,
    highWaterMark: 2,
    transform(chunk: Frame | ByteChunk, _encoding: BufferEncoding, callback: TransformCallback) {
      if (isFrame(chunk)) {
        ctx.counters.frames++
        ctx.counters.bytes += chunk.data.length
      } else if (!isBoundary(chunk)) {
        ctx.counters.frames++
        ctx.counters.bytes += packetLength(chunk)
      }
      // Nobody reads the records: this is the frame's last holder, and a pooled buffer can go back.
      // Somebody does: it is the last holder now, release and all (passOn would take release away,
      // for sinks that may still use the bytes; this one never does).
      if (sink.readableFlowing === null) {
        if (isFrame(chunk)) releaseFrame(chunk)
      } else sink.push(chunk)
      callback()
    },
  })
  return sink
}
