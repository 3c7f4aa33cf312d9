// The camera stage's engine: which ffmpeg runs to try for a driver, a device
// and the options (cameraPlans: MJPEG passthrough first when the camera may
// have it, raw after), and the live capture source that runs them
// (cameraSource, on capture.ts).

import { FramePipeError } from '../core/errors.js'
import type { StageContext } from '../core/stage.js'
import { FfmpegFrameSource, mjpegOutput, rawOutput, type FfmpegPlan } from './capture.js'

export const CAMERA_DRIVERS = ['auto', 'v4l2', 'avfoundation', 'dshow', 'lavfi', 'file'] as const
export type CameraDriver = (typeof CAMERA_DRIVERS)[number]

/** The camera stage's options, resolved (see sources/camera.ts for what each means). */
export interface CameraConfig {
  /** ffmpeg input device: auto = v4l2 on Linux, avfoundation on macOS, dshow on Windows. lavfi (ffmpeg's synthetic sources, e.g. device=testsrc) and file (a recording played back at its own rate as if live) exist for tests and demos and take the same code path (default auto) */
  driver: CameraDriver
  /** Which camera; '' = /dev/video0 (v4l2), 0 (avfoundation: first camera), testsrc (lavfi). dshow has no default: give the name (with or without 'video='), listed by `ffmpeg -list_devices true -f dshow -i dummy`. For file: the path (default '') */
  device: string
  /** Capture width asked of the camera; 0 = the camera's default. The camera may pick the nearest size it has: frames carry the real size (default 0) */
  width: number
  /** Capture height asked of the camera; 0 = the camera's default (default 0) */
  height: number
  /** Frame rate asked of the camera; 0 = the camera's default (avfoundation: 30, since most Mac cameras refuse ffmpeg's default 29.97) (default 0) */
  fps: number
  /** auto: ask for MJPEG and pass the JPEGs through; if ffmpeg fails to start that way, capture raw instead. mjpeg: MJPEG or an error. raw: the camera's default format, decoded to RGB. Any other value is a camera pixel format (yuyv422, nv12, uyvy422…) decoded to RGB (default auto) */
  pixelFormat: string
  /** Frames waiting for downstream; when full the oldest is dropped (counted in drops): a live camera never waits for a slow consumer, and ffmpeg is always read (default 2) */
  queue: number
  /** When the camera is missing, fails or goes away, try again every retryDelay (logged as retry) instead of ending (default false) */
  retry: boolean
  /** Wait between retries (milliseconds; default 2s) */
  retryDelay: number
  /** Stop ffmpeg (and free the camera) when nobody has read a frame for this long; start it again on the next read. 0 = never (milliseconds; default 0s) */
  idle: number
  /** Largest frame accepted from ffmpeg; a bigger JPEG is dropped (counted) and the parser resyncs on the next image (bytes; default 64MiB) */
  maxFrameBytes: number
  /** ffmpeg to run (a path, or a name in PATH); empty = FRAME_PIPE_FFMPEG, then PATH, then an npm build you installed (@ffmpeg-installer/ffmpeg, ffmpeg-static) (default '') */
  ffmpeg: string
}

/** The live capture source: the oldest frame dropped when downstream is behind, ffmpeg ending counts as losing the camera. */
export function cameraSource(o: CameraConfig, ctx: StageContext): FfmpegFrameSource {
  return new FfmpegFrameSource(ctx, {
    ffmpeg: o.ffmpeg,
    plans: cameraPlans(o),
    live: true,
    queue: o.queue,
    retry: o.retry,
    retryDelay: o.retryDelay,
    idle: o.idle,
    maxFrameBytes: o.maxFrameBytes,
    endIsLoss: true,
  })
}

type ConcreteDriver = Exclude<CameraDriver, 'auto'>

export function platformDriver(platform: NodeJS.Platform = process.platform): ConcreteDriver {
  if (platform === 'darwin') return 'avfoundation'
  if (platform === 'win32') return 'dshow'
  return 'v4l2'
}

/**
 * The ffmpeg runs to try, in order: with pixelFormat=auto an MJPEG
 * passthrough run first and a raw run after it (used when the first fails
 * before its first frame). Exported for tests and `inspect`.
 */
