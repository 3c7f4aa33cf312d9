// Frames to files, one file per frame. Each file is written under a temporary
// name in the same directory and renamed into place, so a reader polling the
// directory never sees half an image and a crash leaves no partial file under
// a final name. With `segment`, the files are grouped in time segments (seed
// 004's recorder opens a new file every 15 s): time tokens in the pattern show
// the segment's start; FrameNamer in media/naming.ts holds the rules. The
// engine is media/files-sink.ts.

import type { Duplex } from 'node:stream'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { FilesSink, type FilesSinkConfig } from '../media/files-sink.js'

export type FilesSinkOptions = Partial<FilesSinkConfig>

export const spec = defineStage<FilesSinkOptions, Duplex>({
  name: 'files',
  kind: 'sink',
  input: 'frames',
  output: 'frames',
  description: 'Write each frame to its own file (atomically: temporary name, then rename)',
  passes: 'each Frame, unchanged, once its file is in place',
  options: {
    dir: { type: 'string', default: 'out', doc: 'Directory for the files; created if missing' },
    pattern: {
      type: 'string',
      default: 'frame-%06d.{ext}',
      doc:
        'File name: %d or %0Nd = running index from `start`, {seq} = frame.seq, {ext} = jpg/png/webp/raw/bin by format, %% = %; ' +
        "local time of the frame (or of its segment's start): {ms} epoch ms, {date} YYYY-MM-DD, {time} HH-MM-SS, {Y} {M} {D} {h} {m} {s}; may contain subdirectories",
    },
    start: { type: 'int', min: 0, default: 0, doc: 'First value of the %d index' },
    overwrite: { type: 'boolean', default: true, doc: 'Replace existing files; false: an existing file is an error (ERR_IO)' },
    segment: {
      type: 'duration',
      min: 0,
      default: 0,
      doc:
        'Group files in segments of this length (by frame timestamps): time tokens show the segment start, and %d restarts per segment when the pattern has a time token ' +
        "(it continues instead when a segment's time text repeats an earlier one, so names stay unique); 0: time tokens show each frame's time",
    },
  },
  create(o, ctx) {
    return new FilesSink(o, ctx)
  },
})

export const files = stageFactory(spec)
