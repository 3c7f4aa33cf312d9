// The source side shared by `camera` and `video`: run ffmpeg, turn its stdout
// into frames (JPEG images split by the MJPEG parser, or fixed-size RGB
// frames), queue them for downstream with a stated policy, and handle
// ffmpeg's end: fall back to the next plan, retry, end cleanly or fail with
// ffmpeg's own reason. Stops ffmpeg when idle and starts it on the next read.

import { Readable } from 'node:stream'
import { FramePipeError } from '../core/errors.js'
import { now, type Frame } from '../core/frame.js'
import type { StageContext } from '../core/stage.js'
import { FFMPEG_BASE_ARGS, FfmpegProcess, StreamLog, findFfmpeg, type FfmpegExit, type FoundTool } from './ffmpeg.js'
import { MjpegParser } from '../wire/mjpeg-parser.js'
import type { JpegInfo } from '../wire/jpeg.js'
import type { OptionSpec } from '../core/spec.js'

/** The `maxFrameBytes` option of the capture sources (camera, video). */
export const CAPTURE_MAX_FRAME_BYTES_OPTION: OptionSpec = {
  type: 'size',
  min: 1024,
  default: 64 * 2 ** 20,
  doc: 'Largest frame accepted from ffmpeg; a bigger JPEG is dropped (counted) and the parser resyncs on the next image',
}

/** One way to run ffmpeg. Arguments go after FFMPEG_BASE_ARGS and end with the output. */
export interface FfmpegPlan {
  /** For messages, e.g. `v4l2 /dev/video0 (MJPEG passthrough)`. */
  label: string
  /** The input without the way it is read, e.g. `v4l2 /dev/video0`: names the input when every plan failed. */
  source: string
  args: string[]
  /** mjpeg: JPEG images back to back (-f mjpeg); raw: rgb24 frames, size read from ffmpeg's log. */
  output: 'mjpeg' | 'raw'
  /**
   * For a passthrough (-c:v copy) plan: the run fails unless ffmpeg's log
   * names this input codec. ffmpeg copies any codec into its mjpeg muxer
   * without complaint, so this is how "no MJPEG here" is noticed at once.
   */
  inputCodec?: string
}

/** Output arguments: JPEG images on stdout, copied from the input (copy=true) or encoded by ffmpeg. */
export function mjpegOutput(copy: boolean, encode: string[] = []): string[] {
  // -flush_packets 1: hand each image over at once instead of when ffmpeg's 32 KiB output buffer fills.
  return ['-map', '0:v:0', ...(copy ? ['-c:v', 'copy'] : encode), '-f', 'mjpeg', '-flush_packets', '1', 'pipe:1']
}

