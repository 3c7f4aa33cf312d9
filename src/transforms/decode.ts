// src/transforms/decode.ts
// Decode encoded frames (JPEG, PNG, WebP, or anything sharp recognises) to
// raw pixels, filling in width, height and channels. JPEGs go to
// libjpeg-turbo (image/jpeg-codec.ts), everything else, and any JPEG it
// leaves aside or refuses, to sharp.

import type { Transform } from 'node:stream'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { sharpStage } from '../image/ordered-parallel.js'
import { CONCURRENCY_OPTION, MAX_PIXELS_OPTION, frameFrom, sharpFailure, sharpOf } from '../image/sharp.js'
import { BufferPool, reportFallback, turboDecode } from '../image/jpeg-codec.js'
import { FramePipeError } from '../core/errors.js'
import { releaseFrame, type Frame } from '../core/frame.js'

export const DECODE_CHANNELS = ['keep', '3', '4'] as const
export const DECODE_ON_ERROR = ['fail', 'drop'] as const

export interface DecodeOptions {
  /** Channels of the pixels: '3' RGB (alpha dropped, grey expanded), '4' RGBA (opaque alpha added), 'keep' what the image has (default 3) */
  channels?: (typeof DECODE_CHANNELS)[number]
  /** A frame that does not decode: 'fail' stops the pipeline with ERR_DECODE; 'drop' skips it and counts it in drops (for lossy transports) (default fail) */
  onError?: (typeof DECODE_ON_ERROR)[number]
  /** Largest image (width×height) decoded from encoded input; a bigger one does not decode (ERR_DECODE, or dropped with onError 'drop') and is never allocated (default 50000000) */
  maxPixels?: number
  /** Frames encoded at once (each on a libuv thread); output order is input order. Up to this many frames wait inside the stage (default 3) */
  concurrency?: number
}

export const spec = defineStage<DecodeOptions, Transform>({
  name: 'decode',
  kind: 'transform',
  input: 'frames',
  output: 'frames',
  description: 'Decode JPEG/PNG/WebP frames to raw pixels (raw frames pass through unchanged)',
  options: {
    channels: {
      type: 'enum',
      values: DECODE_CHANNELS,
      default: '3',
      doc: "Channels of the pixels: '3' RGB (alpha dropped, grey expanded), '4' RGBA (opaque alpha added), 'keep' what the image has",
    },
    onError: {
      type: 'enum',
      values: DECODE_ON_ERROR,
      default: 'fail',
      doc: "A frame that does not decode: 'fail' stops the pipeline with ERR_DECODE; 'drop' skips it and counts it in drops (for lossy transports)",
    },
    maxPixels: {
      ...MAX_PIXELS_OPTION,
      doc: "Largest image (width×height) decoded from encoded input; a bigger one does not decode (ERR_DECODE, or dropped with onError 'drop') and is never allocated",
    },
    concurrency: CONCURRENCY_OPTION,
  },
  create(o, ctx) {
    // Decoded pixels go back here when the frame's last holder releases them (Frame.release).
    const pool = new BufferPool()
    const stage = sharpStage(ctx, o.concurrency, async (frame) => {
      // Raw frames are already pixels; `channels` applies only to what this stage decodes.
      if (frame.format === 'raw') return frame
      try {
        // Over maxPixels it throws ERR_DECODE; refused data resolves undefined and goes to sharp.
        return (await turboDecode(frame, o.channels, o.maxPixels, ctx.name, pool)) ?? (await sharpDecode(frame))
      } catch (err) {
        if (o.onError === 'drop') return null
        if (err instanceof FramePipeError) throw err
        throw await sharpFailure('ERR_DECODE', ctx.name, 'decode', frame, err, o.maxPixels)
      } finally {
        // Decoded (or given up on): this frame goes no further, and its buffer can go back (Frame.release).
        releaseFrame(frame)
      }
    })
    async function sharpDecode(frame: Frame): Promise<Frame> {
      let image = await sharpOf(frame, o.maxPixels)
      if (o.channels === '3') image = image.removeAlpha().toColourspace('srgb')
      else if (o.channels === '4') image = image.ensureAlpha().toColourspace('srgb')
      const { data, info } = await image.raw().toBuffer({ resolveWithObject: true })
      return frameFrom(frame, data, info, 'raw')
    }
    // Also loads the codec now rather than on the first frame, whose latency would include it.
    reportFallback(stage)
    return stage
  },
})

export const decode = stageFactory(spec)
