// Record JPEG frames as H.264 MP4 through ffmpeg, for small files: one
// ffmpeg per file, segments cut and named by frame-pipe exactly as avi's
// (media/recording.ts). The recorder, and why not ffmpeg's segment muxer, is
// media/mp4-recorder.ts.

import { FFMPEG_OPTION } from '../media/ffmpeg.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { Mp4Sink, X264_PRESETS, type Mp4RecorderConfig } from '../media/mp4-recorder.js'
import { recordingDirOption, recordingFpsOption, recordingPatternOption, recordingSegmentOption } from '../media/recording.js'
import type { Mp4SegmentEvent as SegmentEvent } from '../media/mp4-recorder.js'
import type { FfmpegEvent } from '../media/capture.js'

export { X264_PRESETS, type X264Preset, type Mp4SegmentEvent } from '../media/mp4-recorder.js'

export type Mp4Options = Partial<Mp4RecorderConfig>

/** Events of mp4 (see core/events.ts). */
export interface Mp4Events {
  segment: SegmentEvent
  ffmpeg: FfmpegEvent
}

export const spec = defineStage<Mp4Options, Mp4Sink>({
  name: 'mp4',
  kind: 'sink',
  input: 'frames',
  output: 'frames',
  description: 'Record JPEG frames as H.264 MP4 files through ffmpeg (small files), rotated by duration like avi',
  passes: 'each Frame, unchanged, once ffmpeg has taken it (written into its stdin pipe)',
  options: {
    dir: recordingDirOption(),
    pattern: recordingPatternOption('mp4'),
    segment: recordingSegmentOption('Each file is a separate ffmpeg run, so each starts with a key frame'),
    fps: recordingFpsOption(
      "Frame rate of the video; 0 = measured from the frames' timestamps, so the video plays at the speed it was captured: the first file's rate from its first frames (up to 30 frames or 1 s are held before ffmpeg starts; 30 when they give no span), each later file's from the whole previous one",
    ),
    crf: { type: 'int', min: 0, max: 51, default: 23, doc: 'libx264 constant rate factor: lower is better quality and bigger files' },
    preset: {
      type: 'enum',
      values: X264_PRESETS,
      default: 'veryfast',
      doc: 'libx264 preset: slower presets give smaller files for more CPU',
    },
    ffmpeg: FFMPEG_OPTION,
    fragmented: {
      type: 'boolean',
      default: true,
      doc: 'Fragmented MP4 (an empty index first, then a fragment at least every second, each written at once): a file cut by a killed ffmpeg, a full disk or a power loss plays up to its last fragment; false: one index at the end (a cut file does not play at all; some old players prefer it)',
    },
  },
  faults:
    "a frame from a network peer that is not a JPEG with a frame header is dropped and counted in rejected (one made in this process is an error: insert jpeg); a peer's clock makes at most one new file per half a segment of ours. A segment is complete only when ffmpeg exited 0 and the file has its index; otherwise it is logged DAMAGED and counted in damaged. ffmpeg failing ends the pipeline",
  create(o, ctx) {
    return new Mp4Sink(o, ctx)
  },
})

export const mp4 = stageFactory<Mp4Options, Mp4Sink, Mp4Events>(spec)
