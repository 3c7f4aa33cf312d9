// The video stage's engine: probe the file, choose the ffmpeg run (MJPEG
// passthrough when nothing asks for a change, else ffmpeg's encoder or raw
// RGB), and stamp frames with a media clock, on the capture source of
// capture.ts with backpressure instead of drops.

import { findFfprobe, probeVideo } from './ffmpeg.js'
import { FfmpegFrameSource, mjpegOutput, rawOutput, type FfmpegPlan } from './capture.js'
import { now } from '../core/frame.js'
import type { StageContext } from '../core/stage.js'

export const VIDEO_OUTPUTS = ['jpeg', 'raw'] as const
export type VideoOutput = (typeof VIDEO_OUTPUTS)[number]

/** The video stage's options, resolved (see sources/video.ts for what each means). */
export interface VideoConfig {
  path: string
  /** true: at the file's own frame rate (ffmpeg -re); false: as fast as downstream takes them. Either way a slow consumer slows reading (backpressure, nothing dropped) (default true) */
  realtime: boolean
  /** Start again from the beginning at the end of the file (ffmpeg -stream_loop -1) (default false) */
  loop: boolean
  /** jpeg: MJPEG files pass through unchanged (no decode) unless width/height/fps ask for a change; other codecs are encoded by ffmpeg's MJPEG encoder at qscale. raw: RGB frames (3 channels) (default jpeg) */
  output: VideoOutput
  /** ffmpeg's -q:v for its MJPEG encoder when it has to encode: 2 = best and biggest, 31 = worst (ffmpeg's scale, not the 1-100 of the jpeg stage) (default 5) */
  qscale: number
  /** Scale to this width; 0 = the file's (or keep the aspect ratio when only height is given) (default 0) */
  width: number
  /** Scale to this height; 0 = the file's (or keep the aspect ratio when only width is given) (default 0) */
  height: number
  /** Change the frame rate (ffmpeg's fps filter drops or repeats frames); 0 = the file's (default 0) */
  fps: number
  /** Largest frame accepted from ffmpeg; a bigger JPEG is dropped (counted) and the parser resyncs on the next image (bytes; default 64MiB) */
  maxFrameBytes: number
  /** ffmpeg to run (a path, or a name in PATH); empty = FRAME_PIPE_FFMPEG, then PATH, then an npm build you installed (@ffmpeg-installer/ffmpeg, ffmpeg-static) (default '') */
  ffmpeg: string
  /** ffprobe to run, found like ffmpeg (FRAME_PIPE_FFPROBE, PATH, then @ffprobe-installer/ffprobe or ffprobe-static if you installed one) (default '') */
  ffprobe: string
}

/** A file read to its end: ffmpeg is paused when downstream is behind (nothing dropped), and its end is the stream's end. */
export function videoSource(o: VideoConfig, ctx: StageContext): FfmpegFrameSource {
  const clock = new MediaClock(o.realtime)
  return new FfmpegFrameSource(ctx, {
    ffmpeg: o.ffmpeg,
    plans: [],
    prepare: () => videoPlans(o, ctx, clock),
    live: false,
    queue: 2,
    retry: false,
    retryDelay: 0,
    idle: 0,
    maxFrameBytes: o.maxFrameBytes,
    endIsLoss: false,
    timestamp: (index) => clock.at(index),
  })
}

/**
 * Frame timestamps. Realtime: the arrival time, as for a camera. Otherwise
 * frames come faster than they were filmed, so arrival time means nothing:
 * frame n gets first-arrival + n/fps (the file's rate, or the fps option),
 * which keeps the spacing of the original for a stage that paces by timestamp.
 */
class MediaClock {
  rate = 0
  private start = -1
  constructor(private readonly realtime: boolean) {}
  at(index: number): number {
    const t = now()
    if (this.realtime || this.rate <= 0) return t
    if (this.start < 0) this.start = t - (index * 1000) / this.rate
    return this.start + (index * 1000) / this.rate
  }
}

async function videoPlans(o: VideoConfig, ctx: StageContext, clock: MediaClock): Promise<FfmpegPlan[]> {
  const ffprobe = await findFfprobe(o.ffprobe || undefined, ctx.name)
  const probe = await probeVideo(ffprobe.path, o.path, ctx.name)
  clock.rate = o.fps || probe.fps

  const input = [...(o.realtime ? ['-re'] : []), ...(o.loop ? ['-stream_loop', '-1'] : []), '-i', o.path]
  const filters: string[] = []
  if (o.width > 0 || o.height > 0) filters.push(`scale=${o.width || -2}:${o.height || -2}`)
  if (o.fps > 0) filters.push(`fps=${o.fps}`)
  const vf = filters.length > 0 ? ['-vf', filters.join(',')] : []
  const what = `${o.path} (${probe.codec} ${probe.width}x${probe.height}`

  const source = o.path
  if (o.output === 'raw') return [{ label: `${what} → raw)`, source, args: [...input, ...rawOutput(vf)], output: 'raw' }]
  if (probe.codec === 'mjpeg' && vf.length === 0) {
    return [{ label: `${what}, MJPEG passthrough)`, source, args: [...input, ...mjpegOutput(true)], output: 'mjpeg', inputCodec: 'mjpeg' }]
  }
  return [
    {
      label: `${what} → JPEG q:v ${o.qscale})`,
      source,
      args: [...input, ...mjpegOutput(false, [...vf, '-c:v', 'mjpeg', '-q:v', String(o.qscale)])],
      output: 'mjpeg',
    },
  ]
}
