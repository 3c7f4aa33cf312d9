// Bytes from TCP clients that connect to us, one client at a time: like gst
// tcpserversrc and the seed servers, because two peers' bytes interleaved on
// one edge would corrupt every frame. A Boundary marks where a client's bytes
// end, so a client that leaves mid-frame costs one frame, not the stream.

import net, { type AddressInfo, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import type { Boundary } from '../../core/frame.js'
import { ReadGate } from '../../core/read-gate.js'
import type { StageContext } from '../../core/stage.js'
import { describeLoss, peerName } from '../socket.js'
import { StageServer } from '../server.js'
import { admittedAs, guard, turnAway, type Admitted, type ServerSecurity } from '../security.js'
import { plainMismatch } from '../auth.js'

export interface TcpServerSourceConfig {
  host: string
  port: number
  once: boolean
  maxWaiting: number
  /** TLS and the token check (src/net/security.ts); null: plain and tokenless. */
  security?: ServerSecurity | null
}

interface Peer {
  socket: Socket
  peer: string
  error?: Error
  who?: Admitted
  /** Turned away on its first bytes (a TLS or token-check peer at a plain, tokenless server): why. */
  refused?: string
}

export class TcpServerSource extends Readable {
  private readonly o: TcpServerSourceConfig
  private readonly ctx: StageContext
  private readonly server: StageServer
  private current: Peer | null = null
  private readonly waiting: Peer[] = []
  /** The current client's socket is paused while downstream is full. */
  private readonly gate = new ReadGate({
    pause: () => this.current?.socket.pause(),
    resume: () => this.current?.socket.resume(),
  })
  private listening = false
  private stopping = false

  constructor(o: TcpServerSourceConfig, ctx: StageContext) {
    // Chunks are at most 64 KiB: 16 of them bound the buffer to about 1 MiB.
    super({ objectMode: true, highWaterMark: 16 })
    this.o = o
    this.ctx = ctx
    this.server = new StageServer(this, ctx.name)
    ctx.counters.clients = 0
    ctx.counters.waiting = 0
  }

  /** The bound address once listening (port 0 picks one), else null. */
  address(): AddressInfo | null {
    return this.server.address()
  }

  /** End cleanly: stop accepting, close waiting clients, cut the current one at a Boundary after the bytes already read. */
  stop(): void {
    if (this.stopping || this.destroyed) return
    this.stopping = true
    // Not listening yet: _construct sees `stopping` and closes the server itself.
    if (this.listening) this.server.close(this.waiting.splice(0).map((p) => p.socket))
    this.ctx.counters.waiting = 0
    // Its 'close' pushes the Boundary and ends the stream.
    if (this.current) this.current.socket.destroy()
    else this.push(null)
  }

  override _construct(callback: (error?: Error | null) => void): void {
    if (this.stopping) return callback()
    // Waiting clients stay unread, so TCP flow control holds them back.
    const admit = guard(this.o.security ?? null, this.server, (socket, who) => this.accept(socket, who), { pause: true })
    const server = net.createServer({ pauseOnConnect: true }, admit)
    this.server.listen(server, this.o.host, this.o.port, callback, (address) => {
      // Stopped while the server was starting: nothing to announce.
      if (this.stopping) {
        server.close()
        return undefined
      }
      this.listening = true
      return address
    })
  }

  override _read(): void {
    this.gate.read()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const sockets = this.waiting.splice(0).map((p) => p.socket)
    if (this.current) sockets.push(this.current.socket)
    this.current = null
    this.server.close(sockets)
    callback(err)
  }

  private accept(socket: Socket, who?: Admitted): void {
    const peer: Peer = { socket, peer: peerName(socket), who }
    if (this.stopping || this.destroyed) {
      socket.destroy()
    } else if (!this.current) {
      this.serve(peer)
    } else if (this.waiting.length < this.o.maxWaiting) {
      socket.once('error', (err) => this.dropWaiting(peer, err))
      this.waiting.push(peer)
      this.ctx.counters.waiting = this.waiting.length
    } else {
      this.server.refuse(peer.peer, `${this.o.maxWaiting} clients already waiting`, socket)
    }
  }

  private serve(peer: Peer): void {
    const { socket } = peer
    this.current = peer
    this.ctx.counters.clients = 1
    socket.removeAllListeners('error')
    socket.on('error', (err) => {
      peer.error = err
    })
    socket.on('close', () => this.leave(peer))
    // Without a token check, the first bytes may show a peer set up for TLS or a token: turn it away, say why.
    let unchecked = !this.o.security?.auth
    socket.on('data', (chunk: Buffer) => {
      if (unchecked) {
        unchecked = false
        const mismatch = plainMismatch(chunk, 'client', peer.peer)
        if (mismatch) {
          peer.refused = mismatch.reason
          return turnAway(socket, mismatch.answer)
        }
      }
      if (peer.refused) return
      this.ctx.counters.frames++
      this.ctx.counters.bytes += chunk.length
      this.gate.pushed(this.push(chunk))
    })
    this.server.client({ event: 'join', peer: peer.peer, reason: peer.who && admittedAs(this.o.security, peer.who) })
    if (this.gate.open) socket.resume()
  }

  private leave(peer: Peer): void {
    if (this.current !== peer) return
    this.current = null
    this.ctx.counters.clients = 0
    const boundary: Boundary = { boundary: true, peer: peer.peer, reason: peer.error ? 'error' : 'end' }
    this.push(boundary)
    this.server.client({ event: 'leave', peer: peer.peer, reason: peer.refused ? `refused: ${peer.refused}` : describeLoss(peer.error) })
    // With no current client, stop() ends the stream.
    if (this.o.once || this.stopping) {
      if (this.stopping) this.push(null)
      else this.stop()
      return
    }
    const next = this.waiting.shift()
    this.ctx.counters.waiting = this.waiting.length
    if (next) this.serve(next)
  }

  /** A waiting client failed before its turn: it never joined, and its bytes (if any) are lost with it. */
  private dropWaiting(peer: Peer, err: Error): void {
    const i = this.waiting.indexOf(peer)
    if (i < 0) return
    this.waiting.splice(i, 1)
    this.ctx.counters.waiting = this.waiting.length
    this.server.client({ event: 'leave', peer: peer.peer, reason: `${describeLoss(err)} while waiting` })
  }
}
