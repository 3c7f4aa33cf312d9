// The files sink's engine: one file per frame, each written under a
// temporary name in the same directory and renamed into place, so a reader
// polling the directory never sees half an image and a crash leaves no
// partial file under a final name. Names (and time segments) come from
// FrameNamer in naming.ts.

import { lstat, rename, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { Transform, type TransformCallback } from 'node:stream'
import { FramePipeError } from '../core/errors.js'
import { expectFrame } from '../core/checks.js'
import type { Frame } from '../core/frame.js'
import { passOn, type StageContext } from '../core/stage.js'
import { FrameNamer, extensionFor } from './naming.js'
import { Directories } from './directories.js'

/** The files sink's options, resolved (see sinks/files.ts for what each means). */
export interface FilesSinkConfig {
  /** Directory for the files; created if missing (default out) */
  dir: string
  /** File name: %d or %0Nd = running index from `start`, {seq} = frame.seq, {ext} = jpg/png/webp/raw/bin by format, %% = %; local time of the frame (or of its segment's start): {ms} epoch ms, {date} YYYY-MM-DD, {time} HH-MM-SS, {Y} {M} {D} {h} {m} {s}; may contain subdirectories (default frame-%06d.{ext}) */
  pattern: string
  /** First value of the %d index (default 0) */
  start: number
  /** Replace existing files; false: an existing file is an error (ERR_IO) (default true) */
  overwrite: boolean
  /** Milliseconds of frame time per segment; 0 = none. */
  segment: number
}

export class FilesSink extends Transform {
  private readonly o: FilesSinkConfig
  private readonly ctx: StageContext
  private readonly namer: FrameNamer
  private tmpCount = 0
  private readonly dirs: Directories
  /** The write in progress (never rejects); _destroy waits for it so no temporary file outlives the stream. */
  private inFlight: Promise<void> | undefined

  constructor(o: FilesSinkConfig, ctx: StageContext) {
    // A bad pattern fails here, before there is a stream whose construct would make the directory.
    const namer = new FrameNamer({ pattern: o.pattern, start: o.start, segment: o.segment, stage: ctx.name })
    // The write callback is held until the file is in place: one write in flight.
    super({ objectMode: true, highWaterMark: 1 })
    this.o = o
    this.ctx = ctx
    this.dirs = new Directories(ctx.name)
    this.namer = namer
    if (o.segment > 0) ctx.counters.segments = 0
  }

  override _construct(cb: (err?: Error | null) => void): void {
    this.dirs.make(this.o.dir).then(() => cb(), cb)
  }

  override _transform(record: unknown, _enc: BufferEncoding, cb: TransformCallback): void {
    const frame = expectFrame(this.ctx.name, record)
    if (frame instanceof FramePipeError) {
      cb(frame)
      return
    }
    this.inFlight = this.save(frame).then(
      () => {
        this.inFlight = undefined
        if (this.destroyed) return
        passOn(this, frame)
        cb()
      },
      (err: Error) => {
        this.inFlight = undefined
        if (!this.destroyed) cb(err)
      },
    )
  }

  private async save(frame: Frame): Promise<void> {
    const file = join(
      this.o.dir,
      this.namer.name({ seq: frame.seq, ext: extensionFor(frame.format), timestamp: frame.timestamp, peer: frame.peer }),
    )
    if (this.o.segment > 0) this.ctx.counters.segments = this.namer.segments
    const dir = dirname(file)
    await this.dirs.make(dir)
    // Checked before writing, so a refused frame costs no write; a file that
    // appears between this check and the rename is replaced.
    if (!this.o.overwrite && (await exists(file, this.ctx.name))) {
      throw new FramePipeError('ERR_IO', `'${file}' already exists and overwrite is false`, { stage: this.ctx.name })
    }
    // Dot-prefixed and not ending in an image extension: the files source and shell globs skip it.
    const tmp = join(dir, `.${basename(file)}.${process.pid}-${this.tmpCount++}.tmp`)
    try {
      await writeFile(tmp, frame.data, { flag: 'wx' })
      await rename(tmp, file)
    } catch (err) {
      let message = `cannot write '${file}'`
      try {
        await rm(tmp, { force: true })
      } catch (cleanupErr) {
        message += ` (and could not remove '${tmp}': ${(cleanupErr as Error).message})`
      }
      throw this.ioError(message, err)
    }
    this.ctx.counters.frames++
    this.ctx.counters.bytes += frame.data.length
  }

  private ioError(message: string, err: unknown): FramePipeError {
    return new FramePipeError('ERR_IO', `${message}: ${(err as Error).message}`, { stage: this.ctx.name, cause: err })
  }

  override _flush(cb: TransformCallback): void {
    // Transform calls _flush only after the last _transform callback, so every file is in place.
    cb()
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (!this.inFlight) {
      cb(err)
      return
    }
    this.inFlight.then(() => cb(err))
  }
}

async function exists(file: string, stage: string): Promise<boolean> {
  try {
    await lstat(file)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw new FramePipeError('ERR_IO', `cannot check '${file}': ${(err as Error).message}`, { stage, cause: err })
  }
}
