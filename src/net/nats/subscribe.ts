// Frames from a NATS subject (wildcards allowed), alone or sharing them with
// the other members of a queue group, or from JetStream starting at the kept
// frames. The broker never waits for a subscriber, so neither do we: frames
// arriving while downstream is busy wait in a small queue that drops its
// oldest frame when full (counted), so a slow consumer always gets the
// newest picture. A process that stops reading its socket altogether is cut
// off by nats-server (slow consumer) and reconnects; the publisher and the
// other subscribers never notice.

import { Readable } from 'node:stream'
import type { MsgHdrs, Subscription } from '@nats-io/transport-node'
import type { ConsumerMessages } from '@nats-io/jetstream'
import { FramePipeError, InvalidOptionError } from '../../core/errors.js'
import type { Frame } from '../../core/frame.js'
import type { StageContext } from '../../core/stage.js'
import { NatsLink, prepareLink, type LinkAuth, type LinkHooks, type NatsLinkConfig } from './connection.js'
import { checkSubject, messageFrame } from './frames.js'
import { replay } from './jetstream.js'
import { throttle } from '../../core/warnings.js'

export interface NatsSubscribeConfig extends NatsLinkConfig {
  /** Subject to subscribe to; * matches one token, > the rest (frames.* : every camera) (required) */
  subject: string
  /** Queue group: the subscribers of one group share the frames, each frame going to one of them (workers); '': every frame (default '') */
  queue: string
  /** Frames waiting while downstream is busy; when full the oldest is dropped (counted in drops): the broker and the publisher never wait for us (default 4) */
  maxQueue: number
  /** JetStream: start with the last kept frame of each matching subject (a picture at once), then live frames (default false) */
  last: boolean
  /** JetStream: start with the kept frames of this last span (a recorder's pre-roll: never dropped, however slow downstream is), then live frames; 0: live only (milliseconds; default 0s) */
  preroll: number
  /** JetStream stream to read with last/preroll; '': the one that captures the subject (default '') */
  stream: string
}

export class NatsSubscriber extends Readable {
  private readonly o: NatsSubscribeConfig
  private readonly ctx: StageContext
  private readonly auth: LinkAuth
  private readonly warn: (message: string) => void
  private link: NatsLink | null = null
  /** Aborts a first connection still being retried (waitForServer) when the stream is destroyed. */
  private readonly abort = new AbortController()
  private sub: Subscription | null = null
  private messages: ConsumerMessages | null = null
  /** Live frames waiting for downstream, oldest first; at most maxQueue. */
  private readonly ready: Frame[] = []
  /**
   * JetStream frames delivered while more were already stored behind them
   * (catching up: the pre-roll, the last frames): handed on before the live
   * ones and never dropped, so that a recorder gets its whole pre-roll. What
   * the stream keeps (keepBytes) bounds them.
   */
  private readonly replayed: Frame[] = []
  private reading = true
  private stopping = false
  private nextSeq = 0

  constructor(o: NatsSubscribeConfig, ctx: StageContext) {
    // Checked before the stream exists: a stream whose constructor throws would still run _construct.
    checkSubject(ctx.name, o.subject, true)
    if (o.queue !== '' && (o.last || o.preroll > 0)) {
      throw new InvalidOptionError(
        ctx.name,
        'queue',
        'queue= shares live frames among workers; last= and preroll= read a stream of your own: use one or the other',
      )
    }
    if (o.last && o.preroll > 0) throw new InvalidOptionError(ctx.name, 'preroll', 'give last=true or preroll=, not both')
    if (o.queue !== '' && /[\s*>]/.test(o.queue))
      throw new InvalidOptionError(ctx.name, 'queue', `queue group '${o.queue}' must not hold spaces or wildcards`)
    const auth = prepareLink(ctx.name, o)
    // The queue below is the buffer; the stream itself holds one frame.
    super({ objectMode: true, highWaterMark: 1 })
    this.o = o
    this.ctx = ctx
    this.auth = auth
    this.warn = throttle((m) => this.emit('warning', m), 5000)
    ctx.counters.connected = 0
    ctx.counters.received = 0
  }

  /** End cleanly: stop receiving, hand on the frames already queued. */
  stop(): void {
    if (this.stopping || this.destroyed) return
    this.stopping = true
    this.abort.abort()
    this.sub?.unsubscribe()
    void this.messages?.close()
    for (const frame of this.replayed.splice(0)) this.hand(frame)
    for (const frame of this.ready.splice(0)) this.hand(frame)
    this.push(null)
  }

