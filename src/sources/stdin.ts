// Bytes from standard input (or any byte Readable), e.g. `nc -l 9000 | frame-pipe 'stdin ! unprefix ! files'`.

import { Readable } from 'node:stream'
import { FramePipeError } from '../core/errors.js'
import { defineStage } from '../core/spec.js'
import { newCounters, stageFactory, tagStage, type StageContext, type Staged } from '../core/stage.js'

export interface StdinOptions {}

export const spec = defineStage<StdinOptions, Readable>({
  name: 'stdin',
  kind: 'source',
  input: null,
  output: 'bytes',
  description: 'Read a byte stream from standard input; ends when standard input ends',
  options: {},
  create(_o, ctx) {
    return new ByteReader(process.stdin, ctx)
  },
})

export const stdin = stageFactory(spec)

/** A byte source over your own Readable (a file stream, a child's stdout): a stage named 'readable'. */
export function fromReadable(readable: Readable): Staged<Readable> {
  const counters = newCounters()
  return tagStage(new ByteReader(readable, { name: 'readable', counters }), {
    name: 'readable',
    kind: 'source',
    input: null,
    output: 'bytes',
    counters,
  })
}

/** Re-emits a byte Readable's chunks as Buffers on an object-mode edge, pausing it when downstream is full. */
class ByteReader extends Readable {
  private readonly input: Readable
  private readonly ctx: StageContext

  constructor(input: Readable, ctx: StageContext) {
    // Chunks are at most 64 KiB: 16 of them bound the buffer to about 1 MiB.
    super({ objectMode: true, highWaterMark: 16 })
    this.input = input
    this.ctx = ctx
    input.on('data', this.onData)
    input.on('end', this.onEnd)
    input.on('error', this.onError)
    // Nothing flows until the first _read.
    input.pause()
  }

  override _read(): void {
    this.input.resume()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // The input is not ours to destroy (it may be process.stdin): let go of it.
    this.input.off('data', this.onData)
    this.input.off('end', this.onEnd)
    this.input.off('error', this.onError)
    this.input.pause()
    callback(err)
  }

  private readonly onData = (chunk: Buffer | string): void => {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    this.ctx.counters.frames++
    this.ctx.counters.bytes += buf.length
    if (!this.push(buf)) this.input.pause()
  }

  private readonly onEnd = (): void => {
    this.push(null)
  }

  private readonly onError = (err: Error): void => {
    this.destroy(new FramePipeError('ERR_IO', `read failed: ${err.message}`, { stage: this.ctx.name, cause: err }))
  }
}
