// The TCP server side shared by sinks that answer their clients' requests
// (cmd-server, snapshot-server): they take frames, keep the newest one, and
// write a frame to a client when that client's protocol says so. Each client
// has a small queue of whole packets: a slow client loses its oldest packets,
// it never slows the source or the other clients, and never gets half a frame.
// A client that does not read is cut off (sendTimeout, in the fan-out); one
// the protocol is waiting on that says nothing is closed (idleTimeout).

import net, { type AddressInfo, type Socket } from 'node:net'
import { Transform, type TransformCallback } from 'node:stream'
import { FramePipeError } from '../core/errors.js'
import { expectFrame } from '../core/checks.js'
import type { Frame, Packet } from '../core/frame.js'
import { passOn, type StageContext } from '../core/stage.js'
import { FanOut, packetsToSocket, type FanClient } from '../net/fanout.js'
import { peerName } from '../net/socket.js'
import { StageServer } from '../net/server.js'
import { admittedAs, guard, turnAway, type Admitted, type ServerSecurity } from '../net/security.js'
import { plainMismatch } from '../net/auth.js'
import { formatDuration } from '../core/spec.js'
import { stageWarnings } from '../core/warnings.js'

export interface FrameServerOptions {
  host: string
  port: number
  maxQueue: number
  maxClients: number
  linger: number
  /** TLS and the token check (src/net/security.ts); null: plain and tokenless. */
  security?: ServerSecurity | null
  sendTimeout: number
  /** Milliseconds a client the protocol waits on may say nothing before it is closed; 0 = never. */
  idleTimeout: number
}

export interface ServedClient extends FanClient<Packet> {
  socket: Socket
  peer: string
  /** We ended the connection (the client asked to close); what it sends now is ignored. */
  closing: boolean
  /** performance.now() of the client's last bytes, or of its connecting. */
  heard: number
}

export abstract class FrameServer<C extends ServedClient = ServedClient> extends Transform {
  protected readonly ctx: StageContext
  protected readonly clients: Set<C>
  /** The newest frame and its packet (header + payload), once one came. */
  protected latest: { frame: Frame; packet: Packet } | null = null
  private readonly so: FrameServerOptions
  private readonly server: StageServer
  private readonly fan: FanOut<Packet, C>
  private readonly warnings: ReturnType<typeof stageWarnings>
  private idleTimer: NodeJS.Timeout | null = null

  constructor(o: FrameServerOptions, ctx: StageContext) {
    // Frames may be megabytes: hold few.
    super({ objectMode: true, highWaterMark: 2 })
    this.so = o
    this.ctx = ctx
    this.server = new StageServer(this, ctx.name)
    this.fan = new FanOut<Packet, C>({
      server: this.server,
      maxQueue: o.maxQueue,
      linger: o.linger,
      sendTimeout: o.sendTimeout,
      counters: ctx.counters,
      grace: 'rest',
      ...packetsToSocket,
      pumped: (c) => {
        if (!c.closing) this.onPumped(c)
      },
      left: (c, reason) => {
        // A refused client is being told why (turnAway closes it).
        if (reason !== 'end' && !reason.startsWith('refused: ')) c.socket.destroy()
        this.onLeave(c)
        this.server.client({ event: 'leave', peer: c.peer, reason, drops: c.drops })
      },
    })
    this.clients = this.fan.clients
    this.warnings = stageWarnings(this, ctx.name)
    if (o.idleTimeout > 0) ctx.counters.idle = 0
  }

  /** The header and payload to send for `frame`, made once per frame. */
  protected abstract encode(frame: Frame): Packet | FramePipeError
  protected abstract newClient(base: ServedClient): C
  /** Bytes from a client: its requests or commands. */
  protected abstract onData(client: C, data: Buffer): void
  /** A new newest frame: serve whoever waits for one. */
  protected abstract onFrame(): void
  /** The protocol waits for this client to ask for something (nothing is owed to it): its silence counts toward idleTimeout. */
  protected abstract awaitsClient(client: C): boolean
  protected onLeave(_client: C): void {}
  /** The client's queue was handed to its socket as far as the socket takes it (after a send or a 'drain'). */
  protected onPumped(_client: C): void {}

