// A camera through ffmpeg: v4l2 on Linux, avfoundation on macOS, dshow on
// Windows. When the camera can send MJPEG, its JPEG images pass straight
// through (`-c:v copy`, split by our MJPEG parser): no decode and re-encode,
// which is where capture tools spend their CPU. Otherwise ffmpeg decodes to
// RGB and raw frames come out for an encode stage (`camera ! jpeg ! …` works
// either way: jpeg passes JPEG frames through unchanged). The plans and the
// source are in media/camera.ts.

import { FFMPEG_OPTION } from '../media/ffmpeg.js'
import { CAPTURE_MAX_FRAME_BYTES_OPTION } from '../media/capture.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import type { FfmpegFrameSource } from '../media/capture.js'
import { CAMERA_DRIVERS, cameraSource, type CameraConfig } from '../media/camera.js'
import type { CaptureEvents } from '../media/capture.js'

export { CAMERA_DRIVERS, type CameraDriver } from '../media/camera.js'

export type CameraOptions = Partial<CameraConfig>

export const spec = defineStage<CameraOptions, FfmpegFrameSource>({
  name: 'camera',
  kind: 'source',
  input: null,
  output: 'frames',
  description: 'Capture a camera through ffmpeg (v4l2, avfoundation, dshow); MJPEG cameras pass JPEG through without re-encoding',
  options: {
    driver: {
      type: 'enum',
      values: CAMERA_DRIVERS,
      default: 'auto',
      doc: "ffmpeg input device: auto = v4l2 on Linux, avfoundation on macOS, dshow on Windows. lavfi (ffmpeg's synthetic sources, e.g. device=testsrc) and file (a recording played back at its own rate as if live) exist for tests and demos and take the same code path",
    },
    device: {
      type: 'string',
      default: '',
      doc: "Which camera; '' = /dev/video0 (v4l2), 0 (avfoundation: first camera), testsrc (lavfi). dshow has no default: give the name (with or without 'video='), listed by `ffmpeg -list_devices true -f dshow -i dummy`. For file: the path",
    },
    width: {
      type: 'int',
      min: 0,
      max: 16384,
      default: 0,
      doc: "Capture width asked of the camera; 0 = the camera's default. The camera may pick the nearest size it has: frames carry the real size",
    },
    height: { type: 'int', min: 0, max: 16384, default: 0, doc: "Capture height asked of the camera; 0 = the camera's default" },
    fps: {
      type: 'number',
      min: 0,
      max: 1000,
      default: 0,
      doc: "Frame rate asked of the camera; 0 = the camera's default (avfoundation: 30, since most Mac cameras refuse ffmpeg's default 29.97)",
    },
    pixelFormat: {
      type: 'string',
      default: 'auto',
      doc: "auto: ask for MJPEG and pass the JPEGs through; if ffmpeg fails to start that way, capture raw instead. mjpeg: MJPEG or an error. raw: the camera's default format, decoded to RGB. Any other value is a camera pixel format (yuyv422, nv12, uyvy422…) decoded to RGB",
    },
    queue: {
      type: 'int',
      min: 1,
      max: 64,
      default: 2,
      doc: 'Frames waiting for downstream; when full the oldest is dropped (counted in drops): a live camera never waits for a slow consumer, and ffmpeg is always read',
    },
    retry: {
      type: 'boolean',
      default: false,
      doc: 'When the camera is missing, fails or goes away, try again every retryDelay (logged as retry) instead of ending',
    },
    retryDelay: { type: 'duration', min: 0, default: 2000, doc: 'Wait between retries' },
    idle: {
      type: 'duration',
      min: 0,
      default: 0,
      doc: 'Stop ffmpeg (and free the camera) when nobody has read a frame for this long; start it again on the next read. 0 = never',
    },
    maxFrameBytes: CAPTURE_MAX_FRAME_BYTES_OPTION,
    ffmpeg: FFMPEG_OPTION,
  },
  create(o, ctx) {
    return cameraSource(o, ctx)
  },
})

export const camera = stageFactory<CameraOptions, FfmpegFrameSource, CaptureEvents>(spec)
