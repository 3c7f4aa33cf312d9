// Publish each frame to a NATS subject, metadata in headers (frames.ts). The
// broker fans frames out to any number of subscribers and cuts off a slow one
// itself, so the publisher never waits for a subscriber: only for the server.
//
// Bounds: every publish is followed by a PING; the server's PONG confirms the
// frame (and everything before it) has reached it. At most `maxInFlight`
// bytes are unconfirmed (one frame goes whatever its size), so the client
// never piles frames up in memory for a slow link; while the connection is
// lost nothing is published. In both cases `whenFull` holds the source back
// (wait) or drops the frame (drop). A window in bytes rather than frames: 160
// raw 1080p frames would be a gigabyte. Its size is a trade: on loopback 8 MiB
// in flight gave twice the rate of 1 MiB (the event loop's round trip, not
// the bandwidth, is the limit there), but on a slow uplink the window is a
// queue a live picture waits in (8 MiB at 10 Mbit/s: almost 7 s); 1 MiB it is.
//
// Frames over the server's max_payload are refused, not split: parts of one
// frame would go to different workers of a queue group, and a stream keeping
// the last message per subject would keep only the last part. Raising
// max_payload is one line of the server's config (up to 64 MB).

import { Transform, type TransformCallback } from 'node:stream'
import { FramePipeError } from '../../core/errors.js'
import { expectFrame } from '../../core/checks.js'
import type { Frame } from '../../core/frame.js'
import { passOn, type StageContext } from '../../core/stage.js'
import { NatsLink, natsError, prepareLink, type LinkAuth, type LinkHooks, type NatsLinkConfig } from './connection.js'
import { checkSubject, frameHeaders, headerBytes } from './frames.js'
import { ensureStream, type KeepConfig } from './jetstream.js'
import { throttle } from '../../core/warnings.js'

export interface NatsPublishConfig extends NatsLinkConfig, Omit<KeepConfig, 'subject'> {
  /** Subject to publish to, e.g. frames.cam1 (no wildcards) (required) */
  subject: string
  /** Bytes published but not yet confirmed by the server (a PING follows each frame; one frame goes whatever its size); at this much, or while disconnected, whenFull decides. It bounds the delay a slow uplink adds (1 MiB: under 1 s at 10 Mbit/s); raise it for more than ~2000 frames/s on fast links (bytes; default 1MiB) */
  maxInFlight: number
  /** Server slow or gone: wait holds the source back (a live camera then drops its own oldest frames); drop discards the frame (counted in drops). Subscribers never slow the publisher (default wait) */
  whenFull: 'wait' | 'drop'
  /** A frame over the server's max_payload (1 MB unless raised; frames are never split): drop it, counted in drops and oversize, with a warning saying how to raise max_payload; error: end the pipeline (default drop) */
  oversize: 'drop' | 'error'
  /** At the end, how long to wait for the server to confirm the frames in flight before closing (milliseconds; default 2s) */
  linger: number
}

/** Headers are a few dozen bytes; only a frame this close to max_payload has them measured exactly. */
const HEADER_ALLOWANCE = 512

export class NatsPublisher extends Transform {
  private readonly o: NatsPublishConfig
  private readonly ctx: StageContext
  private readonly auth: LinkAuth
  private readonly warn: (message: string) => void
  private link: NatsLink | null = null
  /** Aborts a first connection still being retried (waitForServer) when the stream is destroyed. */
  private readonly abort = new AbortController()
  /** Bytes published and not yet confirmed by the server. */
  private inFlight = 0
  /** A frame waiting for room or for the connection (whenFull=wait). */
  private held: (() => void) | null = null
  /** Called as confirmations arrive while the end waits for them. */
  private onSettle: (() => void) | null = null
  private lingerTimer: NodeJS.Timeout | null = null
  private readonly keeping: boolean

  constructor(o: NatsPublishConfig, ctx: StageContext) {
    // Checked before the stream exists: a stream whose constructor throws would still run _construct.
    checkSubject(ctx.name, o.subject, false)
    const auth = prepareLink(ctx.name, o)
    // Frames may be large: hold few.
    super({ objectMode: true, highWaterMark: 2 })
    this.o = o
    this.ctx = ctx
    this.auth = auth
    this.keeping = o.keep > 0 || o.keepFor > 0
    this.warn = throttle((m) => this.emit('warning', m), 5000)
    ctx.counters.connected = 0
    ctx.counters.oversize = 0
  }

