// src/transforms/png.ts
// Encode frames as PNG, one sharp call per frame.

import type { Transform } from 'node:stream'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { sharpStage } from '../image/ordered-parallel.js'
import { CONCURRENCY_OPTION, MAX_PIXELS_OPTION, frameFrom, sharpFailure, sharpOf } from '../image/sharp.js'
import { preloadSharp } from '../image/sharp-loader.js'

export interface PngOptions {
  /** zlib level: 0 stores, 9 is smallest. 3 suits streaming; sharp defaults to 6, which measured at 640x480 took twice as long on a flat test pattern for 35% fewer bytes, and gained nothing on a noisy camera-like picture (default 3) */
  compressionLevel?: number
  /** Quantise to a palette of up to 256 colours (lossy, small files, slow) (default false) */
  palette?: boolean
  /** Largest image (width×height) decoded from encoded input; a bigger one is an error (ERR_DECODE), not an allocation (default 50000000) */
  maxPixels?: number
  /** Frames encoded at once (each on a libuv thread); output order is input order. Up to this many frames wait inside the stage (default 3) */
  concurrency?: number
}

export const spec = defineStage<PngOptions, Transform>({
  name: 'png',
  kind: 'transform',
  input: 'frames',
  output: 'frames',
  description: 'Encode frames as PNG (raw pixels are encoded, JPEG/WebP transcoded, PNG passed through unchanged)',
  options: {
    compressionLevel: {
      type: 'int',
      min: 0,
      max: 9,
      default: 3,
      doc: 'zlib level: 0 stores, 9 is smallest. 3 suits streaming; sharp defaults to 6, which measured at 640x480 took twice as long on a flat test pattern for 35% fewer bytes, and gained nothing on a noisy camera-like picture',
    },
    palette: { type: 'boolean', default: false, doc: 'Quantise to a palette of up to 256 colours (lossy, small files, slow)' },
    maxPixels: MAX_PIXELS_OPTION,
    concurrency: CONCURRENCY_OPTION,
  },
  create(o, ctx) {
    const pngOptions = { compressionLevel: o.compressionLevel, palette: o.palette }
    preloadSharp()
    return sharpStage(ctx, o.concurrency, async (frame) => {
      if (frame.format === 'png') return frame
      try {
        const { data, info } = await (await sharpOf(frame, o.maxPixels)).png(pngOptions).toBuffer({ resolveWithObject: true })
        return frameFrom(frame, data, info, 'png')
      } catch (err) {
        throw await sharpFailure('ERR_ENCODE', ctx.name, frame.format === 'raw' ? 'encode' : 'transcode', frame, err, o.maxPixels)
      }
    })
  },
})

export const png = stageFactory(spec)
