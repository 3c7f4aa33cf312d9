// Record JPEG frames into MJPEG AVI files, written by frame-pipe itself (no
// ffmpeg needed), rotated by duration, size or a change of frame size.
//
// Crash safety: a segment is written under its final name from its first
// frame on. Every `flush` ms the header (frame count, rate) and the RIFF and
// movi sizes are patched to cover the frames written so far and the file is
// fsync'd, so a process killed with SIGKILL leaves a file that plays up to the
// last flush (at least; FFmpeg also reads complete frames after it: it scans
// movi). The legacy index idx1 is appended when the segment is finalised: on
// the end of the stream (the CLI's first SIGINT/SIGTERM ends the source), on
// rotation, and when the stream is destroyed. A closed segment is never
// opened again, and a new segment never replaces an existing file.

import type { FileHandle } from 'node:fs/promises'
import { Transform, type TransformCallback } from 'node:stream'
import { FramePipeError } from '../core/errors.js'
import type { Frame } from '../core/frame.js'
import { passOn, type StageContext } from '../core/stage.js'
import { fromPeer, rejectFrame } from '../core/checks.js'
import { stageWarnings } from '../core/warnings.js'
import { AviMuxer, type AviWrite } from '../wire/avi.js'
import { SegmentFiles, jpegFrameSize } from './recording.js'

/** The avi stage's options, resolved (see sinks/avi.ts for what each means). */
export interface AviRecorderConfig {
  /** Directory for the recordings; created if missing (default rec) */
  dir: string
  /** File name of each segment, from its first frame's timestamp (local time): {date} YYYY-MM-DD, {time} HH-MM-SS, {ms} epoch ms, {Y}{M}{D}{h}{m}{s}, %d/%0Nd = segment number from 0, {seq}, %% = %; may contain subdirectories. An existing file is never replaced: _001, _002 … is added before the extension (default rec-{date}_{time}.avi) */
  pattern: string
  /** Milliseconds of frame time per segment; 0 = no rotation by time. */
  segment: number
  /** Largest file, indexes included; 0 = no limit. */
  maxBytes: number
  /** Header rate; 0 = measured from the timestamps. */
  fps: number
  /** Milliseconds between header patches and fsyncs; 0 = after every frame. */
  flush: number
  /** A segment that outgrows this continues in OpenDML AVIX chunks (one file, no 4 GiB limit; players without OpenDML show the first part); lower it only to test (bytes; default 1GiB) */
  riffSize: number
}

/** What a 'segment' event carries (the CLI logs `message`). */
export interface AviSegmentEvent {
  event: 'open' | 'close'
  file: string
  frames: number
  bytes: number
  fps: number
  /** Why a segment was closed: end of stream, rotation, or the stream being destroyed. */
  reason?: string
  message: string
}

/** What a 'flush' event carries: the file now plays at least up to `frames`. */
export interface AviFlushEvent {
  file: string
  frames: number
  bytes: number
}

interface Segment {
  file: string
  fh: FileHandle
  muxer: AviMuxer
  first: number
  /** Frames added since the last flush. */
  dirty: boolean
}

export class AviSink extends Transform {
  private readonly o: AviRecorderConfig
  private readonly ctx: StageContext
  private readonly files: SegmentFiles
  private seg: Segment | undefined
  private opened = 0
  /** Rate of the last segment that measured one: the header's rate until a new segment can measure its own. */
  private lastFps: number | undefined
  private timer: NodeJS.Timeout | undefined
  /** File operations run one at a time in this order (frames, flushes, closing). */
  private tail: Promise<unknown> = Promise.resolve()
  private readonly warn: ReturnType<typeof stageWarnings>

  constructor(o: AviRecorderConfig, ctx: StageContext) {
    // A bad pattern fails here, before there is a stream whose construct would run.
    const files = new SegmentFiles({ dir: o.dir, pattern: o.pattern, segment: o.segment, ext: 'avi', stage: ctx.name })
    // The write callback is held until the frame is in the file: one frame in flight.
    super({ objectMode: true, highWaterMark: 1 })
    this.o = o
    this.ctx = ctx
    this.files = files
    this.warn = stageWarnings(this, ctx.name)
    ctx.counters.segments = 0
  }

  override _construct(cb: (err?: Error | null) => void): void {
    this.files.prepare().then(() => {
      if (this.o.flush > 0) {
        this.timer = setInterval(() => this.tick(), this.o.flush)
        this.timer.unref()
      }
      cb()
    }, cb)
  }

  override _transform(frame: Frame, _enc: BufferEncoding, cb: TransformCallback): void {
    const size = jpegFrameSize(frame, this.ctx.name, 'AVI here holds JPEG (MJPEG)')
    if (size instanceof FramePipeError) {
      // A peer's frame that is not a JPEG costs that frame; a local one is a pipeline without its jpeg stage.
      if (size.code === 'ERR_BAD_FRAME' && fromPeer(frame)) rejectFrame(this.ctx.counters, this.warn, frame, size)
      else return cb(size)
      return cb()
    }
    this.serial(() => this.record(frame, size.width, size.height)).then(
      () => {
        if (this.destroyed) return
        passOn(this, frame)
        cb()
      },
      (err: Error) => {
        if (!this.destroyed) cb(err)
      },
    )
  }

