// Frames from any video file ffmpeg reads, at the file's own rate or as fast
// as downstream takes them. MJPEG files (AVI/MOV from cameras, .mjpeg) pass
// their JPEGs straight through; other codecs are decoded by ffmpeg and come
// out as JPEG (ffmpeg's encoder) or raw RGB. The engine is media/video.ts.

import { FFMPEG_OPTION } from '../media/ffmpeg.js'
import { CAPTURE_MAX_FRAME_BYTES_OPTION } from '../media/capture.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import type { FfmpegFrameSource } from '../media/capture.js'
import { VIDEO_OUTPUTS, videoSource, type VideoConfig } from '../media/video.js'
import type { CaptureEvents } from '../media/capture.js'

export { VIDEO_OUTPUTS, type VideoOutput } from '../media/video.js'

export interface VideoOptions extends Partial<VideoConfig> {
  /** The video file (anything ffmpeg reads: mp4, mkv, avi, mov, webm, .mjpeg…) (required) */
  path: string
}

export const spec = defineStage<VideoOptions, FfmpegFrameSource>({
  name: 'video',
  kind: 'source',
  input: null,
  output: 'frames',
  description: 'Read frames from a video file through ffmpeg; MJPEG files pass their JPEGs through unchanged',
  options: {
    path: { type: 'string', required: true, doc: 'The video file (anything ffmpeg reads: mp4, mkv, avi, mov, webm, .mjpeg…)' },
    realtime: {
      type: 'boolean',
      default: true,
      doc: "true: at the file's own frame rate (ffmpeg -re); false: as fast as downstream takes them. Either way a slow consumer slows reading (backpressure, nothing dropped)",
    },
    loop: { type: 'boolean', default: false, doc: 'Start again from the beginning at the end of the file (ffmpeg -stream_loop -1)' },
    output: {
      type: 'enum',
      values: VIDEO_OUTPUTS,
      default: 'jpeg',
      doc: "jpeg: MJPEG files pass through unchanged (no decode) unless width/height/fps ask for a change; other codecs are encoded by ffmpeg's MJPEG encoder at qscale. raw: RGB frames (3 channels)",
    },
    qscale: {
      type: 'int',
      min: 2,
      max: 31,
      default: 5,
      doc: "ffmpeg's -q:v for its MJPEG encoder when it has to encode: 2 = best and biggest, 31 = worst (ffmpeg's scale, not the 1-100 of the jpeg stage)",
    },
    width: {
      type: 'int',
      min: 0,
      max: 16384,
      default: 0,
      doc: "Scale to this width; 0 = the file's (or keep the aspect ratio when only height is given)",
    },
    height: {
      type: 'int',
      min: 0,
      max: 16384,
      default: 0,
      doc: "Scale to this height; 0 = the file's (or keep the aspect ratio when only width is given)",
    },
    fps: {
      type: 'number',
      min: 0,
      max: 1000,
      default: 0,
      doc: "Change the frame rate (ffmpeg's fps filter drops or repeats frames); 0 = the file's",
    },
    maxFrameBytes: CAPTURE_MAX_FRAME_BYTES_OPTION,
    ffmpeg: FFMPEG_OPTION,
    ffprobe: {
      type: 'string',
      default: '',
      doc: 'ffprobe to run, found like ffmpeg (FRAME_PIPE_FFPROBE, PATH, then @ffprobe-installer/ffprobe or ffprobe-static if you installed one)',
    },
  },
  create(o, ctx) {
    return videoSource(o, ctx)
  },
})

export const video = stageFactory<VideoOptions, FfmpegFrameSource, CaptureEvents>(spec)