export function cameraPlans(o: CameraConfig): FfmpegPlan[] {
  const driver = o.driver === 'auto' ? platformDriver() : o.driver
  const device = deviceFor(driver, o)
  const size = o.width > 0 && o.height > 0 ? ['-video_size', `${o.width}x${o.height}`] : []
  const fps = o.fps > 0 ? ['-framerate', String(o.fps)] : driver === 'avfoundation' ? ['-framerate', '30'] : []
  const pf = o.pixelFormat.trim().toLowerCase()
  if (pf === '')
    throw new FramePipeError('ERR_INVALID_OPTION', 'pixelFormat is empty: use auto, mjpeg, raw or a pixel format such as yuyv422', {
      stage: 'camera',
    })

  const source = `${driver} ${device}`
  const label = (mode: string): string => `${source} (${mode})`
  switch (driver) {
    case 'lavfi': {
      // Synthetic sources make raw pictures; there is no MJPEG to pass through.
      if (pf === 'mjpeg') throw noMjpeg(driver)
      // -re: deliver at the source's own rate, as a camera does, not as fast as ffmpeg can draw.
      return [{ label: label('raw'), source, args: ['-re', '-f', 'lavfi', '-i', device, ...rawOutput()], output: 'raw' }]
    }
    case 'file': {
      // A recording read at its own rate (-re), as a camera would deliver it.
      const input = ['-re', '-i', device]
      const copy: FfmpegPlan = {
        label: label('MJPEG passthrough'),
        source,
        args: [...input, ...mjpegOutput(true)],
        output: 'mjpeg',
        inputCodec: 'mjpeg',
      }
      const raw: FfmpegPlan = { label: label('raw'), source, args: [...input, ...rawOutput()], output: 'raw' }
      return pf === 'mjpeg' ? [copy] : pf === 'auto' ? [copy, raw] : [raw]
    }
    default: {
      const format = driver === 'v4l2' ? '-input_format' : '-pixel_format'
      const input = (formatArgs: string[]): string[] => ['-f', driver, ...formatArgs, ...size, ...fps, '-i', device]
      // dshow selects the camera's MJPEG pin by codec, v4l2 by input format; avfoundation has no MJPEG.
      const mjpegArgs = driver === 'dshow' ? ['-vcodec', 'mjpeg'] : driver === 'v4l2' ? ['-input_format', 'mjpeg'] : undefined
      const copy: FfmpegPlan | undefined = mjpegArgs && {
        label: label('MJPEG passthrough'),
        source,
        args: [...input(mjpegArgs), ...mjpegOutput(true)],
        output: 'mjpeg',
        inputCodec: 'mjpeg',
      }
      const raw = (formatArgs: string[], mode: string): FfmpegPlan => ({
        label: label(mode),
        source,
        args: [...input(formatArgs), ...rawOutput()],
        output: 'raw',
      })
      if (pf === 'mjpeg') {
        if (!copy) throw noMjpeg(driver)
        return [copy]
      }
      if (pf === 'auto') return copy ? [copy, raw([], 'raw')] : [raw([], 'raw')]
      if (pf === 'raw') return [raw([], 'raw')]
      return [raw([format, pf], `raw ${pf}`)]
    }
  }
}

function deviceFor(driver: ConcreteDriver, o: CameraConfig): string {
  const given = o.device.trim()
  switch (driver) {
    case 'v4l2':
      return given || '/dev/video0'
    case 'avfoundation':
      return given || '0'
    case 'dshow':
      if (!given)
        throw new FramePipeError(
          'ERR_INVALID_OPTION',
          'dshow needs device=<camera name>; list the names with: ffmpeg -list_devices true -f dshow -i dummy',
          { stage: 'camera' },
        )
      return given.startsWith('video=') ? given : `video=${given}`
    case 'lavfi': {
      if (given) return given
      const w = o.width || 640
      const h = o.height || 480
      return `testsrc=size=${w}x${h}:rate=${o.fps || 30}`
    }
    case 'file':
      if (!given) throw new FramePipeError('ERR_INVALID_OPTION', 'driver=file needs device=<path of a recording>', { stage: 'camera' })
      return given
  }
}

function noMjpeg(driver: string): FramePipeError {
  return new FramePipeError('ERR_INVALID_OPTION', `pixelFormat=mjpeg is not available with driver=${driver}; use auto or raw`, {
    stage: 'camera',
  })
}
