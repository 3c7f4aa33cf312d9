// Record JPEG frames into MJPEG AVI files, written by frame-pipe itself (no
// ffmpeg needed), rotated by duration, size or a change of frame size, and
// playable up to the last flush after a crash. The recorder (and how it stays
// crash safe) is media/avi-recorder.ts; the file layout is wire/avi.ts.

import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { AviSink, type AviRecorderConfig } from '../media/avi-recorder.js'
import { recordingDirOption, recordingFpsOption, recordingPatternOption, recordingSegmentOption } from '../media/recording.js'
import { RIFF_SIZE } from '../wire/avi.js'
import type { AviFlushEvent as FlushEvent, AviSegmentEvent as SegmentEvent } from '../media/avi-recorder.js'

export type { AviFlushEvent, AviSegmentEvent } from '../media/avi-recorder.js'

export type AviOptions = Partial<AviRecorderConfig>

/** Events of avi (see core/events.ts). */
export interface AviEvents {
  segment: SegmentEvent
  flush: FlushEvent
}

export const spec = defineStage<AviOptions, AviSink>({
  name: 'avi',
  kind: 'sink',
  input: 'frames',
  output: 'frames',
  description: 'Record JPEG frames into MJPEG AVI files, rotated by duration or size, playable after a crash',
  passes: 'each Frame, unchanged, once its bytes are in the file (durable at the next flush)',
  options: {
    dir: recordingDirOption(),
    pattern: recordingPatternOption('avi'),
    segment: recordingSegmentOption(),
    maxBytes: {
      type: 'size',
      min: 0,
      default: 0,
      doc: 'Start a new file before one would grow past this size, indexes included; a frame too big on its own gets a file of its own; 0 = off',
    },
    fps: recordingFpsOption(
      "Frame rate in the header; 0 = each segment's mean rate from the frames' timestamps ((frames-1)/span, rewritten at each flush and at the end; the previous segment's rate or 30 until two frames give a span)",
    ),
    flush: {
      type: 'duration',
      min: 0,
      default: 1000,
      doc: "How often the header and sizes are updated and the file fsync'd: after a crash (SIGKILL, power loss) the file plays at least up to the last flush; 0 = after every frame",
    },
    riffSize: {
      type: 'size',
      min: 64 * 1024,
      max: RIFF_SIZE,
      default: RIFF_SIZE,
      doc: 'A segment that outgrows this continues in OpenDML AVIX chunks (one file, no 4 GiB limit; players without OpenDML show the first part); lower it only to test',
    },
  },
  faults:
    "a frame from a network peer that is not a JPEG with a frame header is dropped and counted in rejected (one made in this process is an error: insert jpeg); a peer's clock makes at most one new file per half a segment of ours. A disk that cannot be written ends the pipeline; what was written plays up to the last flush",
  create(o, ctx) {
    return new AviSink(o, ctx)
  },
})

export const avi = stageFactory<AviOptions, AviSink, AviEvents>(spec)
