// Record JPEG frames as H.264 MP4 through ffmpeg, for small files. One
// ffmpeg per file: the JPEGs go to its stdin (`-f mjpeg`), libx264 encodes,
// the mp4 muxer writes. Segments are cut by frame-pipe, not by ffmpeg's
// segment muxer, so names and rotation are exactly avi's (media/recording.ts): every naming token,
// an existing file is never replaced (_001, _002 …), a segment holds the frames
// whose timestamps fall in it, and a change of frame size starts a new file.
// (The segment muxer names files by strftime at the wall-clock moment a
// segment opens: a backlog or a fast source gives several segments one name,
// and ffmpeg overwrites them.)
//
// Crash behaviour: a plain MP4 needs its index (moov) written at the end. If
// frame-pipe dies, even by SIGKILL, ffmpeg sees the end of its input and
// finishes the file itself; but a killed ffmpeg or a full disk leaves a file
// with no moov, which nothing plays (measured: a plain MP4 whose ffmpeg was
// SIGKILLed after 5 s is 48 bytes and unplayable). So by default the MP4 is
// fragmented (an empty moov first, then a moof+mdat fragment at least every
// second, flushed as written): a cut file plays up to its last fragment (the
// same kill left 75 playable frames). A segment is reported complete only when
// ffmpeg exited 0 and the file's top-level boxes tile it with the index there
// (moov; and mfra, the trailer, when fragmented); otherwise it is reported
// damaged (a warning, the close event's `damaged`, counted in damaged).

import { open, rm, stat } from 'node:fs/promises'
import { Transform, type TransformCallback } from 'node:stream'
import { FramePipeError } from '../core/errors.js'
import type { Frame } from '../core/frame.js'
import { passOn, type StageContext } from '../core/stage.js'
import { fromPeer, rejectFrame } from '../core/checks.js'
import { stageWarnings } from '../core/warnings.js'
import { rateOf } from '../wire/avi.js'
import { jpegDimensions } from '../wire/jpeg.js'
import { FFMPEG_BASE_ARGS, FfmpegProcess, findFfmpeg, type FoundTool } from './ffmpeg.js'
import { SegmentFiles, jpegFrameSize } from './recording.js'

export const X264_PRESETS = ['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow'] as const
export type X264Preset = (typeof X264_PRESETS)[number]

/** The mp4 stage's options, resolved (see sinks/mp4.ts for what each means). */
export interface Mp4RecorderConfig {
  /** Directory for the recordings; created if missing (default rec) */
  dir: string
  /** File name of each segment, from its first frame's timestamp (local time): {date} YYYY-MM-DD, {time} HH-MM-SS, {ms} epoch ms, {Y}{M}{D}{h}{m}{s}, %d/%0Nd = segment number from 0, {seq}, %% = %; may contain subdirectories. An existing file is never replaced: _001, _002 … is added before the extension (default rec-{date}_{time}.mp4) */
  pattern: string
  /** Milliseconds of frame time per segment; 0 = no rotation by time. */
  segment: number
  /** Video rate; 0 = measured from the timestamps. */
  fps: number
  /** libx264 constant rate factor: lower is better quality and bigger files (default 23) */
  crf: number
  /** libx264 preset: slower presets give smaller files for more CPU (default veryfast) */
  preset: X264Preset
  /** ffmpeg to run (a path, or a name in PATH); empty = FRAME_PIPE_FFMPEG, then PATH, then an npm build you installed (@ffmpeg-installer/ffmpeg, ffmpeg-static) (default '') */
  ffmpeg: string
  /** Fragmented MP4: plays up to its last fragment when cut. */
  fragmented: boolean
}

/** What a 'segment' event carries (the CLI logs `message`). */
export interface Mp4SegmentEvent {
  event: 'open' | 'close'
  file: string
  /** Frames given to ffmpeg for this file (close: all of them). */
  frames: number
  fps: number
  reason?: string
  /** close: why the file is not complete (ffmpeg's exit, a missing index); absent when it is. */
  damaged?: string
  message: string
}

/** Frames held at most while fps=0 measures the first rate, and over how long. */
const MEASURE_FRAMES = 30
const MEASURE_MS = 1000
/** How long ffmpeg may take to finish its file after its input ends, when the stream is destroyed. */
const DESTROY_GRACE_MS = 5000

