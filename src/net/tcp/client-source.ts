// Bytes from a TCP server we connect to (seed 001's and 003's servers send
// frames to their client). The source only reads, apart from an optional
// greeting sent once per connection (seed 001's client says hello first).

import type { Socket } from 'node:net'
import { Readable } from 'node:stream'
import { FramePipeError } from '../../core/errors.js'
import type { Boundary } from '../../core/frame.js'
import { ReadGate } from '../../core/read-gate.js'
import { backoff, describeLoss, dial, formatAddress, peerName, type ConnectionEvent } from '../socket.js'
import { TAKES_DEFRAMER, type Deframer, type StageContext } from '../../core/stage.js'
import { SourceOutlet } from '../../core/outlet.js'
import { plainServerProblem, type ClientSecurity } from '../security.js'

export interface TcpClientSourceConfig {
  host: string
  port: number
  reconnect: boolean
  retryMin: number
  retryMax: number
  connectTimeout: number
  greeting: string
  /** TLS and the token check (src/net/security.ts); undefined: plain and tokenless. */
  security?: ClientSecurity
}

export class TcpClientSource extends Readable {
  private readonly o: TcpClientSourceConfig
  private readonly ctx: StageContext
  private readonly address: string
  private socket: Socket | null = null
  /** Name of the connected server, for the Boundary that stop() leaves. */
  private peer: string | null = null
  private retryTimer: NodeJS.Timeout | null = null
  private attempt = 0
  /** The last connection was cut for a fault in its bytes: the next connection does not reset the backoff. */
  private faulted = false
  /** The connection is paused while downstream is full. */
  private readonly gate = new ReadGate({
    pause: () => this.socket?.pause(),
    resume: () => this.socket?.resume(),
  })
  private stopping = false
  /** Bytes and Boundaries out, or frames when fused with the unprefix after it. */
  private readonly outlet = new SourceOutlet(this)

  constructor(o: TcpClientSourceConfig, ctx: StageContext) {
    // Chunks are at most 64 KiB: 16 of them bound the buffer to about 1 MiB.
    super({ objectMode: true, highWaterMark: 16 })
    this.o = o
    this.ctx = ctx
    this.address = formatAddress(o.host, o.port)
    ctx.counters.connected = 0
  }

  /**
   * End cleanly after the bytes already read. A connection cut here ends at
   * a Boundary, so that unprefix drops a frame cut in half (and says so)
   * instead of failing on it.
   */
  stop(): void {
    if (this.stopping || this.destroyed) return
    this.stopping = true
    const peer = this.socket ? this.peer : null
    this.release()
    if (peer) this.outlet.send({ boundary: true, peer, reason: 'end' } satisfies Boundary)
    this.outlet.end()
  }

  /** Fused with the unprefix after it: its parser runs here and frames are pushed, one stream crossing fewer per chunk. */
  [TAKES_DEFRAMER](deframer: Deframer): void {
    this.outlet.fuse(deframer)
  }

  override _construct(callback: (error?: Error | null) => void): void {
    if (this.stopping) return callback()
    if (this.o.reconnect) {
      callback()
      this.connect()
    } else {
      // Without reconnect the first attempt decides: connected, or one clear error.
      this.connect(callback)
    }
  }

  override _read(): void {
    this.gate.read()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.release()
    callback(err)
  }

  private release(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = null
    const socket = this.socket
    this.socket = null
    socket?.destroy()
  }

  private connect(first?: (error?: Error | null) => void): void {
    this.retryTimer = null
    const socket = dial(
      this.o.host,
      this.o.port,
      this.o.connectTimeout,
      this.ctx.name,
      (err) => {
        if (socket !== this.socket) return
        if (err) {
          this.socket = null
          // Destroyed while connecting: the stream is going away, the failure concerns nobody.
          if (first) return first(this.destroyed ? null : err)
          return this.retry(`connecting to ${this.address} failed (${describeLoss(err.cause as Error)})`)
        }
        if (!this.faulted) this.attempt = 0
        this.faulted = false
        this.connected(socket)
        first?.()
      },
      this.o.security,
    )
    this.socket = socket
  }

  private connected(socket: Socket): void {
    const peer = peerName(socket)
    this.peer = peer
    let error: Error | undefined
    socket.on('error', (err) => {
      error = err
    })
    socket.on('close', () => this.lost(socket, peer, error))
    // Without a token check, the first bytes may show a server set up for TLS or a token: fail with why.
    let unchecked = !this.o.security?.auth
    if (this.o.reconnect) {
      // Each connection is a peer of its own: a stage that finds its bytes bad (unprefix) hangs up, and we reconnect.
      const hangUp = (why: string) => {
        if (socket !== this.socket || socket.destroyed) return
        error = new Error(why)
        // A server that sends bad bytes on every connection is retried with growing delays.
        this.faulted = true
        socket.destroy()
      }
      this.outlet.send({ boundary: true, peer, reason: 'start', hangUp } satisfies Boundary)
    }
    socket.on('data', (chunk: Buffer) => {
      if (unchecked) {
        unchecked = false
        const mismatch = plainServerProblem(socket, chunk, this.address)
        if (mismatch) return void socket.destroy(mismatch)
      }
      this.ctx.counters.frames++
      this.ctx.counters.bytes += chunk.length
      this.gate.pushed(this.outlet.send(chunk))
    })
    if (!this.gate.open) socket.pause()
    if (this.o.greeting !== '') socket.write(this.o.greeting, 'utf8')
    this.ctx.counters.connected = 1
    this.emitEvent('connect', { peer, message: `connected to ${peer}` })
  }

  private lost(socket: Socket, peer: string, err: Error | undefined): void {
    if (socket !== this.socket) return
    this.socket = null
    this.ctx.counters.connected = 0
    const reason = describeLoss(err)
    this.emitEvent('disconnect', { peer, reason, message: `disconnected from ${peer} (${reason})` })
    if (!this.o.reconnect) {
      // The server closing is the end of its stream; unprefix reports a frame it cut short.
      if (err)
        this.destroy(
          new FramePipeError('ERR_NETWORK', `connection to ${this.address} failed: ${err.message}`, { stage: this.ctx.name, cause: err }),
        )
      else this.outlet.end()
      return
    }
    const boundary: Boundary = { boundary: true, peer, reason: err ? 'error' : 'end' }
    this.outlet.send(boundary)
    this.retry(`lost ${peer} (${reason})`)
  }

  private retry(reason: string): void {
    const delay = backoff(this.attempt++, this.o.retryMin, this.o.retryMax)
    this.emitEvent('retry', { peer: this.address, reason, delay, message: `${reason}; retrying in ${delay} ms` })
    this.retryTimer = setTimeout(() => this.connect(), delay)
  }

  private emitEvent(name: 'connect' | 'disconnect' | 'retry', event: ConnectionEvent): void {
    this.emit(name, event)
  }
}
