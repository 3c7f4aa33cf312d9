// The byte stream to standard output, e.g. `... ! prefix ! stdout | nc host 9000`.

import type { Transform } from 'node:stream'
import { FramePipeError } from '../core/errors.js'
import { PacketWriter } from '../core/packets.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'

export interface StdoutOptions {}

export const spec = defineStage<StdoutOptions, Transform>({
  name: 'stdout',
  kind: 'sink',
  input: 'bytes',
  output: 'bytes',
  description: 'Write the byte stream to standard output, with backpressure',
  passes: 'each packet once it is written',
  options: {},
  create(_o, ctx) {
    return new PacketWriter(process.stdout, ctx, {
      // Standard output belongs to the process, not to this stage.
      end: false,
      describeError: (err) =>
        (err as NodeJS.ErrnoException).code === 'EPIPE'
          ? new FramePipeError('ERR_IO', 'the reader of standard output went away (EPIPE)', { stage: ctx.name, cause: err })
          : new FramePipeError('ERR_IO', `cannot write to standard output: ${err.message}`, { stage: ctx.name, cause: err }),
    })
  },
})

export const stdout = stageFactory(spec)

/**
 * True for the error the stdout sink raises when its reader has gone (`… ! stdout | head -c 100`).
 * Like `yes | head`, that is a normal way for a pipeline to end: the CLI exits quietly with status 0.
 */
export function isReaderGone(err: unknown): boolean {
  return err instanceof FramePipeError && err.stage === 'stdout' && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'EPIPE'
}
