// The helpers of the sharp-based stages (jpeg, png, webp, decode, resize):
// their shared options, the input check, and the small pieces that turn a
// Frame into a sharp pipeline and a sharp result (or failure) into a Frame
// (or a FramePipeError). The stages run their work in OrderedParallel
// (ordered-parallel.ts).

import type { OutputInfo, Sharp } from 'sharp'
import { FramePipeError, type ErrorCode } from '../core/errors.js'
import { expectFrame } from '../core/checks.js'
import type { Frame, FrameFormat } from '../core/frame.js'
import type { OptionSpec } from '../core/spec.js'
import { loadSharp } from './sharp-loader.js'

/**
 * The `concurrency` option shared by the codec stages. 3 by default: on the
 * 2-core test machine, decoding a 640x480 JPEG stream received over TCP took
 * about 10% less wall time than with 2 (2 left a core idle while the main
 * thread handed over the next frame); JPEG encoding was a little faster too.
 * It stays below libuv's 4 pool threads, so file and DNS work still get one.
 */
export const CONCURRENCY_OPTION: OptionSpec = {
  type: 'int',
  min: 1,
  max: 16,
  default: 3,
  doc: 'Frames encoded at once (each on a libuv thread); output order is input order. Up to this many frames wait inside the stage',
}

/** Why `chunk` cannot be processed, or undefined when it is a usable Frame. */
export function checkFrame(stage: string, chunk: unknown): FramePipeError | undefined {
  const frame = expectFrame(stage, chunk)
  if (frame instanceof FramePipeError) return frame
  if (frame.format !== 'raw') return undefined
  const { width, height, channels, data, seq } = frame
  if (!(width > 0 && height > 0 && Number.isInteger(width) && Number.isInteger(height))) {
    return new FramePipeError('ERR_BAD_FRAME', `raw frame ${seq} has dimensions ${width}x${height}; raw frames need a width and height`, {
      stage,
    })
  }
  if (!(channels >= 1 && channels <= 4 && Number.isInteger(channels))) {
    return new FramePipeError('ERR_BAD_FRAME', `raw frame ${seq} has ${channels} channels; raw frames need 1 to 4`, { stage })
  }
  const expected = width * height * channels
  if (data.length !== expected) {
    return new FramePipeError(
      'ERR_BAD_FRAME',
      `raw frame ${seq} is ${width}x${height}x${channels} = ${expected} bytes but carries ${data.length} bytes`,
      { stage },
    )
  }
  return undefined
}

/** Default of `maxPixels`: 8K (7680x4320 = 33 Mpx) with room, against sharp's own limit of 268 Mpx (about 800 MB of RGB). */
export const MAX_PIXELS_DEFAULT = 50_000_000

/** The `maxPixels` option of the stages that decode encoded input (jpeg/png/webp when transcoding, resize; decode words its own doc). */
export const MAX_PIXELS_OPTION: OptionSpec = {
  type: 'int',
  min: 1,
  default: MAX_PIXELS_DEFAULT,
  doc: 'Largest image (width×height) decoded from encoded input; a bigger one is an error (ERR_DECODE), not an allocation',
}

/**
 * A sharp pipeline reading one frame: raw pixels described by the frame, or
 * an encoded image sharp recognises itself. An encoded image whose header
 * announces more than `maxPixels` pixels fails before anything is decoded
 * (a corrupt or hostile header must not allocate hundreds of MB). Raw frames
 * are already in memory, so the bound does not apply to them. Loads sharp
 * on first use (sharp-loader.ts).
 */
export async function sharpOf(frame: Frame, maxPixels: number): Promise<Sharp> {
  const sharp = await loadSharp()
  if (frame.format === 'raw') {
    return sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: frame.channels as 1 | 2 | 3 | 4 } })
  }
  return sharp(frame.data, { limitInputPixels: maxPixels })
}

/** The output frame: new pixels or bytes, dimensions from sharp, seq and timestamp of the input. */
export function frameFrom(input: Frame, data: Buffer, info: OutputInfo, format: FrameFormat): Frame {
  return { data, format, width: info.width, height: info.height, channels: info.channels, seq: input.seq, timestamp: input.timestamp }
}

/**
 * Wrap a sharp failure as one line naming stage, frame and sharp's reason
 * (libvips repeats its warnings over several lines; the first says it).
 */
export function sharpError(code: ErrorCode, stage: string, verb: string, frame: Frame, err: unknown): FramePipeError {
  const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0]
  return new FramePipeError(code, `frame ${frame.seq} (${frame.data.length} bytes, format ${frame.format}) does not ${verb}: ${reason}`, {
    stage,
    cause: err,
  })
}

/**
 * The error for a frame sharp failed on: ERR_DECODE with the image's
 * dimensions when an encoded frame is over `maxPixels`, otherwise
 * sharpError(code, …).
 */
export async function sharpFailure(
  code: ErrorCode,
  stage: string,
  verb: string,
  frame: Frame,
  err: unknown,
  maxPixels: number,
): Promise<FramePipeError> {
  if (frame.format === 'raw' || !/exceeds pixel limit/i.test(err instanceof Error ? err.message : String(err))) {
    return sharpError(code, stage, verb, frame, err)
  }
  // Read the header again (no pixels) to say how big the image claims to be.
  const sharp = await loadSharp()
  const size = await sharp(frame.data, { limitInputPixels: false })
    .metadata()
    .then(
      ({ width, height }) => `is ${width}x${height} = ${width * height} pixels`,
      // It was readable a moment ago; if not now, the limit is still what sharp reported.
      () => 'has more pixels',
    )
  return tooManyPixels(stage, frame, size, maxPixels, err)
}

/** ERR_DECODE for an encoded frame whose header announces more than maxPixels, in sharpFailure's words (the libjpeg-turbo path checks the header itself). */
export function overMaxPixels(stage: string, frame: Frame, width: number, height: number, maxPixels: number): FramePipeError {
  return tooManyPixels(stage, frame, `is ${width}x${height} = ${width * height} pixels`, maxPixels, undefined)
}

function tooManyPixels(stage: string, frame: Frame, size: string, maxPixels: number, cause: unknown): FramePipeError {
  return new FramePipeError(
    'ERR_DECODE',
    `frame ${frame.seq} (${frame.data.length} bytes, format ${frame.format}) ${size}, more than maxPixels (${maxPixels})`,
    { stage, cause },
  )
}