  override _construct(callback: (error?: Error | null) => void): void {
    // Stopped or destroyed before it started: nothing to connect for, nobody to tell.
    if (this.stopping || this.destroyed) return callback()
    const hooks: LinkHooks = {
      stage: this.ctx.name,
      counters: this.ctx.counters,
      emit: (event: string, detail: unknown) => this.emit(event, detail),
      failed: (err) => this.destroy(err),
    }
    NatsLink.open(this.o, this.auth, hooks, this.abort.signal)
      .then((link) => {
        this.link = link
        if (this.stopping || this.destroyed) return
        return this.o.last || this.o.preroll > 0 ? this.fromStream(link) : this.subscribe(link)
      })
      .then(
        () => callback(),
        (err: Error) => {
          void this.link?.close()
          this.link = null
          callback(this.destroyed || this.stopping ? null : err)
        },
      )
  }

  private async subscribe(link: NatsLink): Promise<void> {
    const { subject, queue } = this.o
    const sub = link.nc.subscribe(subject, {
      ...(queue !== '' ? { queue } : {}),
      callback: (err, msg) => {
        if (!err) this.receive(msg.data, msg.headers)
      },
    })
    this.sub = sub
    // A permission the server refuses closes the subscription with the reason.
    void sub.closed.then((err) => {
      if (err && !this.stopping)
        this.destroy(
          new FramePipeError('ERR_NETWORK', `${this.auth.label} refused the subscription to ${subject}: ${err.message}`, {
            stage: this.ctx.name,
            cause: err,
          }),
        )
    })
    // Once the server answers this PING it has the subscription: frames published from now on arrive.
    // A connection lost before the answer is no failure of ours: the client subscribes again when it
    // reconnects (logged as a reconnect), so the stage goes on; only a closed connection fails it.
    const answered = await link.nc.flush().then(
      () => true,
      (err: Error) => {
        if (link.nc.isClosed()) throw err
        return false
      },
    )
    const group = queue !== '' ? ` in queue group ${queue} (each frame goes to one member)` : ''
    this.emit('info', answered ? `subscribed to ${subject}${group}` : `subscribing to ${subject}${group} once the connection is back`)
  }

  private async fromStream(link: NatsLink): Promise<void> {
    const { subject } = this.o
    const { stream, messages } = await replay(
      link.nc,
      { subject, stream: this.o.stream, last: this.o.last, preroll: this.o.preroll, batch: Math.max(2, this.o.maxQueue) },
      this.ctx.name,
      this.auth.label,
      (m) => this.receive(m.data, m.headers, m.info.pending > 0),
    )
    this.messages = messages
    const from = this.o.last ? 'the last frame of each subject' : `the frames of the last ${this.o.preroll / 1000} s`
    this.emit('info', `reading ${subject} from JetStream stream ${stream}, starting with ${from}`)
    void (async () => {
      for await (const s of messages.status()) {
        if (s.type === 'ordered_consumer_recreated')
          this.emit('info', `JetStream consumer of ${stream} recreated after a gap or a reconnect`)
        else if (s.type === 'stream_not_found')
          this.warn(`JetStream stream ${stream} is gone (server restarted without keeping it?); waiting for it`)
        else if (s.type === 'heartbeats_missed' && s.count === 2) this.warn(`no heartbeat from JetStream for ${stream}; reconnecting it`)
      }
    })()
  }

  override _read(): void {
    this.reading = true
    this.drain()
  }

  /** Node runs _destroy only after _construct has called back: a first connection still being retried is given up here. */
  override destroy(error?: Error): this {
    this.abort.abort()
    return super.destroy(error)
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.ready.length = 0
    this.replayed.length = 0
    const link = this.link
    this.link = null
    const messages = this.messages
    this.messages = null
    this.sub = null
    const close = async () => {
      await messages?.close().catch(() => {})
      await link?.close()
    }
    close().then(
      () => callback(err),
      () => callback(err),
    )
  }

  private receive(data: Uint8Array, headers: MsgHdrs | undefined, catchingUp = false): void {
    if (this.stopping || this.destroyed) return
    this.ctx.counters.received!++
    if (data.length === 0) {
      this.ctx.counters.drops++
      this.warn(`ignored an empty message on ${this.o.subject}`)
      return
    }
    const frame = messageFrame(data, headers, () => this.nextSeq++)
    if (catchingUp) {
      this.replayed.push(frame)
      return this.drain()
    }
    if (this.ready.length >= this.o.maxQueue) {
      const dropped = this.ready.shift()!
      this.ctx.counters.drops++
      this.warn(`slow consumer: downstream is behind, dropped frame seq ${dropped.seq} (maxQueue=${this.o.maxQueue} frames were waiting)`)
    }
    this.ready.push(frame)
    this.drain()
  }

  private drain(): void {
    while (this.reading && (this.replayed.length > 0 || this.ready.length > 0)) {
      const frame = this.replayed.length > 0 ? this.replayed.shift()! : this.ready.shift()!
      if (!this.hand(frame)) this.reading = false
    }
  }

  private hand(frame: Frame): boolean {
    this.ctx.counters.frames++
    this.ctx.counters.bytes += frame.data.length
    return this.push(frame)
  }
}
