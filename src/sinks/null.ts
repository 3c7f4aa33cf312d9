// The end of a pipeline that keeps nothing: counts what arrives and drops it.

import type { Transform, TransformCallback } from 'node:stream'
import { objectTransform } from 'through2'
import { isBoundary, isFrame, packetLength, type ByteChunk, type Frame } from '../core/frame.js'
import { defineStage } from '../core/spec.js'
import { passOn, stageFactory, type StageContext } from '../core/stage.js'

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
  // through2 is typed against readable-stream, which ships no types here, so
  // it returns `any`; see src/core/map-frames.ts for why a Node Transform type is sound.
  const sink: Transform = objectTransform(
    { highWaterMark: 2 },
    (chunk: Frame | ByteChunk, _encoding: BufferEncoding, callback: TransformCallback) => {
      if (isFrame(chunk)) {
        ctx.counters.frames++
        ctx.counters.bytes += chunk.data.length
      } else if (!isBoundary(chunk)) {
        ctx.counters.frames++
        ctx.counters.bytes += packetLength(chunk)
      }
      passOn(sink, chunk)
      callback()
    },
  )
  return sink
}
