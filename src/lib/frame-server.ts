// The TCP server side shared by sinks that answer their clients' requests
// (cmd-server, snapshot-server): they take frames, keep the newest one, and
// write a frame to a client when that client's protocol says so. Each client
// has a small queue of whole packets: a slow client loses its oldest packets,
// it never slows the source or the other clients, and never gets half a frame.

import net, { type AddressInfo, type Server, type Socket } from 'node:net'
import { Transform, type TransformCallback } from 'node:stream'
import { FramePipeError, networkError } from '../errors.js'
import { isFrame, packetLength, type Frame, type Packet } from '../frame.js'
import { passOn, type StageContext } from '../stage.js'
import { describeRecord } from './headers.js'
import { closeAll, describeLoss, formatAddress, listen, peerName, type ClientEvent } from './net.js'
import { writePacket } from './write-packets.js'

export interface FrameServerOptions {
  host: string
  port: number
  maxQueue: number
  maxClients: number
  linger: number
}

export interface ServedClient {
  socket: Socket
  peer: string
  /** Whole packets not yet given to the socket, oldest first; at most maxQueue. */
  queue: Packet[]
  drops: number
  /** Packets handed to the socket. */
  sent: number
  gone: boolean
  /** We ended the connection (the client asked to close); what it sends now is ignored. */
  closing: boolean
}

export abstract class FrameServer<C extends ServedClient = ServedClient> extends Transform {
  protected readonly ctx: StageContext
  protected readonly clients = new Set<C>()
  /** The newest frame and its packet (header + payload), once one came. */
  protected latest: { frame: Frame; packet: Packet } | null = null
  private readonly so: FrameServerOptions
  private server: Server | undefined
  /** Every open socket, including clients that already left but have not closed yet. */
  private readonly sockets = new Set<Socket>()
  private pending: NodeJS.Immediate | null = null
  private onProgress: (() => void) | null = null
  private lingerTimer: NodeJS.Timeout | null = null

  constructor(o: FrameServerOptions, ctx: StageContext) {
    // Frames may be megabytes: hold few.
    super({ objectMode: true, highWaterMark: 2 })
    this.so = o
    this.ctx = ctx
    ctx.counters.clients = 0
  }

  /** The header and payload to send for `frame`, made once per frame. */
  protected abstract encode(frame: Frame): Packet | FramePipeError
  protected abstract newClient(base: ServedClient): C
  /** Bytes from a client: its requests or commands. */
  protected abstract onData(client: C, data: Buffer): void
  /** A new newest frame: serve whoever waits for one. */
  protected abstract onFrame(): void
  protected onLeave(_client: C): void {}
  /** The client's queue was handed to its socket as far as the socket takes it (after a send or a 'drain'). */
  protected onPumped(_client: C): void {}

  /** The bound address once listening (port 0 picks one), else null. */
  address(): AddressInfo | null {
    return (this.server?.address() as AddressInfo | null | undefined) ?? null
  }

  override _construct(callback: (error?: Error | null) => void): void {
    const server = net.createServer((socket) => this.accept(socket))
    this.server = server
    listen(server, this.so.host, this.so.port, this.ctx.name, (err, address) => {
      if (err) return callback(err)
      server.on('error', (e) => this.destroy(networkError(this.ctx.name, e, formatAddress(this.so.host, this.so.port))))
      callback()
      this.emit('listening', address)
    })
  }