/** One file being written by one ffmpeg. */
interface Run {
  file: string
  proc: FfmpegProcess
  width: number
  height: number
  first: number
  last: number
  frames: number
  fps: number
  /** ffmpeg stopped on a signal sent to it (e.g. the terminal's Ctrl-C reaching its process group): it finished the file itself. */
  signalled?: string
  /** Resolves when ffmpeg has finished the file; rejects with ffmpeg's reason. */
  done: Promise<void>
}

export class Mp4Sink extends Transform {
  private readonly o: Mp4RecorderConfig
  private readonly ctx: StageContext
  private readonly files: SegmentFiles
  private tool: FoundTool | undefined
  private run: Run | undefined
  /** Runs whose input is closed and whose ffmpeg is finishing. */
  private readonly closing = new Set<Promise<void>>()
  /** Settles after the last close event: the next one waits for it. */
  private lastClose: Promise<void> = Promise.resolve()
  /** Every ffmpeg not yet exited, so _destroy can stop a stuck one. */
  private readonly procs = new Set<FfmpegProcess>()
  private opened = 0
  /** Frames held before the first ffmpeg starts (fps=0 measures the rate on them). */
  private held: Frame[] = []
  /** Rate measured on the last finished segment (fps=0). */
  private measured: number | undefined
  /** The first failure of any ffmpeg, for the next callback. */
  private failure: FramePipeError | undefined
  private readonly warn: ReturnType<typeof stageWarnings>

  constructor(o: Mp4RecorderConfig, ctx: StageContext) {
    // A bad pattern fails here, before there is a stream whose construct would run.
    const files = new SegmentFiles({ dir: o.dir, pattern: o.pattern, segment: o.segment, ext: 'mp4', stage: ctx.name })
    // The write callback is held while ffmpeg's pipe is full: one frame in flight.
    super({ objectMode: true, highWaterMark: 1 })
    this.o = o
    this.ctx = ctx
    this.files = files
    this.warn = stageWarnings(this, ctx.name)
    ctx.counters.segments = 0
    ctx.counters.damaged = 0
  }

  override _construct(cb: (err?: Error | null) => void): void {
    findFfmpeg(this.o.ffmpeg || undefined, this.ctx.name)
      .then(async (tool) => {
        this.tool = tool
        this.emit('ffmpeg', { event: 'found', message: `using ${tool.message}`, path: tool.path })
        await this.files.prepare()
      })
      .then(() => cb(), cb)
  }

  override _transform(frame: Frame, _enc: BufferEncoding, cb: TransformCallback): void {
    const bad = jpegFrameSize(frame, this.ctx.name, 'mp4 takes JPEG frames')
    if (bad instanceof FramePipeError) {
      // A peer's frame that is not a JPEG costs that frame; a local one is a pipeline without its jpeg stage.
      if (bad.code !== 'ERR_BAD_FRAME' || !fromPeer(frame)) return cb(bad)
      rejectFrame(this.ctx.counters, this.warn, frame, bad)
      return cb()
    }
    if (this.failure) return cb(this.failure)
    if (this.o.fps === 0 && this.opened === 0) {
      // The first rate is measured on the first frames: hold them (bounded) until it can be.
      this.held.push(frame)
      const first = this.held[0]!
      if (this.held.length < MEASURE_FRAMES && frame.timestamp - first.timestamp < MEASURE_MS) return cb()
      this.sendHeld().then(() => cb(), cb)
      return
    }
    this.record(frame).then(() => cb(), cb)
  }

