// The end of a pipeline that keeps nothing: counts what arrives and drops it.

import { Transform, type TransformCallback } from 'node:stream'
import { isBoundary, isFrame, packetLength, type ByteChunk, type Frame } from '../frame.js'
import { defineStage } from '../spec.js'
import { passOn, stageFactory, type StageContext } from '../stage.js'

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
    return new NullSink(ctx)
  },
})

export const nullSink = stageFactory(spec)

class NullSink extends Transform {
  private readonly ctx: StageContext

  constructor(ctx: StageContext) {
    super({ objectMode: true, highWaterMark: 2 })
    this.ctx = ctx
  }

  override _transform(chunk: Frame | ByteChunk, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (isFrame(chunk)) {
      this.ctx.counters.frames++
      this.ctx.counters.bytes += chunk.data.length
    } else if (!isBoundary(chunk)) {
      this.ctx.counters.frames++
      this.ctx.counters.bytes += packetLength(chunk)
    }
    passOn(this, chunk)
    callback()
  }
}