  override _transform(frame: Frame, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!isFrame(frame)) {
      return callback(new FramePipeError('ERR_BAD_FRAME', `expected a Frame but received ${describeRecord(frame)}: ${this.ctx.name} takes frames and puts its own header on them`, { stage: this.ctx.name }))
    }
    const packet = this.encode(frame)
    if (packet instanceof FramePipeError) return callback(packet)
    this.latest = { frame, packet }
    this.ctx.counters.frames++
    this.onFrame()
    passOn(this, frame)
    // Never wait for a client; but when some are behind, let socket I/O run before the next frame.
    let backlog = false
    for (const c of this.clients) if (c.queue.length > 0) backlog = true
    if (backlog) this.pending = setImmediate(() => { this.pending = null; callback() })
    else callback()
  }

  override _flush(callback: TransformCallback): void {
    // Stop accepting; the close callback runs once the last client socket has closed too.
    let serverClosed = false
    let whenClosed: (() => void) | null = null
    this.server!.close(() => {
      serverClosed = true
      whenClosed?.()
    })
    const deadline = Date.now() + this.so.linger
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
    this.onProgress = () => { if ([...this.clients].every((c) => c.queue.length === 0)) finish() }
    this.lingerTimer = setTimeout(finish, this.so.linger)
    this.onProgress()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (this.pending) clearImmediate(this.pending)
    if (this.lingerTimer) clearTimeout(this.lingerTimer)
    this.pending = null
    this.lingerTimer = null
    this.onProgress = null
    this.latest = null
    this.clients.clear()
    closeAll(this.server, this.sockets)
    callback(err)
  }

  /** Queue a packet for one client: its oldest is dropped when the queue is full. */
  protected send(client: C, packet: Packet): void {
    if (client.gone || client.closing) return
    client.queue.push(packet)
    if (client.queue.length > this.so.maxQueue) {
      client.queue.shift()
      client.drops++
      this.ctx.counters.drops++
    }
    this.pump(client)
  }

  /** Close one client's connection after what the socket already holds; its queue is dropped. */
  protected closeClient(client: C): void {
    if (client.closing || client.gone) return
    client.closing = true
    client.drops += client.queue.length
    this.ctx.counters.drops += client.queue.length
    client.queue.length = 0
    client.socket.end()
    // A client that never answers our FIN is cut after linger.
    setTimeout(() => client.socket.destroy(), Math.max(this.so.linger, 250)).unref()
    this.onProgress?.()
  }

  protected warn(message: string): void {
    this.emit('warning', new FramePipeError('ERR_NETWORK', message, { stage: this.ctx.name }))
  }

  private accept(socket: Socket): void {
    const peer = peerName(socket)
    if (this.clients.size >= this.so.maxClients) {
      socket.destroy()
      this.emitClient({ event: 'leave', peer, reason: `refused: already ${this.clients.size} clients (maxClients)` })
      return
    }
    const client = this.newClient({ socket, peer, queue: [], drops: 0, sent: 0, gone: false, closing: false })
    this.sockets.add(socket)
    // A frame should leave now, not wait for the ACK of the previous one.
    socket.setNoDelay(true)
    socket.on('error', (err) => this.remove(client, describeLoss(err)))
    socket.on('end', () => this.remove(client, 'end'))
    socket.on('close', () => {
      this.sockets.delete(socket)
      this.remove(client, 'closed')
    })
    socket.on('drain', () => this.pump(client))
    socket.on('data', (data: Buffer) => {
      // After we ended the connection its bytes are read only so that closing sends FIN, not RST.
      if (!client.gone && !client.closing) this.onData(client, data)
    })
    this.clients.add(client)
    this.ctx.counters.clients = this.clients.size
    this.emitClient({ event: 'join', peer })
  }

  /** Hand queued packets to the socket while it is below its highWaterMark; 'drain' calls again. */
  private pump(client: C): void {
    const { socket, queue } = client
    while (queue.length > 0 && !client.gone && socket.writableLength < socket.writableHighWaterMark) {
      const packet = queue.shift()!
      this.ctx.counters.bytes += packetLength(packet)
      client.sent++
      writePacket(socket, packet)
    }
    this.onProgress?.()
    if (queue.length === 0 && !client.gone && !client.closing) this.onPumped(client)
  }

  private remove(client: C, reason: string): void {
    if (client.gone) return
    client.gone = true
    client.queue.length = 0
    this.clients.delete(client)
    this.ctx.counters.clients = this.clients.size
    if (reason !== 'end') client.socket.destroy()
    this.onLeave(client)
    this.emitClient({ event: 'leave', peer: client.peer, reason, drops: client.drops })
    this.onProgress?.()
  }

  /** FIN every client; destroy the sockets still open after a bounded wait. */
  private closeClients(deadline: number): void {
    for (const c of this.clients) {
      c.drops += c.queue.length
      this.ctx.counters.drops += c.queue.length
      c.queue.length = 0
      c.closing = true
      c.socket.end()
    }
    const grace = Math.max(deadline - Date.now(), Math.min(this.so.linger, 250))
    this.lingerTimer = setTimeout(() => closeAll(undefined, this.sockets), grace)
  }

  private emitClient(event: ClientEvent): void {
    this.emit('client', event)
  }
}