  override _flush(cb: TransformCallback): void {
    const finish = async (): Promise<void> => {
      if (this.held.length > 0) await this.sendHeld()
      this.closeRun('end')
      await this.waitClosing()
    }
    finish().then(() => cb(), cb)
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    // Closing ffmpeg's input lets it finish its file; a stuck ffmpeg is killed after a grace period.
    this.closeRun(err ? `stream destroyed: ${err.message}` : 'stream destroyed')
    const runs = [...this.closing]
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, DESTROY_GRACE_MS)
    })
    Promise.race([Promise.allSettled(runs), grace]).then(async () => {
      clearTimeout(timer)
      for (const p of this.procs) if (p.running) await p.stop(1000)
      cb(err)
    })
  }

  private async sendHeld(): Promise<void> {
    const frames = this.held
    if (frames.length >= 2) {
      const span = frames[frames.length - 1]!.timestamp - frames[0]!.timestamp
      if (span > 0) this.measured = ((frames.length - 1) * 1000) / span
    }
    this.held = []
    for (const f of frames) await this.record(f)
  }

  private async record(frame: Frame): Promise<void> {
    // jpegFrameSize() has made sure there is a frame header.
    const size = jpegDimensions(frame.data)!
    let run = this.run
    const reason = run && this.files.rotation(run, frame, size.width, size.height)
    if (reason) this.closeRun(reason)
    if (!run || reason) run = await this.startRun(frame, size.width, size.height)
    await this.send(run, frame)
  }

  private fpsForNewRun(): number {
    if (this.o.fps > 0) return this.o.fps
    return Math.min(1000, Math.max(0.001, this.measured ?? 30))
  }

  private async startRun(frame: Frame, width: number, height: number): Promise<Run> {
    // Reserve the name (never replace a file), then let ffmpeg write into it.
    const { fh, file } = await this.files.create(this.opened, frame)
    await fh.close()
    const fps = this.fpsForNewRun()
    const { rate, scale } = rateOf(fps)
    const args = [
      ...FFMPEG_BASE_ARGS,
      '-y',
      '-f',
      'mjpeg',
      '-framerate',
      `${rate}/${scale}`,
      '-i',
      'pipe:0',
      '-map',
      '0:v:0',
      '-an',
      // 4:2:0 H.264 needs even sizes: an odd last column or row is cropped.
      '-vf',
      'crop=trunc(iw/2)*2:trunc(ih/2)*2',
      '-c:v',
      'libx264',
      '-preset',
      this.o.preset,
      '-crf',
      String(this.o.crf),
      '-pix_fmt',
      'yuv420p',
      // A fragment at every key frame and at least every second, each written out as it is made.
      ...(this.o.fragmented
        ? ['-movflags', '+frag_keyframe+empty_moov+default_base_moof', '-frag_duration', '1000000', '-flush_packets', '1']
        : []),
      '-f',
      'mp4',
      file,
    ]
    const proc = new FfmpegProcess({ path: this.tool!.path, args, stdin: 'pipe' })
    this.procs.add(proc)
    // Nothing is read from ffmpeg's stdout (the file is the output); keep the pipe drained.
    proc.stdout.resume()
    this.opened++
    this.ctx.counters.segments = this.opened
    const run: Run = { file, proc, width, height, first: frame.timestamp, last: frame.timestamp, frames: 0, fps, done: Promise.resolve() }
    run.done = proc.exited.then(async (exit) => {
      this.procs.delete(proc)
      // On SIGINT/SIGTERM ffmpeg writes the end of the file and says so; that file is complete.
      const stopped = proc
        .stderrTail()
        .map((l) => /Exiting normally, received signal (\d+)/.exec(l))
        .find(Boolean)
      if (stopped) {
        run.signalled = stopped[1]
        return
      }
      const why = proc.failure(exit)
      if (!why) return
      // An ffmpeg that failed before writing leaves only our empty reservation: remove it.
      const left = await stat(file).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined
        throw err
      })
      if (left?.size === 0) await rm(file, { force: true })
      // What it left behind (a full disk, a killed ffmpeg): say whether it plays.
      const damaged = left && left.size > 0 ? await mp4Damage(file, this.o.fragmented) : undefined
      if (damaged) this.ctx.counters.damaged!++
      const state = damaged ? `; ${file} is DAMAGED: ${damaged}${this.o.fragmented ? ' (it plays up to its last whole fragment)' : ''}` : ''
      throw new FramePipeError('ERR_IO', `${why} (writing ${file})${state}`, { stage: this.ctx.name })
    })
    // An ffmpeg that ends before we close its input has failed, whatever its exit code.
    run.done.then(
      () => {
        if (this.run !== run) return
        // Signalled from outside: the file is complete; the next frame starts a new one.
        if (run.signalled) this.closeRun(`ffmpeg stopped by signal ${run.signalled}`)
        else
          this.fail(
            new FramePipeError('ERR_IO', `ffmpeg ended before its input did (writing ${file}): ${proc.reason() ?? 'no message'}`, {
              stage: this.ctx.name,
            }),
          )
      },
      (err: FramePipeError) => this.fail(err),
    )
    this.run = run
    this.emit('ffmpeg', {
      event: 'start',
      message: `started ffmpeg (pid ${proc.pid}) for ${file} at ${Math.round(fps * 1000) / 1000} fps`,
      pid: proc.pid,
    })
    this.segmentEvent({ event: 'open', file, frames: 0, fps, message: `recording ${file} (${width}x${height})` })
    return run
  }

  /** Write one JPEG; resolves when the pipe can take more (backpressure from the encoder). */
  private send(run: Run, frame: Frame): Promise<void> {
    const stdin = run.proc.stdin!
    const ok = stdin.write(frame.data)
    run.frames++
    run.last = frame.timestamp
    this.ctx.counters.frames++
    this.ctx.counters.bytes += frame.data.length
    passOn(this, frame)
    if (ok) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const onDrain = (): void => {
        stdin.off('close', onClose)
        resolve()
      }
      const onClose = (): void => {
        stdin.off('drain', onDrain)
        // ffmpeg went away: its exit says why.
        const early = () =>
          this.failure ?? new FramePipeError('ERR_IO', `ffmpeg closed its input (writing ${run.file})`, { stage: this.ctx.name })
        // A frame in the pipe of an ffmpeg stopped by a signal is lost with it (counted in drops).
        run.done.then(() => {
          if (!run.signalled) return reject(early())
          this.ctx.counters.drops++
          resolve()
        }, reject)
      }
      stdin.once('drain', onDrain)
      stdin.once('close', onClose)
    })
  }

  /** End the current run's input; ffmpeg finishes the file in the background (awaited at the end). */
  private closeRun(reason: string): void {
    const run = this.run
    if (!run) return
    this.run = undefined
    if (this.o.fps === 0 && run.frames >= 2 && run.last > run.first) this.measured = ((run.frames - 1) * 1000) / (run.last - run.first)
    run.proc.stdin?.end()
    // Files are announced closed in the order they were opened, whichever ffmpeg finishes first.
    const previous = this.lastClose
    const closing = run.done.then(async () => {
      const damaged = await mp4Damage(run.file, this.o.fragmented)
      await previous
      const fps = Math.round(run.fps * 1000) / 1000
      if (damaged) {
        this.ctx.counters.damaged!++
        this.warn(
          `${run.file} is damaged: ${damaged}${this.o.fragmented ? ' (it plays up to its last whole fragment)' : ''}`,
          'ERR_IO',
          'damaged',
        )
      }
      this.segmentEvent({
        event: 'close',
        file: run.file,
        frames: run.frames,
        fps: run.fps,
        reason,
        ...(damaged ? { damaged } : {}),
        message: `closed ${run.file}: ${run.frames} frames at ${fps} fps (${reason})${damaged ? `; DAMAGED: ${damaged}` : ''}`,
      })
    })
    // Only the order matters here: a failure reaches the stream through fail().
    this.lastClose = closing.then(
      () => undefined,
      () => undefined,
    )
    this.closing.add(closing)
    // Failures reach the stream through fail() (run.done's handler); the set only tracks what is pending.
    closing.then(
      () => this.closing.delete(closing),
      () => this.closing.delete(closing),
    )
  }

  private async waitClosing(): Promise<void> {
    while (this.closing.size > 0) await Promise.all([...this.closing])
  }

  private fail(err: FramePipeError): void {
    if (this.failure) return
    this.failure = err
    this.destroy(err)
  }

  private segmentEvent(e: Mp4SegmentEvent): void {
    this.emit('segment', e)
  }
}

