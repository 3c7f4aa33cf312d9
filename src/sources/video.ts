// Frames from any video file ffmpeg reads, at the file's own rate or as fast
// as downstream takes them. MJPEG files (AVI/MOV from cameras, .mjpeg) pass
// their JPEGs straight through; other codecs are decoded by ffmpeg and come
// out as JPEG (ffmpeg's encoder) or raw RGB.

import { findFfprobe, probeVideo } from '../media/ffmpeg.js'
import { FfmpegFrameSource, mjpegOutput, rawOutput, type FfmpegPlan } from '../media/capture.js'
import { now } from '../core/frame.js'
import { defineStage } from '../core/spec.js'
import { stageFactory, type StageContext } from '../core/stage.js'

export const VIDEO_OUTPUTS = ['jpeg', 'raw'] as const
export type VideoOutput = (typeof VIDEO_OUTPUTS)[number]

export interface VideoOptions {
  path: string
  realtime?: boolean
  loop?: boolean
  output?: VideoOutput
  qscale?: number
  width?: number
  height?: number
  fps?: number
  maxFrameBytes?: number
  ffmpeg?: string
  ffprobe?: string
}

export const spec = defineStage<VideoOptions, FfmpegFrameSource>({
  name: 'video',
  kind: 'source',
  input: null,
  output: 'frames',
  description: 'Read frames from a video file through ffmpeg; MJPEG files pass their JPEGs through unchanged',
  options: {
    path: { type: 'string', required: true, doc: 'The video file (anything ffmpeg reads: mp4, mkv, avi, mov, webm, .mjpeg…)' },
    realtime: { type: 'boolean', default: true, doc: "true: at the file's own frame rate (ffmpeg -re); false: as fast as downstream takes them. Either way a slow consumer slows reading (backpressure, nothing dropped)" },
    loop: { type: 'boolean', default: false, doc: 'Start again from the beginning at the end of the file (ffmpeg -stream_loop -1)' },
    output: {
      type: 'enum', values: VIDEO_OUTPUTS, default: 'jpeg',
      doc: "jpeg: MJPEG files pass through unchanged (no decode) unless width/height/fps ask for a change; other codecs are encoded by ffmpeg's MJPEG encoder at qscale. raw: RGB frames (3 channels)",
    },
    qscale: { type: 'int', min: 2, max: 31, default: 5, doc: "ffmpeg's -q:v for its MJPEG encoder when it has to encode: 2 = best and biggest, 31 = worst (ffmpeg's scale, not the 1-100 of the jpeg stage)" },
    width: { type: 'int', min: 0, max: 16384, default: 0, doc: "Scale to this width; 0 = the file's (or keep the aspect ratio when only height is given)" },
    height: { type: 'int', min: 0, max: 16384, default: 0, doc: "Scale to this height; 0 = the file's (or keep the aspect ratio when only width is given)" },
    fps: { type: 'number', min: 0, max: 1000, default: 0, doc: "Change the frame rate (ffmpeg's fps filter drops or repeats frames); 0 = the file's" },
    maxFrameBytes: { type: 'size', min: 1024, default: 64 * 2 ** 20, doc: 'Largest frame accepted from ffmpeg; a bigger JPEG is dropped (counted) and the parser resyncs on the next image' },
    ffmpeg: { type: 'string', default: '', doc: 'ffmpeg to run (a path, or a name in PATH); empty = FRAME_PIPE_FFMPEG, then PATH, then the npm-shipped binary' },
    ffprobe: { type: 'string', default: '', doc: 'ffprobe to run, found like ffmpeg (FRAME_PIPE_FFPROBE, PATH, @ffprobe-installer/ffprobe)' },
  },
  create(o, ctx) {
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
  },
})

export const video = stageFactory(spec)

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

async function videoPlans(o: Required<VideoOptions>, ctx: StageContext, clock: MediaClock): Promise<FfmpegPlan[]> {
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
  return [{
    label: `${what} → JPEG q:v ${o.qscale})`,
    source,
    args: [...input, ...mjpegOutput(false, [...vf, '-c:v', 'mjpeg', '-q:v', String(o.qscale)])],
    output: 'mjpeg',
  }]
}
