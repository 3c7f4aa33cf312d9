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
  realtime: boolean
  loop: boolean
  output: VideoOutput
  qscale: number
  width: number
  height: number
  fps: number
  maxFrameBytes: number
  ffmpeg: string
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