/**
 * Why a finished MP4 file is not complete, or undefined when it is: its
 * top-level boxes must tile the file exactly (no box cut short), with the
 * index (moov) among them, and when fragmented the trailer (mfra) that ffmpeg
 * writes last. Reads the box headers only (a few dozen bytes).
 */
export async function mp4Damage(file: string, fragmented: boolean): Promise<string | undefined> {
  let fh
  try {
    fh = await open(file, 'r')
  } catch (err) {
    return `cannot open it (${(err as Error).message})`
  }
  try {
    const size = (await fh.stat()).size
    const head = Buffer.alloc(16)
    const boxes = new Set<string>()
    let pos = 0
    while (pos < size) {
      const { bytesRead } = await fh.read(head, 0, 16, pos)
      if (bytesRead < 8) return `a box header is cut at byte ${pos} of ${size}`
      let length = head.readUInt32BE(0)
      const type = head.toString('latin1', 4, 8)
      if (length === 1) {
        if (bytesRead < 16) return `a box header is cut at byte ${pos} of ${size}`
        length = Number(head.readBigUInt64BE(8))
      } else if (length === 0) {
        length = size - pos
      }
      if (length < 8 || pos + length > size) return `the '${type}' box at byte ${pos} is cut short (the file ends at ${size})`
      boxes.add(type)
      pos += length
    }
    if (!boxes.has('moov')) return 'no index (moov box): ffmpeg did not finish the file'
    if (fragmented && !boxes.has('mfra')) return 'no trailer (mfra box): ffmpeg did not finish the file'
    return undefined
  } finally {
    await fh.close()
  }
}