  /** The bound address once listening (port 0 picks one), else null. */
  address(): AddressInfo | null {
    return this.server.address()
  }

  override _construct(callback: (error?: Error | null) => void): void {
    this.server.listen(
      net.createServer(guard(this.so.security ?? null, this.server, (socket, who) => this.accept(socket, who))),
      this.so.host,
      this.so.port,
      (err) => {
        const idle = this.so.idleTimeout
        if (!err && idle > 0) {
          this.idleTimer = setInterval(() => this.checkIdle(idle), Math.max(20, Math.min(1000, idle / 4)))
          this.idleTimer.unref()
        }
        callback(err)
      },
    )
  }

  override _transform(record: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    const frame = expectFrame(
      this.ctx.name,
      record,
      `${this.ctx.name} puts its own header on frames: remove 'prefix' before it, or insert unprefix`,
    )
    if (frame instanceof FramePipeError) return callback(frame)
    const packet = this.encode(frame)
    if (packet instanceof FramePipeError) return callback(packet)
    this.latest = { frame, packet }
    this.ctx.counters.frames++
    this.onFrame()
    passOn(this, frame)
    this.fan.proceed(callback)
  }

  override _flush(callback: TransformCallback): void {
    this.stopIdleTimer()
    this.fan.flush((c) => {
      c.closing = true
      c.socket.end()
    }, callback)
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.stopIdleTimer()
    this.latest = null
    this.fan.destroy()
    callback(err)
  }

  /** Queue a packet for one client: its oldest is dropped when the queue is full. */
  protected send(client: C, packet: Packet): void {
    if (client.gone || client.closing) return
    this.fan.offer(client, packet)
  }

  /** Close one client's connection after what the socket already holds; its queue is dropped. */
  protected closeClient(client: C): void {
    if (client.closing || client.gone) return
    client.closing = true
    this.fan.dropQueue(client)
    client.socket.end()
    // A client that never answers our FIN is cut after linger.
    setTimeout(() => client.socket.destroy(), Math.max(this.so.linger, 250)).unref()
    this.fan.progress()
  }

  /** A warning about what a client did: rate-limited, since a client can do it on every read. */
  protected warn(message: string): void {
    this.warnings(message)
  }

  /** Close every client the protocol waits on that has said nothing for `idle` ms. */
  private checkIdle(idle: number): void {
    const t = performance.now()
    for (const c of this.clients) {
      if (c.closing || c.gone || t - c.heard < idle || !this.awaitsClient(c)) continue
      this.ctx.counters.idle!++
      this.warn(`${c.peer} sent nothing for ${formatDuration(idle)} (idleTimeout); connection closed`)
      this.closeClient(c)
    }
  }

  private stopIdleTimer(): void {
    if (this.idleTimer) clearInterval(this.idleTimer)
    this.idleTimer = null
  }

  private accept(socket: Socket, who?: Admitted): void {
    const peer = peerName(socket)
    if (this.clients.size >= this.so.maxClients)
      return this.server.refuse(peer, `already ${this.clients.size} clients (maxClients)`, socket)
    const client = this.newClient({ socket, peer, queue: [], drops: 0, sent: 0, gone: false, closing: false, heard: performance.now() })
    // Without a token check, the first bytes may show a client set up for TLS or a token: turn it away, say why.
    let unchecked = !this.so.security?.auth
    socket.on('data', (data: Buffer) => {
      client.heard = performance.now()
      if (unchecked) {
        unchecked = false
        const mismatch = plainMismatch(data, 'client', peer)
        if (mismatch) {
          client.closing = true
          turnAway(socket, mismatch.answer)
          return this.fan.remove(client, `refused: ${mismatch.reason}`)
        }
      }
      // After we ended the connection its bytes are read only so that closing sends FIN, not RST.
      if (!client.gone && !client.closing) this.onData(client, data)
    })
    this.fan.connect(client, socket)
    this.server.client({ event: 'join', peer, reason: who && admittedAs(this.so.security, who) })
  }
}