  override _construct(callback: (error?: Error | null) => void): void {
    // Destroyed before it started: nothing to connect for, nobody to tell.
    if (this.destroyed) return callback()
    const hooks: LinkHooks = {
      stage: this.ctx.name,
      counters: this.ctx.counters,
      emit: (event: string, detail: unknown) => this.emit(event, detail),
      up: () => this.reconnected(),
      failed: (err) => this.destroy(err),
    }
    NatsLink.open(this.o, this.auth, hooks, this.abort.signal)
      .then(async (link) => {
        this.link = link
        if (this.destroyed) return void link.close()
        if (this.keeping) this.emit('info', await ensureStream(link.nc, { ...this.o }, this.ctx.name, this.auth.label))
      })
      .then(
        () => callback(),
        (err: Error) => {
          void this.link?.close()
          callback(this.destroyed ? null : err)
        },
      )
  }

  override _transform(record: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    const frame = expectFrame(this.ctx.name, record)
    if (frame instanceof FramePipeError) return callback(frame)
    this.offer(frame, callback)
  }

  private offer(frame: Frame, callback: TransformCallback): void {
    const link = this.link!
    if (!link.connected || !this.room()) {
      if (this.o.whenFull === 'drop') {
        this.ctx.counters.drops++
        return callback()
      }
      this.held = () => this.offer(frame, callback)
      return
    }
    const error = this.publish(link, frame)
    if (error) return callback(error)
    passOn(this, frame)
    callback()
  }

  /** Publish one frame and ask for its confirmation; an error only for oversize=error or a client failure. */
  private publish(link: NatsLink, frame: Frame): FramePipeError | undefined {
    const h = frameHeaders(frame)
    const limit = link.maxPayload()
    if (frame.data.length + HEADER_ALLOWANCE > limit) {
      const size = frame.data.length + headerBytes(h)
      if (size > limit) return this.oversized(frame, size, limit)
    }
    try {
      link.nc.publish(this.o.subject, frame.data, { headers: h })
    } catch (err) {
      return natsError(this.ctx.name, err, link.server())
    }
    const bytes = frame.data.length
    this.ctx.counters.frames++
    this.ctx.counters.bytes += bytes
    this.inFlight += bytes
    // Rejected when the connection is lost: the frame's fate is unknown, its place is free again.
    link.nc.flush().then(
      () => this.settle(bytes),
      () => this.settle(bytes),
    )
    return undefined
  }

  /** Whether another frame may go: below the window, or nothing in flight (a frame larger than the window still goes, alone). */
  private room(): boolean {
    return this.inFlight === 0 || this.inFlight < this.o.maxInFlight
  }

  private oversized(frame: Frame, size: number, limit: number): FramePipeError | undefined {
    const text =
      `frame seq ${frame.seq} is ${size} bytes with its headers, over the server's max_payload of ${limit} bytes: ` +
      'raise max_payload in nats-server.conf (e.g. max_payload: 8MB; at most 64MB) or send smaller frames (jpeg quality=, resize)'
    if (this.o.oversize === 'error') return new FramePipeError('ERR_FRAME_TOO_LARGE', text, { stage: this.ctx.name })
    this.ctx.counters.drops++
    this.ctx.counters.oversize!++
    this.warn(`dropped ${text}`)
    return undefined
  }

  private settle(bytes: number): void {
    this.inFlight -= bytes
    this.release()
    this.onSettle?.()
  }

  private reconnected(): void {
    this.release()
    // A server restarted with memory storage has lost the stream: make it again.
    if (this.keeping && this.link) {
      ensureStream(this.link.nc, { ...this.o }, this.ctx.name, this.auth.label).then(
        (line) => this.emit('info', line),
        (err: Error) => this.emit('warning', err.message.replace(`${this.ctx.name}: `, '')),
      )
    }
  }

  /** Let a held frame go on when there is room again (it checks for itself). */
  private release(): void {
    const held = this.held
    if (!held || !this.link || !this.link.connected || !this.room()) return
    this.held = null
    held()
  }

  override _flush(callback: TransformCallback): void {
    const finish = () => {
      this.onSettle = null
      if (this.lingerTimer) clearTimeout(this.lingerTimer)
      this.lingerTimer = null
      const link = this.link
      this.link = null
      if (!link) return callback()
      link.close().then(
        () => callback(),
        () => callback(),
      )
    }
    // Frames the server has not confirmed within linger may be lost with the connection: wait for them, bounded.
    this.onSettle = () => {
      if (this.inFlight <= 0) finish()
    }
    this.lingerTimer = setTimeout(finish, this.o.linger)
    this.onSettle()
  }

  /** Node runs _destroy only after _construct has called back: a first connection still being retried is given up here. */
  override destroy(error?: Error): this {
    this.abort.abort()
    return super.destroy(error)
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.held = null
    this.onSettle = null
    if (this.lingerTimer) clearTimeout(this.lingerTimer)
    this.lingerTimer = null
    const link = this.link
    this.link = null
    if (!link) return callback(err)
    link.close().then(
      () => callback(err),
      () => callback(err),
    )
  }
}
