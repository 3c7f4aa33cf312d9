// Serve the byte stream to every TCP client that connects (seed 001's and
// 003's servers, many viewers at once). Each client has its own small queue of
// whole packets: a slow client loses its oldest packets, it never slows the
// source or the other clients, and it never receives a packet cut in half.

import net, { type AddressInfo, type Server, type Socket } from 'node:net'
import { Transform, type TransformCallback } from 'node:stream'
import { networkError } from '../errors.js'
import { isBoundary, packetLength, type ByteChunk, type Packet } from '../frame.js'
import { closeAll, describeLoss, formatAddress, listen, peerName, type ClientEvent } from '../lib/net.js'
import { notBytes, writePacket } from '../lib/write-packets.js'
import { defineStage } from '../spec.js'
import { passOn, stageFactory, type StageContext } from '../stage.js'

export interface TcpServerSinkOptions {
  host?: string
  port?: number
  maxQueue?: number
  maxClients?: number
  wait?: number
  linger?: number
}

export const spec = defineStage<TcpServerSinkOptions, TcpServerSink>({
  name: 'tcp-server',
  kind: 'sink',
  input: 'bytes',
  output: 'bytes',
  description: 'Serve the byte stream to every TCP client that connects',
  passes: 'each packet once it is queued to every client',
  options: {
    host: { type: 'string', default: '127.0.0.1', doc: 'Address to listen on; 0.0.0.0 accepts other machines' },
    port: { type: 'int', min: 0, max: 65535, default: 9000, doc: 'Port to listen on; 0 picks a free one (see the listening event)' },
    maxQueue: {
      type: 'int', min: 1, default: 8,
      doc: 'Packets queued per client; when a slow client\'s queue is full its oldest packet is dropped (counted in drops)',
    },
    maxClients: { type: 'int', min: 1, default: 64, doc: 'Clients served at once; more connections are closed and logged' },
    wait: {
      type: 'int', min: 0, default: 0,
      doc: 'Hold the first packet (backpressure) until this many clients are connected; 0: packets with no client are discarded',
    },
    linger: { type: 'duration', min: 0, default: 2000, doc: 'At the end, how long to wait for clients to receive their queues before closing' },
  },
  create(o, ctx) {
    return new TcpServerSink(o, ctx)
  },
})

export const tcpServer = stageFactory(spec)

interface Client {
  socket: Socket
  peer: string
  /** Whole packets not yet given to the socket, oldest first; at most maxQueue. */
  queue: Packet[]
  drops: number
  gone: boolean
}

export class TcpServerSink extends Transform {
  private readonly o: Required<TcpServerSinkOptions>
  private readonly ctx: StageContext
  private server: Server | undefined
  private readonly clients = new Set<Client>()
  /** Every open socket, including clients that already left but have not closed yet. */
  private readonly sockets = new Set<Socket>()
  /** The first packet, held until `wait` clients are connected. */
  private held: (() => void) | null = null
  private started = false
  private pending: NodeJS.Immediate | null = null
  /** Called on any progress while _flush waits for queues to drain. */
  private onProgress: (() => void) | null = null
  private lingerTimer: NodeJS.Timeout | null = null

  constructor(o: Required<TcpServerSinkOptions>, ctx: StageContext) {
    // Packets may be whole frames: hold few.
    super({ objectMode: true, highWaterMark: 2 })
    this.o = o
    this.ctx = ctx
    ctx.counters.clients = 0
  }

  /** The bound address once listening (port 0 picks one), else null. */
  address(): AddressInfo | null {
    return (this.server?.address() as AddressInfo | null | undefined) ?? null
  }

  override _construct(callback: (error?: Error | null) => void): void {
    const server = net.createServer((socket) => this.accept(socket))
    this.server = server
    listen(server, this.o.host, this.o.port, this.ctx.name, (err, address) => {
      if (err) return callback(err)
      server.on('error', (e) => this.destroy(networkError(this.ctx.name, e, formatAddress(this.o.host, this.o.port))))
      callback()
      this.emit('listening', address)
    })
  }

  override _transform(chunk: ByteChunk, encoding: BufferEncoding, callback: TransformCallback): void {
    if (isBoundary(chunk)) {
      passOn(this, chunk)
      return callback()
    }
    const bad = notBytes(chunk, this.ctx.name)
    if (bad) return callback(bad)
    if (!this.started) {
      if (this.clients.size < this.o.wait) {
        this.held = () => this._transform(chunk, encoding, callback)
        return
      }
      this.started = true
    }
    this.ctx.counters.frames++
    let backlog = false
    for (const client of this.clients) {
      this.offer(client, chunk)
      if (client.queue.length > 0) backlog = true
    }
    passOn(this, chunk)
    // Never wait for a client; but when some are behind, let socket I/O run
    // before the next packet, so that clients which keep up are not starved
    // by a source that produces faster than one event-loop turn.
    if (backlog) this.pending = setImmediate(() => { this.pending = null; callback() })
    else callback()
  }

