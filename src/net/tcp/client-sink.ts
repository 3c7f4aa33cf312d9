// Send the byte stream to a TCP server we connect to (seed 002's direction:
// the client sends). A lost server is retried; every connection starts at a
// packet boundary, so the server never sees half a packet followed by another.

import type { Socket } from 'node:net'
import { Transform, type TransformCallback } from 'node:stream'
import { FramePipeError } from '../../core/errors.js'
import { isBoundary, packetLength, type Packet } from '../../core/frame.js'
import { backoff, describeLoss, dial, formatAddress, peerName, type ConnectionEvent } from '../socket.js'
import { bytesOf, writePacket } from '../../core/packets.js'
import { passOn, TAKES_FRAMER, type Framer, type StageContext } from '../../core/stage.js'
import { plainServerProblem, RefusedError, type ClientSecurity } from '../security.js'

export interface TcpClientSinkConfig {
  host: string
  port: number
  reconnect: boolean
  waitForServer: boolean
  maxQueue: number
  whenFull: 'wait' | 'drop'
  retryMin: number
  retryMax: number
  connectTimeout: number
  linger: number
  pause: number
  /** TLS and the token check (src/net/security.ts); undefined: plain and tokenless. */
  security?: ClientSecurity
}

interface Connection {
  socket: Socket
  peer: string
  /** Packets written whose last byte the socket has not yet handed to the kernel. */
  unsent: number
  lost: boolean
  /**
   * The write callback of every packet's last piece: writes complete in order,
   * so one function per connection counts them. One function, not one per
   * packet, also lets the socket batch its callbacks into one tick.
   */
  sent: (err?: Error | null) => void
}

export class TcpClientSink extends Transform {
  private readonly o: TcpClientSinkConfig
  private readonly ctx: StageContext
  private readonly address: string
  /** A connection attempt in progress. */
  private dialing: Socket | null = null
  private conn: Connection | null = null
  /** Whole packets not yet written, oldest first; at most maxQueue. */
  private readonly queue: Packet[] = []
  private retryTimer: NodeJS.Timeout | null = null
  private attempt = 0
  private pending: NodeJS.Immediate | null = null
  /** Set when fused with the prefix before it (see TAKES_FRAMER). */
  private framer: Framer | undefined
  /** Called on any progress while _flush waits for the queue to drain. */
  private onProgress: (() => void) | null = null
  private lingerTimer: NodeJS.Timeout | null = null
  /** pause > 0: the header is out, the payload waits for this timer. */
  private pausing: NodeJS.Timeout | null = null
  /** pause > 0: the write callback, held until the packet has been handed to the socket. */
  private held: TransformCallback | null = null
  private ending = false
  /** Our FIN is out: the server closing now is the expected answer. */
  private closing = false

  constructor(o: TcpClientSinkConfig, ctx: StageContext) {
    // Packets may be whole frames: hold few.
    super({ objectMode: true, highWaterMark: 2 })
    this.o = o
    this.ctx = ctx
    this.address = formatAddress(o.host, o.port)
    ctx.counters.connected = 0
  }

  override _construct(callback: (error?: Error | null) => void): void {
    if (this.o.waitForServer) {
      callback()
      this.connect()
    } else {
      // The first attempt decides: connected, or one clear error (is the server running?).
      this.connect(callback)
    }
  }

