// Bytes from TCP clients that connect to us, one client at a time: like gst
// tcpserversrc and the seed servers, because two peers' bytes interleaved on
// one edge would corrupt every frame. Boundaries mark where a client's bytes
// start and end, so a client that leaves mid-frame costs one frame, not the
// stream, and a stage that finds a client's bytes bad (unprefix) can hang up
// on that client alone through its start marker. A client that sends nothing
// cannot hold the turn while others wait (idleTimeout).

import net, { type AddressInfo, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import type { Boundary } from '../../core/frame.js'
import { SourceOutlet } from '../../core/outlet.js'
import { formatDuration } from '../../core/spec.js'
import { ReadGate } from '../../core/read-gate.js'
import { TAKES_DEFRAMER, type Deframer, type StageContext } from '../../core/stage.js'
import { describeLoss, peerName } from '../socket.js'
import { StageServer } from '../server.js'
import { admittedAs, guard, turnAway, type Admitted, type ServerSecurity } from '../security.js'
import { plainMismatch } from '../auth.js'

export interface TcpServerSourceConfig {
  host: string
  port: number
  once: boolean
  maxWaiting: number
  /** Milliseconds; 0 = never. */
  idleTimeout: number
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
  /** Why we cut the connection (a fault found downstream, idle): its leave event says so. */
  cut?: string
  /** While waiting: its first bytes, read ahead to tell a client that sends from one that does not. */
  early?: Buffer
  /** It closed cleanly while waiting, after sending only `early` (all it had to say): served from that. */
  ended?: boolean
  /**
   * performance.now() when it was last found to have sent something (or
   * connected, or got its turn): the idle check compares `chunks` with
   * `seen`, so reading a chunk costs a count, not a clock read.
   */
  heard: number
  chunks: number
  seen: number
  /** While waiting: its listeners, removed when its turn comes. */
  waitListeners?: { data: (chunk: Buffer) => void; error: (err: Error) => void; close: () => void }
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
    resume: () => {
      const current = this.current
      // Called on every _read; only a socket the gate paused needs anything.
      if (!current?.socket.isPaused()) return
      // Time spent waiting for downstream is not the client's silence.
      current.heard = performance.now()
      current.socket.resume()
    },
  })
  private idleTimer: NodeJS.Timeout | null = null
  /** Bytes and Boundaries out, or frames when fused with the unprefix after it. */
  private readonly outlet = new SourceOutlet(this)
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
    ctx.counters.timeouts = 0
  }

  /** Fused with the unprefix after it: its parser runs here and frames are pushed, one stream crossing fewer per chunk. */
  [TAKES_DEFRAMER](deframer: Deframer): void {
    this.outlet.fuse(deframer)
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
    this.stopIdleTimer()
    // Its 'close' pushes the Boundary and ends the stream.
    if (this.current) this.current.socket.destroy()
    else this.outlet.end()
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
      if (this.o.idleTimeout > 0) {
        // A check a few times per timeout: a silent client is cut within about 1.25 × idleTimeout.
        this.idleTimer = setInterval(() => this.checkIdle(), Math.max(20, Math.min(1000, this.o.idleTimeout / 4)))
        this.idleTimer.unref()
      }
      return address
    })
  }

  override _read(): void {
    this.gate.read()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.stopIdleTimer()
    const sockets = this.waiting.splice(0).map((p) => p.socket)
    if (this.current) sockets.push(this.current.socket)
    this.current = null
    this.server.close(sockets)
    callback(err)
  }

  private accept(socket: Socket, who?: Admitted): void {
    const peer: Peer = { socket, peer: peerName(socket), who, heard: performance.now(), chunks: 0, seen: 0 }
    if (this.stopping || this.destroyed) {
      socket.destroy()
    } else if (!this.current) {
      this.serve(peer)
    } else if (this.waiting.length < this.o.maxWaiting) {
      this.wait(peer)
    } else {
      this.server.refuse(peer.peer, `${this.o.maxWaiting} clients already waiting`, socket)
    }
  }

  /**
   * Hold a client until its turn. Its first chunk (at most 64 KiB) is read
   * ahead and kept, then it is paused: TCP flow control holds the rest back,
   * and a client that has sent something is served before one that has not.
   */
  private wait(peer: Peer): void {
    const { socket } = peer
    const data = (chunk: Buffer) => {
      socket.off('data', data)
      socket.pause()
      peer.early = chunk
    }
    const error = (err: Error) => {
      peer.error = err
    }
    const close = () => {
      // Its FIN came with (or right after) its first chunk: that chunk is all it sent, and it still gets its turn.
      if (peer.early && !peer.error) peer.ended = true
      else this.dropWaiting(peer)
    }
    peer.waitListeners = { data, error, close }
    socket.on('data', data)
    socket.on('error', error)
    socket.on('close', close)
    this.waiting.push(peer)
    this.ctx.counters.waiting = this.waiting.length
    socket.resume()
  }

  private serve(peer: Peer): void {
    const { socket } = peer
    this.current = peer
    this.ctx.counters.clients = 1
    peer.heard = performance.now()
    const w = peer.waitListeners
    if (w) {
      socket.off('data', w.data)
      socket.off('error', w.error)
      socket.off('close', w.close)
      peer.waitListeners = undefined
    }
    socket.pause()
    socket.on('error', (err) => {
      peer.error = err
    })
    socket.on('close', () => this.leave(peer))
    // Without a token check, the first bytes may show a peer set up for TLS or a token: turn it away, say why.
    let unchecked = !this.o.security?.auth
    const take = (chunk: Buffer): void => {
      if (unchecked) {
        unchecked = false
        const mismatch = plainMismatch(chunk, 'client', peer.peer)
        if (mismatch) {
          peer.refused = mismatch.reason
          return turnAway(socket, mismatch.answer)
        }
      }
      if (peer.refused) return
      this.forward(chunk)
    }
    socket.on('data', (chunk: Buffer) => {
      peer.chunks++
      take(chunk)
    })
    this.server.client({ event: 'join', peer: peer.peer, reason: peer.who && admittedAs(this.o.security, peer.who) })
    const start: Boundary = { boundary: true, peer: peer.peer, reason: 'start', hangUp: (why) => this.cut(peer, why) }
    this.outlet.send(start)
    const early = peer.early
    peer.early = undefined
    if (early) take(early)
    if (peer.ended) return this.leave(peer)
    if (this.gate.open && this.current === peer) socket.resume()
  }

  private forward(chunk: Buffer): void {
    this.ctx.counters.frames++
    this.ctx.counters.bytes += chunk.length
    this.gate.pushed(this.outlet.send(chunk))
  }

  /** End a client's connection for `why` (its leave event says so); its end Boundary follows from 'close'. False when it was ended already. */
  private cut(peer: Peer, why: string): boolean {
    if (peer.cut !== undefined || peer.socket.destroyed) return false
    peer.cut = why
    peer.socket.destroy()
    return true
  }

  private leave(peer: Peer): void {
    if (this.current !== peer) return
    this.current = null
    this.ctx.counters.clients = 0
    const boundary: Boundary = { boundary: true, peer: peer.peer, reason: peer.error || peer.cut ? 'error' : 'end' }
    this.outlet.send(boundary)
    const reason = peer.refused ? `refused: ${peer.refused}` : (peer.cut ?? describeLoss(peer.error))
    this.server.client({ event: 'leave', peer: peer.peer, reason })
    // With no current client, stop() ends the stream.
    if (this.o.once || this.stopping) {
      if (this.stopping) this.outlet.end()
      else this.stop()
      return
    }
    const next = this.next()
    if (next) this.serve(next)
  }

  /** The next waiting client: the first that has sent something, else the first. */
  private next(): Peer | undefined {
    let i = this.waiting.findIndex((p) => p.early !== undefined)
    if (i < 0) i = 0
    const [next] = this.waiting.splice(i, 1)
    this.ctx.counters.waiting = this.waiting.length
    return next
  }

  /**
   * While others wait, a client that has sent nothing for idleTimeout loses
   * its turn (alone it may stay quiet); a waiting client that has sent
   * nothing that long loses its place.
   */
  private checkIdle(): void {
    if (this.waiting.length === 0) {
      // Keep the current client's clock fresh, so that it is judged on its silence from now on when one comes.
      if (this.current) this.current.heard = performance.now()
      return
    }
    const t = performance.now()
    const limit = this.o.idleTimeout
    const current = this.current
    if (current && current.chunks !== current.seen) {
      current.seen = current.chunks
      current.heard = t
    }
    // Paused by downstream: the silence is ours, not the client's.
    if (current && this.gate.open && t - current.heard >= limit) {
      if (this.cut(current, `sent nothing for ${formatDuration(limit)} while ${this.waiting.length} waited (idleTimeout)`))
        this.ctx.counters.timeouts++
    }
    for (const p of [...this.waiting]) {
      if (
        p.early === undefined &&
        t - p.heard >= limit &&
        this.cut(p, `sent nothing for ${formatDuration(limit)} while waiting (idleTimeout)`)
      ) {
        this.ctx.counters.timeouts++
      }
    }
  }

  private stopIdleTimer(): void {
    if (this.idleTimer) clearInterval(this.idleTimer)
    this.idleTimer = null
  }

  /** A waiting client closed or failed before its turn: it never joined, and its bytes (if any) are lost with it. */
  private dropWaiting(peer: Peer): void {
    const i = this.waiting.indexOf(peer)
    if (i < 0) return
    this.waiting.splice(i, 1)
    this.ctx.counters.waiting = this.waiting.length
    const reason = peer.cut ?? `${describeLoss(peer.error)} while waiting`
    this.server.client({ event: 'leave', peer: peer.peer, reason })
  }
}