  override _flush(callback: TransformCallback): void {
    // Stop accepting. The server's close callback runs once the last client socket has closed too.
    let serverClosed = false
    let whenClosed: (() => void) | null = null
    this.server!.close(() => {
      serverClosed = true
      whenClosed?.()
    })
    const deadline = Date.now() + this.o.linger
    const finish = () => {
      this.onProgress = null
      if (this.lingerTimer) clearTimeout(this.lingerTimer)
      this.closeClients(deadline)
      whenClosed = () => {
        if (this.lingerTimer) clearTimeout(this.lingerTimer)
        this.lingerTimer = null
        callback()
      }
      if (serverClosed) whenClosed()
    }
    this.onProgress = () => { if (this.drained()) finish() }
    this.lingerTimer = setTimeout(finish, this.o.linger)
    this.onProgress()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (this.pending) clearImmediate(this.pending)
    if (this.lingerTimer) clearTimeout(this.lingerTimer)
    this.pending = null
    this.lingerTimer = null
    this.onProgress = null
    this.held = null
    this.clients.clear()
    closeAll(this.server, this.sockets)
    callback(err)
  }

  private accept(socket: Socket): void {
    const peer = peerName(socket)
    if (this.clients.size >= this.o.maxClients) {
      socket.destroy()
      this.emitClient({ event: 'leave', peer, reason: `refused: already ${this.clients.size} clients (maxClients)` })
      return
    }
    const client: Client = { socket, peer, queue: [], drops: 0, gone: false }
    this.sockets.add(socket)
    // A camera frame should leave now, not wait for the ACK of the previous one.
    socket.setNoDelay(true)
    socket.on('error', (err) => this.remove(client, describeLoss(err)))
    socket.on('end', () => this.remove(client, 'end'))
    socket.on('close', () => {
      this.sockets.delete(socket)
      this.remove(client, 'closed')
    })
    socket.on('drain', () => this.pump(client))
    // Read and discard what clients send (seed 001's greeting): unread bytes
    // would make our close an RST, which can destroy data the client has not read.
    socket.resume()
    this.clients.add(client)
    this.ctx.counters.clients = this.clients.size
    this.emitClient({ event: 'join', peer })
    if (this.held && this.clients.size >= this.o.wait) {
      const release = this.held
      this.held = null
      release()
    }
  }

  /** Queue a packet for one client: drop its oldest when the queue is full, then write what the socket takes. */
  private offer(client: Client, packet: Packet): void {
    client.queue.push(packet)
    if (client.queue.length > this.o.maxQueue) {
      client.queue.shift()
      client.drops++
      this.ctx.counters.drops++
    }
    this.pump(client)
  }

  /** Hand queued packets to the socket while it is below its highWaterMark; 'drain' calls again. */
  private pump(client: Client): void {
    const { socket, queue } = client
    while (queue.length > 0 && !client.gone && socket.writableLength < socket.writableHighWaterMark) {
      const packet = queue.shift()!
      this.ctx.counters.bytes += packetLength(packet)
      writePacket(socket, packet)
    }
    this.onProgress?.()
  }

  private remove(client: Client, reason: string): void {
    if (client.gone) return
    client.gone = true
    client.queue.length = 0
    this.clients.delete(client)
    this.ctx.counters.clients = this.clients.size
    if (reason !== 'end') client.socket.destroy()
    this.emitClient({ event: 'leave', peer: client.peer, reason, drops: client.drops })
    this.onProgress?.()
  }

  /** Every queue handed to its socket; what a socket still buffers goes out before the FIN of end(). */
  private drained(): boolean {
    for (const c of this.clients) {
      if (c.queue.length > 0) return false
    }
    return true
  }

  /** FIN every client; destroy the sockets still open after a bounded wait. */
  private closeClients(deadline: number): void {
    for (const c of this.clients) {
      // Packets that did not make it within linger.
      c.drops += c.queue.length
      this.ctx.counters.drops += c.queue.length
      c.queue.length = 0
      c.socket.end()
    }
    // Clients normally answer our FIN at once; give them a moment even when linger is used up.
    const grace = Math.max(deadline - Date.now(), Math.min(this.o.linger, 250))
    this.lingerTimer = setTimeout(() => closeAll(undefined, this.sockets), grace)
  }

  private emitClient(event: ClientEvent): void {
    this.emit('client', event)
  }
}
