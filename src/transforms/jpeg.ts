// src/transforms/jpeg.ts
// Encode frames as JPEG: raw pixels with libjpeg-turbo when the settings are
// its own (image/jpeg-codec.ts says why), everything else with one sharp call
// per frame (never one sharp instance for many frames: that merges them into
// one image).

import type { Transform } from 'node:stream'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { sharpStage } from '../image/ordered-parallel.js'
import { CONCURRENCY_OPTION, MAX_PIXELS_OPTION, frameFrom, sharpFailure, sharpOf } from '../image/sharp.js'
import { reportFallback, turboEncoder } from '../image/jpeg-codec.js'

export const CHROMA_SUBSAMPLINGS = ['4:2:0', '4:4:4'] as const
export type ChromaSubsampling = (typeof CHROMA_SUBSAMPLINGS)[number]

export interface JpegOptions {
  /** JPEG quality (default 80) */
  quality?: number
  /** Progressive (interlaced) scans (default false) */
  progressive?: boolean
  /** Chroma subsampling; 4:4:4 keeps colour edges sharp (measured at 640x480 q80: +27-50% bytes, 0.75x speed) (default 4:2:0) */
  chroma?: ChromaSubsampling
  /** Optimise Huffman tables (sharp defaults to on). Measured at 640x480 q80: 11-15% fewer bytes on camera-like pictures (32% on flat test patterns) for 1.75x the encode time; off suits live streaming (default false) */
  optimize?: boolean
  /** Use mozjpeg's defaults (trellis quantisation, optimised scans and tables): smallest files, several times slower (default false) */
  mozjpeg?: boolean
  /** Largest image (width×height) decoded from encoded input; a bigger one is an error (ERR_DECODE), not an allocation (default 50000000) */
  maxPixels?: number
  /** Frames encoded at once (each on a libuv thread); output order is input order. Up to this many frames wait inside the stage (default 3) */
  concurrency?: number
}

export const spec = defineStage<JpegOptions, Transform>({
  name: 'jpeg',
  kind: 'transform',
  input: 'frames',
  output: 'frames',
  description: 'Encode frames as JPEG (raw pixels are encoded, PNG/WebP transcoded, JPEG passed through unchanged)',
  options: {
    quality: { type: 'int', min: 1, max: 100, default: 80, doc: 'JPEG quality' },
    progressive: { type: 'boolean', default: false, doc: 'Progressive (interlaced) scans' },
    chroma: {
      type: 'enum',
      values: CHROMA_SUBSAMPLINGS,
      default: '4:2:0',
      doc: 'Chroma subsampling; 4:4:4 keeps colour edges sharp (measured at 640x480 q80: +27-50% bytes, 0.75x speed)',
    },
    optimize: {
      type: 'boolean',
      default: false,
      doc: 'Optimise Huffman tables (sharp defaults to on). Measured at 640x480 q80: 11-15% fewer bytes on camera-like pictures (32% on flat test patterns) for 1.75x the encode time; off suits live streaming',
    },
    mozjpeg: {
      type: 'boolean',
      default: false,
      doc: "Use mozjpeg's defaults (trellis quantisation, optimised scans and tables): smallest files, several times slower",
    },
    maxPixels: MAX_PIXELS_OPTION,
    concurrency: CONCURRENCY_OPTION,
  },
  create(o, ctx) {
    const jpegOptions = {
      quality: o.quality,
      progressive: o.progressive,
      chromaSubsampling: o.chroma,
      optimiseCoding: o.optimize,
      mozjpeg: o.mozjpeg,
    }
    // Progressive scans, optimised tables and mozjpeg are sharp's (mozjpeg's) alone.
    const turbo = o.progressive || o.optimize || o.mozjpeg ? undefined : turboEncoder({ quality: o.quality, chroma: o.chroma })
    const stage = sharpStage(ctx, o.concurrency, async (frame) => {
      // Re-encoding a JPEG would only lose quality and time; a future `force`
      // option could re-encode to apply this stage's quality.
      if (frame.format === 'jpeg') return frame
      const fast = frame.format === 'raw' ? turbo?.(frame) : undefined
      if (fast) {
        try {
          const data = await fast
          // RGB and opaque RGBA become 3-component JPEGs, grey a 1-component one.
          const channels = frame.channels === 1 ? 1 : 3
          return { data, format: 'jpeg', width: frame.width, height: frame.height, channels, seq: frame.seq, timestamp: frame.timestamp }
        } catch {
          // Not expected for a checked raw frame; sharp tries it, and words the error if it fails too.
        }
      }
      try {
        const { data, info } = await (await sharpOf(frame, o.maxPixels)).jpeg(jpegOptions).toBuffer({ resolveWithObject: true })
        return frameFrom(frame, data, info, 'jpeg')
      } catch (err) {
        throw await sharpFailure('ERR_ENCODE', ctx.name, frame.format === 'raw' ? 'encode' : 'transcode', frame, err, o.maxPixels)
      }
    })
    reportFallback(stage)
    return stage
  },
})

export const jpeg = stageFactory(spec)