  override _flush(cb: TransformCallback): void {
    this.stopTimer()
    this.serial(() => this.close('end')).then(() => cb(), cb)
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.stopTimer()
    // Whatever was written is kept as a complete file: finalise it, then report the first error.
    this.serial(() => this.close(err ? `stream destroyed: ${err.message}` : 'stream destroyed')).then(
      () => cb(err),
      (closeErr: Error) => cb(err ?? closeErr),
    )
  }

  private async record(frame: Frame, width: number, height: number): Promise<void> {
    let seg = this.seg
    const reason = seg && this.rotation(seg, frame, width, height)
    if (seg && reason) {
      await this.close(reason)
      seg = undefined
    }
    if (!seg) seg = await this.openSegment(frame, width, height)
    try {
      await apply(seg.fh, seg.muxer.add(frame.data, frame.timestamp))
    } catch (err) {
      throw this.ioError(`cannot write frame ${frame.seq} to '${seg.file}'`, err)
    }
    seg.dirty = true
    this.ctx.counters.frames++
    this.ctx.counters.bytes += frame.data.length
    if (this.o.flush === 0) await this.flushSegment(seg)
  }

  /** Why this frame must start a new segment, or undefined. */
  private rotation(seg: Segment, frame: Frame, width: number, height: number): string | undefined {
    const m = seg.muxer
    const reason = this.files.rotation(m, frame, width, height)
    if (reason) return reason
    const len = frame.data.length
    if (this.o.maxBytes > 0 && m.sizeWith(len) > this.o.maxBytes) return `maxBytes (${this.o.maxBytes}) reached`
    if (!m.fits(len)) return 'OpenDML super index full'
    return undefined
  }

  private async openSegment(frame: Frame, width: number, height: number): Promise<Segment> {
    const { fh, file } = await this.files.create(this.opened, frame)
    const muxer = new AviMuxer({ width, height, fps: this.o.fps, fallbackFps: this.lastFps, riffSize: this.o.riffSize })
    const seg: Segment = { file, fh, muxer, first: frame.timestamp, dirty: false }
    this.seg = seg
    this.opened++
    this.ctx.counters.segments = this.opened
    try {
      await apply(fh, muxer.begin())
    } catch (err) {
      throw this.ioError(`cannot write '${file}'`, err)
    }
    this.event({ event: 'open', file, frames: 0, bytes: 0, fps: muxer.fps, message: `recording ${file} (${width}x${height})` })
    return seg
  }

  /** Data first, then the header that claims it: a header never counts frames the disk lacks. */
  private async flushSegment(seg: Segment): Promise<void> {
    if (!seg.dirty || seg !== this.seg) return
    seg.dirty = false
    try {
      await seg.fh.datasync()
      await apply(seg.fh, seg.muxer.patch())
      await seg.fh.datasync()
    } catch (err) {
      throw this.ioError(`cannot flush '${seg.file}'`, err)
    }
    const event: AviFlushEvent = { file: seg.file, frames: seg.muxer.frames, bytes: seg.muxer.size }
    this.emit('flush', event)
  }

  /** Finalise the open segment, if any: indexes, sizes, fsync, close. The handle is closed even when writing fails. */
  private async close(reason: string): Promise<void> {
    const seg = this.seg
    if (!seg) return
    this.seg = undefined
    const m = seg.muxer
    let failure: unknown
    try {
      await apply(seg.fh, m.finish())
      await seg.fh.sync()
    } catch (err) {
      failure = err
    }
    try {
      await seg.fh.close()
    } catch (err) {
      failure ??= err
    }
    if (failure) throw this.ioError(`cannot finalise '${seg.file}'`, failure)
    if (this.o.fps === 0 && m.frames >= 2) this.lastFps = m.fps
    const fps = Math.round(m.fps * 1000) / 1000
    this.event({
      event: 'close',
      file: seg.file,
      frames: m.frames,
      bytes: m.size,
      fps,
      reason,
      message: `closed ${seg.file}: ${m.frames} frames, ${m.size} bytes, ${fps} fps${m.riffs > 1 ? `, OpenDML ${m.riffs} RIFFs` : ''} (${reason})`,
    })
  }

  private tick(): void {
    const seg = this.seg
    if (!seg?.dirty) return
    this.serial(() => this.flushSegment(seg)).catch((err: Error) => this.destroy(err))
  }

  /** Run `op` after every operation queued before it; its result (or error) goes to the caller. */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    const result = this.tail.then(op)
    // The queue only orders operations; each caller handles its own result.
    this.tail = result.then(
      () => undefined,
      () => undefined,
    )
    return result
  }

  private stopTimer(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  private event(e: AviSegmentEvent): void {
    this.emit('segment', e)
  }

  private ioError(message: string, err: unknown): FramePipeError {
    if (err instanceof FramePipeError) return err
    return new FramePipeError('ERR_IO', `${message}: ${(err as Error).message}`, { stage: this.ctx.name, cause: err })
  }
}

/** Put each write at its position; loops on short writes, which positional writev may return. */
async function apply(fh: FileHandle, writes: AviWrite[]): Promise<void> {
  for (const w of writes) {
    let position = w.position
    let buffers = w.buffers
    for (;;) {
      const { bytesWritten } = await fh.writev(buffers, position)
      let total = 0
      for (const b of buffers) total += b.length
      if (bytesWritten >= total) break
      position += bytesWritten
      buffers = skip(buffers, bytesWritten)
    }
  }
}

function skip(buffers: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = []
  for (const b of buffers) {
    if (n >= b.length) {
      n -= b.length
      continue
    }
    out.push(n > 0 ? b.subarray(n) : b)
    n = 0
  }
  return out
}
