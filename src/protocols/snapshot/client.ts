// The asking side of snapshot-server's request/reply protocol: one byte 'G'
// per request, a native header and the payload back (see
// ./server.ts). As a source it asks once per period, while
// downstream wants frames; `requestSnapshot()` asks once, for scripts.

import type { Socket } from 'node:net'
import { Readable } from 'node:stream'
import { FramePipeError } from '../../core/errors.js'
import type { Frame } from '../../core/frame.js'
import { FrameParser } from '../../wire/length-parser.js'
import { DEFAULT_CLOCK_SKEW } from '../../core/frame.js'
import { dial, formatAddress, peerName, type ConnectionEvent } from '../../net/socket.js'
import { Pacer } from '../../core/pacer.js'
import { SNAPSHOT_REQUEST } from './messages.js'
import { formatDuration } from '../../core/spec.js'
import { newCounters, type Counters, type StageContext } from '../../core/stage.js'
import { clientSecurity, plainServerProblem, type ClientSecurity, type ClientSecurityOptions } from '../../net/security.js'

export interface SnapshotClientConfig {
  host: string
  port: number
  every: number
  count: number
  timeout: number
  maxFrameBytes: number
  /** TLS and the token check (src/net/security.ts); undefined: plain and tokenless. */
  security?: ClientSecurity
}

/**
 * One connection to a snapshot-server: request() sends 'G' and resolves with
 * the reply. One request at a time. `lost` runs once if the connection fails
 * or the server closes it while no request is out.
 */
class Session {
  private readonly parser: FrameParser
  private readonly address: string
  private waiting: { resolve: (f: Frame) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null
  private failure: FramePipeError | null = null
  private closing = false
  lost: ((err: FramePipeError) => void) | null = null

  constructor(
    readonly socket: Socket,
    private readonly o: SnapshotClientConfig,
    private readonly stage: string,
    counters: Counters,
  ) {
    this.address = formatAddress(o.host, o.port)
    this.parser = new FrameParser({
      header: 'native',
      maxFrameBytes: o.maxFrameBytes,
      // The server's clock must not name or rotate our recordings.
      maxClockSkew: DEFAULT_CLOCK_SKEW,
      stage,
      counters,
      onFrame: (frame) => this.reply(frame),
      onWarning: () => undefined,
    })
    socket.setNoDelay(true)
    // Without a token check, the first bytes may show a server set up for TLS or a token: fail with why.
    let unchecked = !o.security?.auth
    this.parser.peer = this.address
    socket.on('data', (chunk: Buffer) => {
      if (unchecked) {
        unchecked = false
        const mismatch = plainServerProblem(socket, chunk, this.address)
        if (mismatch) return this.fail(new FramePipeError('ERR_NETWORK', mismatch.message, { stage }))
      }
      const err = this.parser.feed(chunk)
      if (err) this.fail(err)
    })
    socket.on('error', (err) =>
      this.fail(new FramePipeError('ERR_NETWORK', `connection to ${this.address} failed: ${err.message}`, { stage, cause: err })),
    )
    socket.on('close', () => {
      if (this.closing) return
      this.fail(
        this.parser.end() ??
          new FramePipeError('ERR_NETWORK', `${this.address} closed the connection${this.waiting ? ' before replying' : ''}`, { stage }),
      )
    })
  }

  static open(o: SnapshotClientConfig, stage: string, counters: Counters): Promise<Session> {
    return new Promise((resolve, reject) => {
      const socket = dial(
        o.host,
        o.port,
        o.timeout,
        stage,
        (err) => {
          if (err) reject(err)
          else resolve(new Session(socket, o, stage, counters))
        },
        o.security,
      )
    })
  }

  request(): Promise<Frame> {
    if (this.failure) return Promise.reject(this.failure)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(
          new FramePipeError('ERR_NETWORK', `no reply from ${this.address} within ${formatDuration(this.o.timeout)}`, {
            stage: this.stage,
          }),
        )
      }, this.o.timeout)
      this.waiting = { resolve, reject, timer }
      this.socket.write(Buffer.of(SNAPSHOT_REQUEST))
    })
  }

  /** FIN, and a bounded wait for the server's FIN. */
  close(): void {
    if (this.closing) return
    this.closing = true
    this.release()
    this.socket.end()
    setTimeout(() => this.socket.destroy(), Math.min(this.o.timeout, 1000)).unref()
  }

  destroy(): void {
    this.closing = true
    this.release()
    this.socket.destroy()
  }

  private reply(frame: Frame): void {
    const w = this.waiting
    // A reply nobody waits for cannot come from a well-behaved server; the next request would take it.
    if (!w)
      return this.fail(new FramePipeError('ERR_BAD_FRAME', `${this.address} sent a frame that was not asked for`, { stage: this.stage }))
    clearTimeout(w.timer)
    this.waiting = null
    w.resolve(frame)
  }

  private fail(err: FramePipeError): void {
    if (this.failure || this.closing) return
    this.failure = err
    const w = this.waiting
    this.release()
    this.socket.destroy()
    if (w) w.reject(err)
    else this.lost?.(err)
  }

  private release(): void {
    if (this.waiting) clearTimeout(this.waiting.timer)
    this.waiting = null
    this.parser.release()
  }
}