  /** Fused with the prefix before it: records are frames, each made into its packet here. */
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
    this.ctx.counters.frames++
    this.queue.push(chunk)
    // Only whenFull=drop lets the queue grow past maxQueue: wait holds the source first.
    if (this.queue.length > this.o.maxQueue) {
      this.queue.shift()
      this.ctx.counters.drops++
    }
    this.pump()
    passOn(this, chunk)
    if (this.o.pause > 0 || this.o.whenFull === 'wait') {
      // Hold the source while the queue is full (or, pausing inside packets, until this one is out).
      this.held = callback
      this.releaseHeld()
      return
    }
    // Never wait for the server; but when it is behind, let socket I/O run
    // before the next packet (the server may live in this very process).
    if (this.conn && this.queue.length > 0)
      this.pending = setImmediate(() => {
        this.pending = null
        callback()
      })
    else callback()
  }

  /** Let the next packet in once there is room: pause > 0 waits for this packet to be with the socket (or dropped). */
  private releaseHeld(): void {
    const room = this.o.pause > 0 ? this.queue.length === 0 : this.queue.length < this.o.maxQueue
    if (!this.held || this.pausing || !room) return
    const callback = this.held
    this.held = null
    callback()
  }

  override _flush(callback: TransformCallback): void {
    this.ending = true
    const deadline = Date.now() + this.o.linger
    const finish = () => {
      this.onProgress = null
      if (this.lingerTimer) clearTimeout(this.lingerTimer)
      this.lingerTimer = null
      this.close(deadline, callback)
    }
    this.onProgress = () => {
      // Disconnected with packets left: a reconnect may still deliver them within linger.
      if (this.queue.length === 0 && (!this.conn || this.conn.unsent === 0)) finish()
    }
    this.lingerTimer = setTimeout(finish, this.o.linger)
    this.onProgress()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (this.pending) clearImmediate(this.pending)
    if (this.retryTimer) clearTimeout(this.retryTimer)
    if (this.lingerTimer) clearTimeout(this.lingerTimer)
    if (this.pausing) clearTimeout(this.pausing)
    this.pending = this.retryTimer = this.lingerTimer = this.pausing = null
    this.held = null
    this.onProgress = null
    this.dialing?.destroy()
    this.conn?.socket.destroy()
    this.dialing = this.conn = null
    callback(err)
  }

  private connect(first?: (error?: Error | null) => void): void {
    this.retryTimer = null
    const socket = dial(
      this.o.host,
      this.o.port,
      this.o.connectTimeout,
      this.ctx.name,
      (err) => {
        if (socket !== this.dialing) return
        this.dialing = null
        if (err) {
          if (first) return first(err)
          return this.retry(`connecting to ${this.address} failed (${describeLoss(err.cause as Error)})`)
        }
        this.attempt = 0
        this.connected(socket)
        first?.()
      },
      this.o.security,
    )
    this.dialing = socket
  }

  private connected(socket: Socket): void {
    const conn: Connection = {
      socket,
      peer: peerName(socket),
      unsent: 0,
      lost: false,
      sent: (err) => {
        // After a loss the packet is already counted as cut, whatever the socket reports later;
        // a failed write is followed by the socket's 'error', which counts it.
        if (conn.lost || err) return
        conn.unsent--
        this.onProgress?.()
      },
    }
    this.conn = conn
    socket.setNoDelay(true)
    socket.on('error', (err) => this.lost(conn, err))
    socket.on('end', () => this.lost(conn))
    socket.on('close', () => this.lost(conn))
    socket.on('drain', () => this.pump())
    // Read and discard what the server sends, so that closing sends FIN, not RST.
    socket.resume()
    // Without a token check, the first bytes may show a server set up for TLS or a token: fail with why.
    if (!this.o.security?.auth)
      socket.once('data', (first: Buffer) => {
        const mismatch = plainServerProblem(socket, first, this.address)
        if (mismatch) socket.destroy(mismatch)
      })
    this.ctx.counters.connected = 1
    this.emitEvent('connect', { peer: conn.peer, message: `connected to ${conn.peer}` })
    this.pump()
  }

  /** Hand queued packets to the socket while it is below its highWaterMark; 'drain' calls again. */
  private pump(): void {
    const conn = this.conn
    if (!conn || this.pausing) return
    const { socket } = conn
    while (this.queue.length > 0 && socket.writableLength < socket.writableHighWaterMark) {
      const packet = this.queue.shift()!
      conn.unsent++
      this.ctx.counters.bytes += packetLength(packet)
      if (this.o.pause > 0 && Array.isArray(packet) && packet.length > 1) {
        writePacket(socket, packet[0]!)
        this.pausing = setTimeout(() => {
          this.pausing = null
          // A connection lost meanwhile has counted this packet as cut.
          if (!conn.lost) writePacket(socket, packet.slice(1), conn.sent)
          this.pump()
          this.releaseHeld()
        }, this.o.pause)
        return
      }
      writePacket(socket, packet, conn.sent)
    }
    this.onProgress?.()
    this.releaseHeld()
  }

  private lost(conn: Connection, err?: Error): void {
    if (conn.lost) return
    conn.lost = true
    conn.socket.destroy()
    if (this.pausing) clearTimeout(this.pausing)
    this.pausing = null
    // Packets the socket had not finished sending are cut: never resumed on the next connection.
    this.ctx.counters.drops += conn.unsent
    if (this.conn === conn) this.conn = null
    this.ctx.counters.connected = 0
    const reason = describeLoss(err)
    this.emitEvent('disconnect', { peer: conn.peer, reason, message: `disconnected from ${conn.peer} (${reason})` })
    // Refused (TLS, token) even as we close: what was sent was not taken.
    if (this.destroyed || (this.closing && !(err instanceof RefusedError))) return
    if (!this.o.reconnect || this.closing) {
      const text = err ? `connection to ${this.address} failed: ${err.message}` : `${this.address} closed the connection`
      this.destroy(new FramePipeError('ERR_NETWORK', text, { stage: this.ctx.name, cause: err }))
      return
    }
    if (this.ending && this.queue.length === 0) return this.onProgress?.()
    this.retry(`lost ${conn.peer} (${reason})`)
    this.onProgress?.()
    // A packet cut during its pause is gone: the next one may come in.
    this.releaseHeld()
  }

  private retry(reason: string): void {
    const delay = backoff(this.attempt++, this.o.retryMin, this.o.retryMax)
    this.emitEvent('retry', { peer: this.address, reason, delay, message: `${reason}; retrying in ${delay} ms` })
    this.retryTimer = setTimeout(() => this.connect(), delay)
  }

  /** End of stream: leftovers count as drops; FIN, then wait (bounded) for the server to close. */
  private close(deadline: number, callback: TransformCallback): void {
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = null
    this.dialing?.destroy()
    this.dialing = null
    this.ctx.counters.drops += this.queue.length
    this.queue.length = 0
    const conn = this.conn
    if (!conn) return callback()
    this.closing = true
    // The server normally answers our FIN at once; give it a moment even when linger is used up.
    const grace = Math.max(deadline - Date.now(), Math.min(this.o.linger, 250))
    this.lingerTimer = setTimeout(() => conn.socket.destroy(), grace)
    conn.socket.once('close', () => {
      if (this.lingerTimer) clearTimeout(this.lingerTimer)
      this.lingerTimer = null
      callback()
    })
    conn.socket.end()
  }

  private emitEvent(name: 'connect' | 'disconnect' | 'retry', event: ConnectionEvent): void {
    this.emit(name, event)
  }
}
