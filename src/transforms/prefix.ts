// Frames onto the wire: one length header before each payload. The header and
// the payload travel as one [header, payload] packet, never joined, so that
// transports write both at once (writev) and can drop whole frames.

import { Transform, type TransformCallback } from 'node:stream'
import { FramePipeError } from '../core/errors.js'
import { expectFrame } from '../core/checks.js'
import { encodeHeader, HEADER_FORMATS, type HeaderFormat } from '../wire/headers.js'
import { defineStage } from '../core/spec.js'
import { FRAMER, stageFactory, type Framer, type Fusable, type StageContext } from '../core/stage.js'

export interface PrefixOptions {
  /** Length header: u32be (seed 003), u32le, ii (seed 001), i64le (seed 000b), native (40 bytes with seq, timestamp, size, format), ascii (seed 002: the length as decimal digits and nothing else; payloads must not be empty or start with a digit, which JPEG/PNG/WebP never do; the seed 002 receiver also needs tcp-client pause=1s between digits and payload) (default u32be) */
  header?: HeaderFormat
  /** native only: add a CRC-32 of the payload, checked by unprefix; ignored by the other formats (default false) */
  checksum?: boolean
}

export const spec = defineStage<PrefixOptions, Transform>({
  name: 'prefix',
  kind: 'transform',
  input: 'frames',
  output: 'bytes',
  description: 'Put a length header before each frame, turning frames into a byte stream',
  options: {
    header: {
      type: 'enum',
      values: HEADER_FORMATS,
      default: 'u32be',
      doc:
        'Length header: u32be (seed 003), u32le, ii (seed 001), i64le (seed 000b), native (40 bytes with seq, timestamp, size, format), ' +
        'ascii (seed 002: the length as decimal digits and nothing else; payloads must not be empty or start with a digit, which JPEG/PNG/WebP never do; ' +
        'the seed 002 receiver also needs tcp-client pause=1s between digits and payload)',
    },
    checksum: {
      type: 'boolean',
      default: false,
      doc: 'native only: add a CRC-32 of the payload, checked by unprefix; ignored by the other formats',
    },
  },
  create(o, ctx) {
    return createPrefixer(o, ctx)
  },
})

export const prefix = stageFactory(spec)

function createPrefixer(o: Required<PrefixOptions>, ctx: StageContext): Transform {
  const framer: Framer = (record) => {
    const chunk = expectFrame(ctx.name, record, 'a byte stream needs no prefix')
    if (chunk instanceof FramePipeError) return chunk
    const header = encodeHeader(o.header, chunk, o.checksum, ctx.name)
    if (header instanceof FramePipeError) return header
    ctx.counters.frames++
    ctx.counters.bytes += header.length + chunk.data.length
    return [header, chunk.data]
  }
  // Node's own Transform, not through2's: importing through2 (readable-stream 4
  // and its dependencies) took about 50 ms of every start-up on the test machine,
  // whose node itself starts in about 100 ms, and the registry loads this file for
  // every command. The stream is the same code (readable-stream is Node's, copied).
  const stream = new Transform({
    objectMode: true,
    // Each record holds a whole frame: keep few of them queued.
    highWaterMark: 4,
    transform(record: unknown, _encoding: BufferEncoding, callback: TransformCallback) {
      const packet = framer(record)
      if (packet instanceof FramePipeError) callback(packet)
      else callback(null, packet)
    },
  })
  // Right before a transport that writes packets itself (the TCP sinks), pipeline()
  // hands it this function instead of running the stream (see core/pipeline.ts).
  ;(stream as Fusable)[FRAMER] = framer
  return stream
}
