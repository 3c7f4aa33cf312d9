// src/transforms/webp.ts
// Encode frames as WebP, one sharp call per frame.

import type { Transform } from 'node:stream'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { sharpStage } from '../image/ordered-parallel.js'
import { CONCURRENCY_OPTION, MAX_PIXELS_OPTION, frameFrom, sharpFailure, sharpOf } from '../image/sharp.js'
import { preloadSharp } from '../image/sharp-loader.js'

export interface WebpOptions {
  /** WebP quality (ignored when lossless) (default 80) */
  quality?: number
  /** Lossless compression (default false) */
  lossless?: boolean
  /** CPU effort: 0 fastest, 6 smallest. 2 suits streaming; sharp defaults to 4, which measured at 640x480 took about twice as long for 8-16% fewer bytes (default 2) */
  effort?: number
  /** Largest image (width×height) decoded from encoded input; a bigger one is an error (ERR_DECODE), not an allocation (default 50000000) */
  maxPixels?: number
  /** Frames encoded at once (each on a libuv thread); output order is input order. Up to this many frames wait inside the stage (default 3) */
  concurrency?: number
}

export const spec = defineStage<WebpOptions, Transform>({
  name: 'webp',
  kind: 'transform',
  input: 'frames',
  output: 'frames',
  description: 'Encode frames as WebP (raw pixels are encoded, JPEG/PNG transcoded, WebP passed through unchanged)',
  options: {
    quality: { type: 'int', min: 1, max: 100, default: 80, doc: 'WebP quality (ignored when lossless)' },
    lossless: { type: 'boolean', default: false, doc: 'Lossless compression' },
    effort: {
      type: 'int',
      min: 0,
      max: 6,
      default: 2,
      doc: 'CPU effort: 0 fastest, 6 smallest. 2 suits streaming; sharp defaults to 4, which measured at 640x480 took about twice as long for 8-16% fewer bytes',
    },
    maxPixels: MAX_PIXELS_OPTION,
    concurrency: CONCURRENCY_OPTION,
  },
  create(o, ctx) {
    const webpOptions = { quality: o.quality, lossless: o.lossless, effort: o.effort }
    preloadSharp()
    return sharpStage(ctx, o.concurrency, async (frame) => {
      if (frame.format === 'webp') return frame
      try {
        const { data, info } = await (await sharpOf(frame, o.maxPixels)).webp(webpOptions).toBuffer({ resolveWithObject: true })
        return frameFrom(frame, data, info, 'webp')
      } catch (err) {
        throw await sharpFailure('ERR_ENCODE', ctx.name, frame.format === 'raw' ? 'encode' : 'transcode', frame, err, o.maxPixels)
      }
    })
  },
})

export const webp = stageFactory(spec)
