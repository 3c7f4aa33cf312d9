// Serve the byte stream to every TCP client that connects (seed 001's and
// 003's servers, many viewers at once). Each client has its own small queue of
// whole packets: a slow client loses its oldest packets, it never slows the
// source or the other clients, and it never receives a packet cut in half.

import net, { type AddressInfo, type Socket } from 'node:net'
import { Transform, type TransformCallback } from 'node:stream'
import { FramePipeError } from '../../core/errors.js'
import { isBoundary, type Packet } from '../../core/frame.js'
import { bytesOf } from '../../core/packets.js'
import { FanOut, packetsToSocket, type FanClient } from '../fanout.js'
import { peerName } from '../socket.js'
import { StageServer } from '../server.js'
import { admittedAs, guard, turnAway, type Admitted, type ServerSecurity } from '../security.js'
import { plainMismatch } from '../auth.js'
import { passOn, RELEASE_HELD, TAKES_FRAMER, type Framer, type StageContext } from '../../core/stage.js'

export interface TcpServerSinkConfig {
  host: string
  port: number
  maxQueue: number
  maxClients: number
  wait: number
  linger: number
  /** TLS and the token check (src/net/security.ts); null: plain and tokenless. */
  security?: ServerSecurity | null
  sendTimeout: number
}

interface Client extends FanClient<Packet> {
  socket: Socket
  peer: string
}

export class TcpServerSink extends Transform {
  private readonly o: TcpServerSinkConfig
  private readonly ctx: StageContext
  private readonly server: StageServer
  private readonly fan: FanOut<Packet, Client>
  /** The first packet, held until `wait` clients are connected. */
  private held: (() => void) | null = null
  private started = false
  /** Set when fused with the prefix before it (see TAKES_FRAMER). */
  private framer: Framer | undefined

  constructor(o: TcpServerSinkConfig, ctx: StageContext) {
    // Packets may be whole frames: hold few.
    super({ objectMode: true, highWaterMark: 2 })
    this.o = o
    this.ctx = ctx
    this.server = new StageServer(this, ctx.name)
    this.fan = new FanOut<Packet, Client>({
      server: this.server,
      maxQueue: o.maxQueue,
      linger: o.linger,
      sendTimeout: o.sendTimeout,
      counters: ctx.counters,
      grace: 'rest',
      ...packetsToSocket,
      left: (c, reason) => {
        // A refused client is being told why (turnAway closes it).
        if (reason !== 'end' && !reason.startsWith('refused: ')) c.socket.destroy()
        this.server.client({ event: 'leave', peer: c.peer, reason, drops: c.drops })
      },
    })
  }

  /** The bound address once listening (port 0 picks one), else null. */
  address(): AddressInfo | null {
    return this.server.address()
  }

  override _construct(callback: (error?: Error | null) => void): void {
    this.server.listen(
      net.createServer(guard(this.o.security ?? null, this.server, (socket, who) => this.accept(socket, who))),
      this.o.host,
      this.o.port,
      callback,
    )
  }

  /** Fused with the prefix before it: records are frames, each made into its packet here (once for every client). */
  [TAKES_FRAMER](framer: Framer): void {
    this.framer = framer
  }

  override _transform(record: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    const chunk = bytesOf(record, this.framer, this.ctx.name)
    if (chunk instanceof FramePipeError) return callback(chunk)
    if (isBoundary(chunk)) {
      passOn(this, chunk)
      return callback()
    }
    this.send(chunk, callback)
  }

  private send(chunk: Packet, callback: TransformCallback): void {
    if (!this.started) {
      if (this.fan.clients.size < this.o.wait) {
        this.held = () => this.send(chunk, callback)
        return
      }
      this.started = true
    }
    this.ctx.counters.frames++
    for (const client of this.fan.clients) this.fan.offer(client, chunk)
    passOn(this, chunk)
    this.fan.proceed(callback)
  }

  /** stopPipeline's hook: a stopping pipeline no longer waits for `wait` clients; the held packet goes to whoever is connected. */
  [RELEASE_HELD](): void {
    this.started = true
    const release = this.held
    this.held = null
    release?.()
  }

  override _flush(callback: TransformCallback): void {
    // Packets that did not make it within linger count as drops.
    this.fan.flush((c) => c.socket.end(), callback)
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.held = null
    this.fan.destroy()
    callback(err)
  }

  private accept(socket: Socket, who?: Admitted): void {
    const peer = peerName(socket)
    const clients = this.fan.clients
    if (clients.size >= this.o.maxClients) return this.server.refuse(peer, `already ${clients.size} clients (maxClients)`, socket)
    const client: Client = { socket, peer, queue: [], drops: 0, sent: 0, gone: false }
    this.fan.connect(client, socket)
    // Read and discard what clients send (seed 001's greeting): unread bytes
    // would make our close an RST, which can destroy data the client has not read.
    socket.resume()
    // Without a token check, the first bytes may show a client set up for TLS or a token: turn it away, say why.
    if (!this.o.security?.auth)
      socket.once('data', (first: Buffer) => {
        const mismatch = plainMismatch(first, 'client', peer)
        if (!mismatch) return
        turnAway(socket, mismatch.answer)
        this.fan.remove(client, `refused: ${mismatch.reason}`)
      })
    this.server.client({ event: 'join', peer, reason: who && admittedAs(this.o.security, who) })
    if (this.held && clients.size >= this.o.wait) {
      const release = this.held
      this.held = null
      release()
    }
  }
}