/** Output arguments: RGB frames (3 bytes a pixel, rows top to bottom) on stdout. */
export function rawOutput(filters: string[] = []): string[] {
  return ['-map', '0:v:0', ...filters, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1']
}

export interface FfmpegSourceConfig {
  /** The ffmpeg option ('' = look it up). */
  ffmpeg: string
  /** Runs to try in order until one delivers a frame; the one that did is used from then on. */
  plans: FfmpegPlan[]
  /** Called once before the first run (after ffmpeg is found), e.g. to probe a file; may replace the plans. */
  prepare?: () => Promise<FfmpegPlan[]>
  /** true: when the queue is full the oldest frame is dropped (live capture); false: ffmpeg is paused (files). */
  live: boolean
  queue: number
  retry: boolean
  retryDelay: number
  /** Stop ffmpeg after this many ms without a read; 0 = never. */
  idle: number
  maxFrameBytes: number
  /** true (camera): ffmpeg ending on its own means the input went away: logged, then a clean end or a retry. false (video): a normal end. */
  endIsLoss: boolean
  /** Timestamp of frame number `index` (0-based, over all runs); default: arrival time. */
  timestamp?: (index: number) => number
}

/** The `ffmpeg` events: which binary, each start and stop of the process. */
export interface FfmpegEvent {
  event: 'found' | 'start' | 'stop' | 'fallback'
  message: string
  path?: string
  pid?: number
}

/** 'retry': the input failed or went away and is tried again in `delay` ms. */
export interface CaptureRetryEvent {
  reason: string
  delay: number
  message: string
}

/** The events of the camera and video stages (see core/events.ts). */
export interface CaptureEvents {
  ffmpeg: FfmpegEvent
  retry: CaptureRetryEvent
  warning: FramePipeError
}

const DROP_WARNING_MS = 10_000

/**
 * ffmpeg's words for an input that is not there (or not ours to open): every
 * plan would fail the same way, so no other plan is tried (a missing camera
 * starts ffmpeg once, not once per plan) and messages name the input alone.
 */
const INPUT_MISSING = /No such file or directory|No such device|Could not find video device|Permission denied|Device or resource busy/i

export class FfmpegFrameSource extends Readable {
  /** The ffmpeg in use (after construct). */
  tool: FoundTool | undefined
  private readonly ctx: StageContext
  private readonly c: FfmpegSourceConfig
  private plans: FfmpegPlan[]
  private planIndex = 0
  private planWorked = false
  private proc: FfmpegProcess | undefined
  private parser: MjpegParser | undefined
  private cutter: RawCutter | undefined
  private runFrames = 0
  /** Why the current run was ended by us because it cannot work (e.g. no MJPEG). */
  private runFailure: string | undefined
  /** Plans that failed before the current one in this attempt to start. */
  private fallbacks: Array<{ label: string; failure: string }> = []
  private index = 0
  private readonly queue: Frame[] = []
  private wanted = false
  private paused = false
  /** Nothing more will be produced: the stream ends once the queue is empty. */
  private ended = false
  /** stop() was called: no new run starts; `ended` follows once ffmpeg has exited. */
  private stopping = false
  private endPushed = false
  private retryTimer: NodeJS.Timeout | undefined
  private idleTimer: NodeJS.Timeout | undefined
  private dropsUnreported = 0
  private readonly exiting = new Set<Promise<unknown>>()
  private lastDropWarning = -Infinity

  constructor(ctx: StageContext, config: FfmpegSourceConfig) {
    // One frame in Readable's own buffer; the queue below holds the rest under our policy.
    super({ objectMode: true, highWaterMark: 1 })
    this.ctx = ctx
    this.c = config
    this.plans = config.plans
    ctx.counters.running = 0
    ctx.counters.skipped = 0
  }

  /** pid of the running ffmpeg, if any. */
  get pid(): number | undefined {
    return this.proc?.pid
  }

  /**
   * End cleanly: ffmpeg is stopped and awaited, frames already queued are
   * delivered, then the stream ends (so a pipeline resolves only once ffmpeg
   * is gone).
   */
  stop(): void {
    if (this.destroyed || this.stopping || this.ended) return
    this.stopping = true
    this.clearTimers()
    const proc = this.proc
    this.proc = undefined
    if (!proc) return this.finish()
    void this.retire(proc).then(() => {
      this.setRunning(0)
      this.emitEvent({ event: 'stop', message: `stopped ffmpeg (pid ${proc.pid})`, pid: proc.pid })
      this.finish()
    })
  }

  override _construct(callback: (err?: Error | null) => void): void {
    findFfmpeg(this.c.ffmpeg || undefined, this.ctx.name)
      .then(async (tool) => {
        this.tool = tool
        this.emitEvent({ event: 'found', message: `using ${tool.message}`, path: tool.path })
        if (this.c.prepare) this.plans = await this.c.prepare()
      })
      .then(() => callback(), callback)
  }

  override _read(): void {
    this.wanted = true
    if (this.idleTimer) clearTimeout(this.idleTimer)
    this.idleTimer = undefined
    this.drain()
    if (this.wanted && !this.proc && !this.retryTimer && !this.ended && !this.stopping) this.start()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.clearTimers()
    this.queue.length = 0
    const proc = this.proc
    this.proc = undefined
    if (proc) void this.retire(proc)
    // Also the processes still exiting after stop() or idle: 'close' means no ffmpeg of ours is left.
    Promise.all(this.exiting).then(() => {
      this.setRunning(0)
      callback(err)
    }, callback)
  }

  /** Stop a process we are done with; destroy waits for it too. */
  private retire(proc: FfmpegProcess): Promise<unknown> {
    const done = proc.stop()
    this.exiting.add(done)
    void done.then(() => this.exiting.delete(done))
    return done
  }

  private start(): void {
    const plan = this.plans[this.planIndex]!
    const log = new StreamLog()
    this.runFrames = 0
    this.runFailure = undefined
    this.parser = undefined
    this.cutter = undefined
    const onStderrLine = (line: string): void => {
      const news = log.line(line)
      if (!news || proc !== this.proc) return
      if (news === 'outputSize' && this.cutter) {
        const err = this.cutter.setSize(log.outputSize!.width, log.outputSize!.height)
        if (err) this.destroy(new FramePipeError('ERR_IO', `${plan.label}: ${err}`, { stage: this.ctx.name }))
      } else if (news === 'inputCodec' && plan.inputCodec && log.inputCodec !== plan.inputCodec) {
        // Ends this run; exited() falls back to the next plan or reports it.
        this.runFailure = `the input is ${log.inputCodec}, not ${plan.inputCodec}`
        void this.retire(proc)
      }
    }
    let proc: FfmpegProcess
    try {
      proc = new FfmpegProcess({ path: this.tool!.path, args: [...FFMPEG_BASE_ARGS, ...plan.args], onStderrLine })
    } catch (err) {
      return void this.destroy(
        new FramePipeError('ERR_IO', `${plan.label}: cannot start ffmpeg: ${(err as Error).message}`, { stage: this.ctx.name, cause: err }),
      )
    }
    this.proc = proc
    this.paused = false
    if (plan.output === 'mjpeg') {
      this.parser = new MjpegParser({
        maxFrameBytes: this.c.maxFrameBytes,
        stage: this.ctx.name,
        onFrame: (data, info) => this.frame(data, 'jpeg', info),
        onDrop: (reason, bytes) => this.dropped(reason, bytes),
      })
    } else {
      this.cutter = new RawCutter(this.c.maxFrameBytes, (data, width, height) => this.frame(data, 'raw', { width, height, components: 3 }))
    }
    proc.stdout.on('data', (chunk: Buffer) => this.data(proc, chunk))
    void proc.exited.then((exit) => this.exited(proc, plan, exit))
    this.setRunning(1)
    this.emitEvent({ event: 'start', message: `started ffmpeg (pid ${proc.pid ?? '?'}): ${plan.label}`, pid: proc.pid })
  }

  private data(proc: FfmpegProcess, chunk: Buffer): void {
    if (proc !== this.proc) return
    if (this.parser) {
      this.parser.feed(chunk)
      this.ctx.counters.skipped = this.parser.skippedBytes
    } else {
      const err = this.cutter!.push(chunk)
      if (err) return void this.destroy(new FramePipeError('ERR_IO', err, { stage: this.ctx.name }))
    }
    if (!this.c.live && this.queue.length >= this.c.queue && !this.paused) {
      this.paused = true
      proc.stdout.pause()
    }
  }

  private frame(data: Buffer, format: 'jpeg' | 'raw', info: JpegInfo): void {
    // A consumer may destroy us from inside push(), in the middle of a chunk.
    if (this.destroyed) return
    const index = this.index++
    const timestamp = this.c.timestamp ? this.c.timestamp(index) : now()
    this.runFrames++
    this.planWorked = true
    const frame: Frame = { data, format, width: info.width, height: info.height, channels: info.components, seq: index >>> 0, timestamp }
    if (this.wanted) return this.deliver(frame)
    this.queue.push(frame)
    if (this.c.live && this.queue.length > this.c.queue) {
      this.queue.shift()
      this.ctx.counters.drops++
    }
  }

  private deliver(frame: Frame): void {
    this.ctx.counters.frames++
    this.ctx.counters.bytes += frame.data.length
    // A consumer that took the frame at once (push() says there is room) takes the next one too:
    // several frames parsed from one chunk then go straight through instead of into the queue.
    this.wanted = this.push(frame)
    if (!this.wanted && this.c.idle > 0 && this.proc && !this.idleTimer) this.idleTimer = setTimeout(() => this.goIdle(), this.c.idle)
  }

  /** Hand queued frames to a waiting reader; end when nothing more will come. */
  private drain(): void {
    if (this.destroyed) return
    if (this.wanted && this.queue.length > 0) this.deliver(this.queue.shift()!)
    if (this.paused && this.queue.length < this.c.queue && this.proc) {
      this.paused = false
      this.proc.stdout.resume()
    }
    if (this.ended && this.queue.length === 0 && !this.endPushed) {
      this.endPushed = true
      this.push(null)
    }
  }

  private goIdle(): void {
    this.idleTimer = undefined
    const proc = this.proc
    if (!proc || this.wanted) return
    this.proc = undefined
    // Frames queued now would be stale when someone reads again.
    this.ctx.counters.drops += this.queue.length
    this.queue.length = 0
    void this.retire(proc).then(() => {
      this.setRunning(0)
      this.emitEvent({
        event: 'stop',
        message: `stopped ffmpeg (pid ${proc.pid}): no frame read for ${this.c.idle} ms; it starts again on the next read`,
        pid: proc.pid,
      })
    })
  }

  private exited(proc: FfmpegProcess, plan: FfmpegPlan, exit: FfmpegExit): void {
    // A run we left (stop, idle, destroy) ends without consequences.
    if (proc !== this.proc || this.destroyed) return
    this.proc = undefined
    this.setRunning(0)
    const cut = this.parser?.end()
    if (cut) this.dropped(`the stream ended in the middle of ${cut.what}`, cut.dropped)
    const lost = this.cutter?.pending ?? 0
    if (lost > 0) this.dropped('ffmpeg ended in the middle of a raw frame', lost)
    let failure = this.runFailure ?? proc.failure(exit)
    if (!failure && this.runFrames === 0 && this.parser && this.parser.skippedBytes > 0) {
      failure = `ffmpeg's output held no JPEG image (${this.parser.skippedBytes} bytes skipped)`
    }
    const next = this.plans[this.planIndex + 1]
    const inputMissing = failure !== undefined && this.runFrames === 0 && INPUT_MISSING.test(failure)
    if (this.runFrames === 0 && failure && next && !this.planWorked && !inputMissing) {
      this.emitEvent({ event: 'fallback', message: `${plan.label} failed (${failure}); trying ${next.label}` })
      this.fallbacks.push({ label: plan.label, failure })
      this.planIndex++
      return this.start()
    }
    const earlier = this.fallbacks
    this.fallbacks = []
    const lostInput = failure !== undefined || this.c.endIsLoss
    const what = failure ?? 'the input ended'
    if (this.c.retry && lostInput) {
      if (!this.planWorked) this.planIndex = 0
      const delay = this.c.retryDelay
      const label = inputMissing ? plan.source : plan.label
      this.emit('retry', { reason: what, delay, message: `${label}: ${what}; retrying in ${delay} ms` } satisfies CaptureRetryEvent)
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined
        if (!this.ended && !this.stopping && !this.destroyed) this.start()
      }, delay)
      return
    }
    if (failure && (this.runFrames === 0 || !this.c.endIsLoss)) {
      // After fallbacks, name the input; earlier reasons only when they say something else.
      const other = earlier
        .filter((f) => f.failure !== failure)
        .map((f) => `; before that ${f.label}: ${f.failure}`)
        .join('')
      const text = earlier.length > 0 || inputMissing ? `${plan.source}: ${failure}${other}` : `${plan.label}: ${failure}`
      return void this.destroy(new FramePipeError('ERR_IO', text, { stage: this.ctx.name }))
    }
    if (this.c.endIsLoss) {
      this.emit(
        'warning',
        new FramePipeError('ERR_IO', `${plan.label} stopped after ${this.runFrames} frames: ${what}; ending`, { stage: this.ctx.name }),
      )
    }
    this.finish()
  }

  /** No more frames will come: end once the queue has drained. */
  private finish(): void {
    this.ended = true
    this.drain()
  }

  private dropped(reason: string, bytes: number): void {
    this.ctx.counters.drops++
    this.dropsUnreported++
    // One line now and then, not one per frame of a camera that sends garbage at 30 fps.
    const t = performance.now()
    if (t - this.lastDropWarning < DROP_WARNING_MS) return
    const more = this.dropsUnreported > 1 ? ` (${this.dropsUnreported} frames dropped since the last warning)` : ''
    this.lastDropWarning = t
    this.dropsUnreported = 0
    this.emit(
      'warning',
      new FramePipeError('ERR_BAD_FRAME', `dropped a frame of ${bytes} bytes: ${reason}${more}`, { stage: this.ctx.name }),
    )
  }

  private setRunning(n: number): void {
    this.ctx.counters.running = n
  }

  private emitEvent(event: FfmpegEvent): void {
    this.emit('ffmpeg', event)
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer)
    if (this.idleTimer) clearTimeout(this.idleTimer)
    this.retryTimer = undefined
    this.idleTimer = undefined
  }
}

