// What the recorders (avi, mp4) share, so that their files are named and
// rotated by the same rules: which frames they take, when a segment ends,
// what its file is called, and that a recording never replaces a file.

import { open, type FileHandle } from 'node:fs/promises'
import { dirname, extname, join } from 'node:path'
import { FramePipeError } from '../core/errors.js'
import { expectFrame } from '../core/checks.js'
import { sniffFormat, type Frame } from '../core/frame.js'
import { jpegDimensions } from '../wire/jpeg.js'
import { Directories } from './directories.js'
import type { OptionSpec } from '../core/spec.js'
import { compilePattern, SegmentClock, type NameFn } from './naming.js'

/** Suffixes tried when a segment's name is taken; then the stage fails. */
const MAX_SUFFIX = 999

/**
 * The size of a frame a recorder can take (a JPEG with a frame header), or
 * the error saying why not; `needs` tells the user what the recorder holds
 * (`mp4 takes JPEG frames`), before `; insert jpeg before <stage>`.
 */
export function jpegFrameSize(record: unknown, stage: string, needs: string): { width: number; height: number } | FramePipeError {
  const frame = expectFrame(stage, record)
  if (frame instanceof FramePipeError) return frame
  if (frame.format === 'raw') {
    const dims = `${frame.width}x${frame.height}${frame.channels ? `x${frame.channels}` : ''}`
    return new FramePipeError('ERR_BAD_FRAME', `frame ${frame.seq} is raw pixels (${dims}): ${needs}; insert jpeg before ${stage}`, {
      stage,
    })
  }
  if (frame.format !== 'jpeg' && sniffFormat(frame.data) !== 'jpeg') {
    return new FramePipeError('ERR_BAD_FRAME', `frame ${frame.seq} is ${frame.format}: ${needs}; insert jpeg before ${stage}`, { stage })
  }
  const size = jpegDimensions(frame.data)
  if (!size) {
    return new FramePipeError(
      'ERR_BAD_FRAME',
      `frame ${frame.seq} (${frame.data.length} bytes) is not a JPEG with a frame header (no SOF marker before the first scan)`,
      { stage },
    )
  }
  return size
}

export interface SegmentFilesOptions {
  dir: string
  /** See naming.ts; checked here, so a bad pattern fails when the stage is created. */
  pattern: string
  /** Milliseconds of frame time per segment; 0 = no rotation by time. */
  segment: number
  ext: string
  stage: string
}

/** A recorder's segments: when one ends, and the file each new one is written to. */
export class SegmentFiles {
  private readonly o: SegmentFilesOptions
  private readonly name: NameFn
  private readonly dirs: Directories
  private readonly clock: SegmentClock

  constructor(o: SegmentFilesOptions) {
    this.o = o
    this.name = compilePattern(o.pattern, o.stage)
    this.dirs = new Directories(o.stage)
    this.clock = new SegmentClock(o.segment)
  }

  /** Make the recordings' directory, so that a bad `dir` fails before the first frame. */
  prepare(): Promise<void> {
    return this.dirs.make(this.o.dir)
  }

  /**
   * Why `frame` (width x height) cannot join the current segment, which
   * holds frames of `current`'s size, or undefined. A segment covers
   * `segment` ms of frame time either way from its first frame (a clock
   * stepped back ends it too); for a network peer's frames, at most one new
   * segment per half a segment of our own clock (see SegmentClock).
   */
  rotation(current: { width: number; height: number }, frame: Frame, width: number, height: number): string | undefined {
    const byTime = this.o.segment > 0 && this.clock.due(frame.timestamp, frame.peer !== undefined)
    if (width !== current.width || height !== current.height)
      return `frame size changed from ${current.width}x${current.height} to ${width}x${height}`
    if (byTime) return `segment of ${this.o.segment} ms complete`
    return undefined
  }

  /** Create the file of segment number `index`, named from its first frame. */
  async create(index: number, frame: Frame): Promise<{ fh: FileHandle; file: string }> {
    this.clock.begin(frame.timestamp, frame.peer !== undefined)
    const wanted = join(this.o.dir, this.name({ index, seq: frame.seq, ext: this.o.ext, timestamp: frame.timestamp }))
    await this.dirs.make(dirname(wanted))
    return createUnique(wanted, this.o.stage)
  }
}

/**
 * Create `wanted`, or `wanted` with _001, _002 … before its extension when
 * that name is taken: a recording never replaces a file (O_EXCL, so not even
 * one created a moment ago by another process). Three digits, so the names
 * sort in the order they were made (`_2` would sort after `_10`).
 */
export async function createUnique(wanted: string, stage: string): Promise<{ fh: FileHandle; file: string }> {
  const ext = extname(wanted)
  const stem = wanted.slice(0, wanted.length - ext.length)
  for (let n = 0; n <= MAX_SUFFIX; n++) {
    const file = n === 0 ? wanted : `${stem}${collisionSuffix(n)}${ext}`
    try {
      return { fh: await open(file, 'wx'), file }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new FramePipeError('ERR_IO', `cannot create '${file}': ${(err as Error).message}`, { stage, cause: err })
      }
    }
  }
  throw new FramePipeError(
    'ERR_IO',
    `'${wanted}' and ${MAX_SUFFIX} suffixed names (${collisionSuffix(1)} … ${collisionSuffix(MAX_SUFFIX)}) exist already: change pattern`,
    { stage },
  )
}

/** `_001` for n = 1: zero-padded to the width of MAX_SUFFIX, so suffixed names sort numerically. */
export function collisionSuffix(n: number): string {
  return `_${String(n).padStart(String(MAX_SUFFIX).length, '0')}`
}

// ------------------------------------------------------------- recorders (avi, mp4)

export function recordingDirOption(): OptionSpec {
  return { type: 'string', default: 'rec', doc: 'Directory for the recordings; created if missing' }
}

/** Segment names: naming.ts's tokens, and never replacing a file (see below). */
export function recordingPatternOption(ext: string): OptionSpec {
  return {
    type: 'string',
    default: `rec-{date}_{time}.${ext}`,
    doc: "File name of each segment, from its first frame's timestamp (local time): {date} YYYY-MM-DD, {time} HH-MM-SS, {ms} epoch ms, {Y}{M}{D}{h}{m}{s}, %d/%0Nd = segment number from 0, {seq}, %% = %; may contain subdirectories. An existing file is never replaced: _001, _002 … is added before the extension",
  }
}

/** Rotation by time (rotation() below); `more` adds what it means for this recorder. */
export function recordingSegmentOption(more?: string): OptionSpec {
  const doc =
    "Start a new file when a frame's timestamp is this far from the segment's first frame (either way: a clock stepped back counts); 0 = off"
  return { type: 'duration', min: 0, default: 0, doc: more ? `${doc}. ${more}` : doc }
}

/** The recorded rate; `doc` says how 0 measures it. */
export function recordingFpsOption(doc: string): OptionSpec {
  return { type: 'number', min: 0, max: 1000, default: 0, doc }
}