export class SnapshotClient extends Readable {
  private readonly o: SnapshotClientConfig
  private readonly ctx: StageContext
  private readonly pacer: Pacer
  private session: Session | null = null
  private timer: NodeJS.Timeout | null = null
  private busy = false
  private delivered = 0
  private stopping = false

  constructor(o: SnapshotClientConfig, ctx: StageContext) {
    // Frames may be megabytes: hold few.
    super({ objectMode: true, highWaterMark: 1 })
    this.o = o
    this.ctx = ctx
    this.pacer = new Pacer(o.every > 0 ? 1000 / o.every : 0)
    ctx.counters.connected = 0
  }

  /** End cleanly: no further request; a reply in flight is not waited for. */
  stop(): void {
    if (this.stopping || this.destroyed) return
    this.stopping = true
    this.finish()
  }

  override _construct(callback: (error?: Error | null) => void): void {
    Session.open(this.o, this.ctx.name, this.ctx.counters).then(
      (session) => {
        if (this.destroyed || this.stopping) {
          session.destroy()
          return callback()
        }
        this.session = session
        session.lost = (err) => this.destroy(err)
        this.ctx.counters.connected = 1
        const peer = peerName(session.socket)
        this.emit('connect', { peer, message: `connected to ${peer}` } satisfies ConnectionEvent)
        callback()
      },
      (err: Error) => callback(this.destroyed ? null : err),
    )
  }

  override _read(): void {
    if (this.busy || this.timer || this.stopping || !this.session) return
    this.timer = setTimeout(() => {
      this.timer = null
      this.pacer.tick()
      this.ask()
    }, this.pacer.wait())
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.session?.destroy()
    this.session = null
    this.ctx.counters.connected = 0
    callback(err)
  }

  private ask(): void {
    const session = this.session
    if (!session || this.stopping) return
    this.busy = true
    session.request().then(
      (frame) => {
        this.busy = false
        if (this.stopping || this.destroyed) return
        this.delivered++
        this.push(frame)
        if (this.o.count > 0 && this.delivered >= this.o.count) this.stop()
      },
      (err: Error) => this.destroy(err),
    )
  }

  private finish(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.session?.close()
    this.session = null
    this.ctx.counters.connected = 0
    this.push(null)
  }
}

export interface RequestSnapshotOptions extends Partial<ClientSecurityOptions> {
  host?: string
  port?: number
  timeout?: number
  maxFrameBytes?: number
}

/**
 * Ask a snapshot-server once for its newest frame. Rejects with one clear
 * error when the server is not there (connection refused), does not answer
 * within `timeout` (2 s), or closes the connection.
 */
export async function requestSnapshot(options: RequestSnapshotOptions = {}): Promise<Frame> {
  const host = options.host ?? '127.0.0.1'
  const o: SnapshotClientConfig = {
    host,
    port: options.port ?? 6811,
    timeout: options.timeout ?? 2000,
    maxFrameBytes: options.maxFrameBytes ?? 64 * 2 ** 20,
    every: 0,
    count: 1,
    security: clientSecurity(options, host, 'snapshot-client'),
  }
  const session = await Session.open(o, 'snapshot-client', newCounters())
  try {
    return await session.request()
  } finally {
    session.close()
  }
}