/**
 * Cuts rgb24 output into width*height*3 frames: a frame inside one chunk is a
 * zero-copy view, any other gets one allocation of the frame size. Until
 * ffmpeg's log has told the size, chunks are held (at most maxFrameBytes).
 */
export class RawCutter {
  private size = 0
  private width = 0
  private height = 0
  private held: Buffer[] = []
  private heldBytes = 0
  private body: Buffer | undefined
  private filled = 0

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: (data: Buffer, width: number, height: number) => void,
  ) {}

  /** Bytes of an unfinished frame (or held before the size was known). */
  get pending(): number {
    return this.size === 0 ? this.heldBytes : this.filled
  }

  /** The frame size from ffmpeg's log; an error text when frames that big are not accepted. */
  setSize(width: number, height: number): string | undefined {
    if (this.size > 0) return undefined
    const size = width * height * 3
    if (size > this.maxFrameBytes)
      return `ffmpeg sends ${width}x${height} RGB frames of ${size} bytes, more than maxFrameBytes (${this.maxFrameBytes})`
    this.width = width
    this.height = height
    this.size = size
    const held = this.held
    this.held = []
    this.heldBytes = 0
    for (const chunk of held) this.push(chunk)
    return undefined
  }

  /** An error text when ffmpeg's output cannot be cut (size unknown for too long). */
  push(chunk: Buffer): string | undefined {
    if (this.size === 0) {
      this.held.push(chunk)
      this.heldBytes += chunk.length
      return this.heldBytes > this.maxFrameBytes
        ? `ffmpeg sent ${this.heldBytes} bytes of raw video without saying its size in its log`
        : undefined
    }
    const size = this.size
    let pos = 0
    while (pos < chunk.length) {
      if (this.body === undefined && chunk.length - pos >= size) {
        this.onFrame(chunk.subarray(pos, pos + size), this.width, this.height)
        pos += size
        continue
      }
      this.body ??= Buffer.allocUnsafe(size)
      const n = Math.min(size - this.filled, chunk.length - pos)
      chunk.copy(this.body, this.filled, pos, pos + n)
      this.filled += n
      pos += n
      if (this.filled === size) {
        const body = this.body
        this.body = undefined
        this.filled = 0
        this.onFrame(body, this.width, this.height)
      }
    }
    return undefined
  }
}
