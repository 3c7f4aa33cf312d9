// src/transforms/resize.ts
// Resize frames. The output is always raw pixels, so `resize ! jpeg` decodes
// once and encodes once; follow resize with jpeg/png/webp to re-encode.

import type { Transform } from 'node:stream'
import { FramePipeError } from '../core/errors.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { sharpStage } from '../image/ordered-parallel.js'
import { CONCURRENCY_OPTION, MAX_PIXELS_OPTION, frameFrom, sharpFailure, sharpOf } from '../image/sharp.js'
import { preloadSharp } from '../image/sharp-loader.js'

export const RESIZE_FITS = ['cover', 'contain', 'fill', 'inside', 'outside'] as const
export const RESIZE_KERNELS = ['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3'] as const

export interface ResizeOptions {
  /** Target width; 0 = from height, keeping the aspect ratio (default 0) */
  width?: number
  /** Target height; 0 = from width, keeping the aspect ratio (default 0) */
  height?: number
  /** When both are given: inside/outside keep the aspect ratio, cover crops, contain letterboxes (black), fill stretches (default inside) */
  fit?: (typeof RESIZE_FITS)[number]
  /** Resampling kernel: nearest is fastest, lanczos3 sharpest (default lanczos3) */
  kernel?: (typeof RESIZE_KERNELS)[number]
  /** Largest image (width×height) decoded from encoded input; a bigger one is an error (ERR_DECODE), not an allocation (default 50000000) */
  maxPixels?: number
  /** Frames encoded at once (each on a libuv thread); output order is input order. Up to this many frames wait inside the stage (default 3) */
  concurrency?: number
}

export const spec = defineStage<ResizeOptions, Transform>({
  name: 'resize',
  kind: 'transform',
  input: 'frames',
  output: 'frames',
  description: 'Resize frames (raw or encoded in, raw pixels out: follow with jpeg/png/webp to re-encode)',
  options: {
    width: { type: 'int', min: 0, default: 0, doc: 'Target width; 0 = from height, keeping the aspect ratio' },
    height: { type: 'int', min: 0, default: 0, doc: 'Target height; 0 = from width, keeping the aspect ratio' },
    fit: {
      type: 'enum',
      values: RESIZE_FITS,
      default: 'inside',
      doc: 'When both are given: inside/outside keep the aspect ratio, cover crops, contain letterboxes (black), fill stretches',
    },
    kernel: { type: 'enum', values: RESIZE_KERNELS, default: 'lanczos3', doc: 'Resampling kernel: nearest is fastest, lanczos3 sharpest' },
    maxPixels: MAX_PIXELS_OPTION,
    concurrency: CONCURRENCY_OPTION,
  },
  create(o, ctx) {
    if (o.width === 0 && o.height === 0) {
      throw new FramePipeError('ERR_INVALID_OPTION', 'give width or height (or both): both are 0', { stage: ctx.name })
    }
    const resizeOptions = {
      width: o.width || undefined,
      height: o.height || undefined,
      fit: o.fit,
      kernel: o.kernel,
      background: { r: 0, g: 0, b: 0, alpha: 1 },
    }
    preloadSharp()
    return sharpStage(ctx, o.concurrency, async (frame) => {
      try {
        const { data, info } = await (await sharpOf(frame, o.maxPixels)).resize(resizeOptions).raw().toBuffer({ resolveWithObject: true })
        return frameFrom(frame, data, info, 'raw')
      } catch (err) {
        // With encoded input the likely culprit is a frame that does not decode.
        throw await sharpFailure(frame.format === 'raw' ? 'ERR_ENCODE' : 'ERR_DECODE', ctx.name, 'resize', frame, err, o.maxPixels)
      }
    })
  },
})

export const resize = stageFactory(spec)
