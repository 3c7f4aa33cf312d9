// Frames from UDP senders: frame-pipe's native datagrams (reassembled by
// frame id, acked) or seed 000's wires, whole (000a) and chunked (000b/c),
// answered with the seeds' reply. A transport with its own framing: it emits
// Frames, not bytes. The reply or ack goes out when the frame is handed
// downstream, so a sender that waits for it is paced by the pipeline.

import type { Socket } from 'node:dgram'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { networkError } from '../../core/errors.js'
import { makeFrame, now, saneTimestamp, type Frame } from '../../core/frame.js'
import { ReadGate } from '../../core/read-gate.js'
import { formatAddress } from '../socket.js'
import { serveMessages, type MessageEvent } from './messages.js'
import { NativeReassembler } from './reassembly.js'
import { peerKey, type Completed, type Receiver } from './receive.js'
import { ChunkedReceiver, WholeReceiver } from './seed.js'
import { bindUdp, closeQuietly, type UdpProto } from './socket.js'
import { throttle } from '../../core/warnings.js'
import { MAX_DATAGRAM } from './native.js'
import { isSignedData, signAck, udpKey, verifyDatagram } from './auth.js'
import { isCleanJpeg, isCompleteJpeg } from '../../wire/jpeg.js'
import type { StageContext } from '../../core/stage.js'

export interface UdpServerSourceConfig {
  host: string
  port: number
  proto: UdpProto
  reply: string
  msgPort: number
  maxFrameBytes: number
  timeout: number
  /** Take only native datagrams signed with this token, and sign acks (./auth.ts); '' = off. */
  token?: string
  /** Bytes the images in reassembly may announce in all. */
  maxPendingBytes: number
  /** native: a timestamp further than this from our clock is replaced by the arrival time; 0 = taken as sent. */
  maxClockSkew: number
  /** whole/chunked: how a received image is checked before it is delivered. */
  verify: SeedVerify
}

/**
 * markers: SOI…EOI, segments and restart markers in turn (isCompleteJpeg);
 * entropy: also every Huffman code of every block (isCleanJpeg); auto:
 * entropy for chunked (a datagram lost, repeated or moved inside an image is
 * otherwise invisible), markers for whole (one datagram is one image).
 */
export const SEED_VERIFY = ['auto', 'entropy', 'markers'] as const
export type SeedVerify = (typeof SEED_VERIFY)[number]

/** Complete frames held while downstream is not reading; the oldest is dropped beyond this (counted in drops and overflow). */
const READY_LIMIT = 4

interface Ready {
  frame: Frame
  done: Completed
}

export class UdpServerSource extends Readable {
  private readonly o: UdpServerSourceConfig
  private readonly ctx: StageContext
  private readonly receiver: Receiver
  private readonly reply: Buffer
  private readonly warn: (message: string) => void
  private socket: Socket | undefined
  private msgSocket: Socket | undefined
  private readonly ready: Ready[] = []
  private timer: NodeJS.Timeout | undefined
  /** Datagrams cannot be paused: complete frames wait in `ready` (bounded) while downstream is full. */
  private readonly gate = new ReadGate({ pause: () => undefined, resume: () => this.drain() })
  private stopping = false
  private nextSeq = 0
  /** token=: the key datagrams must be signed with. */
  private readonly key: Buffer | null
  private warnedSigned = false

  constructor(o: UdpServerSourceConfig, ctx: StageContext) {
    // Frames may be large: hold few on the readable side.
    super({ objectMode: true, highWaterMark: 2 })
    this.o = o
    this.ctx = ctx
    this.reply = Buffer.from(o.reply)
    this.warn = throttle((m) => this.emit('warning', m))
    const hooks = { counters: ctx.counters, warn: this.warn }
    const entropy = o.verify === 'entropy' || (o.verify === 'auto' && o.proto === 'chunked')
    const complete = entropy ? isCleanJpeg : isCompleteJpeg
    this.receiver =
      o.proto === 'native'
        ? new NativeReassembler({ maxFrameBytes: o.maxFrameBytes, timeout: o.timeout, maxPendingBytes: o.maxPendingBytes }, hooks)
        : o.proto === 'chunked'
          ? new ChunkedReceiver(
              { maxFrameBytes: o.maxFrameBytes, timeout: o.timeout, maxPendingBytes: o.maxPendingBytes, isComplete: complete },
              hooks,
            )
          : new WholeReceiver({ maxFrameBytes: Math.min(o.maxFrameBytes, MAX_DATAGRAM), isComplete: complete }, hooks)
    ctx.counters.overflow = 0
    ctx.counters.datagrams = 0
    this.key = o.token ? udpKey(o.token) : null
    if (this.key) ctx.counters.forged = 0
  }

  /** The bound image port once listening (port 0 picks one), else null. */
  address(): AddressInfo | null {
    return this.bound(this.socket)
  }

  /** The bound message port (msgPort), else null. */
  msgAddress(): AddressInfo | null {
    return this.bound(this.msgSocket)
  }

  /** End cleanly: stop receiving, drop (and count) images in progress, hand on frames already complete. */
  stop(): void {
    if (this.stopping || this.destroyed) return
    this.stopping = true
    this.receiver.flush()
    for (const r of this.ready.splice(0)) this.hand(r)
    this.closeSockets()
    this.push(null)
  }

  override _construct(callback: (error?: Error | null) => void): void {
    if (this.stopping) return callback()
    bindUdp(this.o.host, this.o.port, this.ctx.name, (err, socket) => {
      if (err || !socket) return callback(err)
      this.socket = socket
      if (this.stopping) {
        this.closeSockets()
        return callback()
      }
      socket.on('error', (e) => this.destroy(networkError(this.ctx.name, e, formatAddress(this.o.host, this.o.port))))
      socket.on('message', (d: Buffer, rinfo) => this.onDatagram(d, rinfo.address, rinfo.port))
      this.timer = setInterval(() => this.receiver.expire(performance.now()), Math.max(5, Math.min(this.o.timeout / 4, 250)))
      if (this.o.msgPort === 0) return this.listening(callback)
      bindUdp(this.o.host, this.o.msgPort, this.ctx.name, (err2, msg) => {
        if (err2 || !msg) return callback(err2)
        this.msgSocket = msg
        if (this.stopping) {
          this.closeSockets()
          return callback()
        }
        msg.on('error', (e) => this.destroy(networkError(this.ctx.name, e, formatAddress(this.o.host, this.o.msgPort))))
        serveMessages(msg, { counters: this.ctx.counters, warn: this.warn, message: (e) => this.emitMessage(e) })
        this.listening(callback)
      })
    })
  }

  override _read(): void {
    this.gate.read()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.closeSockets()
    this.ready.length = 0
    callback(err)
  }

  private listening(callback: () => void): void {
    callback()
    this.emit('listening', this.address())
  }

  private onDatagram(d: Buffer, address: string, port: number): void {
    if (this.stopping || this.destroyed) return
    this.ctx.counters.datagrams++
    if (this.key) {
      const verdict = verifyDatagram(d, this.key)
      if (verdict !== 'ok') {
        this.ctx.counters.forged++
        return this.warn(
          `dropped a datagram from ${formatAddress(address, port)}: ${verdict === 'unsigned' ? 'not signed (does the sender have token=?)' : 'its signature does not match our token (forged, or another token)'}`,
        )
      }
    } else if (!this.warnedSigned && this.o.proto === 'native' && isSignedData(d)) {
      this.warnedSigned = true
      this.warn(`${formatAddress(address, port)} signs its datagrams (token=), but this receiver has no token=: they are taken unchecked`)
    }
    const done = this.receiver.push(d, { address, port }, performance.now())
    if (!done) return
    const peer = peerKey(done.peer)
    const frame = done.meta
      ? makeFrame(done.data, { ...done.meta, timestamp: this.timestamp(done.meta.timestamp, peer), peer })
      : makeFrame(done.data, { format: 'jpeg', seq: this.nextSeq++ >>> 0, timestamp: now(), peer })
    if (this.ready.length >= READY_LIMIT) {
      const dropped = this.ready.shift()!
      this.ctx.counters.drops++
      this.ctx.counters.overflow++
      this.warn(`downstream is behind: dropped frame seq ${dropped.frame.seq} from ${peerKey(dropped.done.peer)}`)
      // A seed client has no timeout: without its reply it would wait forever. A native sender times out.
      if (!dropped.done.ack) this.answer(dropped.done)
    }
    this.ready.push({ frame, done })
    this.drain()
  }

  /** A sender's clock must not name and rotate our files: a timestamp far from ours is replaced by the arrival time. */
  private timestamp(sent: number, peer: string): number {
    if (this.o.maxClockSkew <= 0) return sent
    const arrival = now()
    const t = saneTimestamp(sent, arrival, this.o.maxClockSkew)
    if (t !== sent) {
      this.ctx.counters.badTimestamps = (this.ctx.counters.badTimestamps ?? 0) + 1
      this.warn(
        `frame from ${peer} carries a timestamp ${Number.isFinite(sent) ? `${Math.round((sent - arrival) / 1000)} s from our clock` : `that is not a time (${sent})`}, more than maxClockSkew: replaced by the arrival time (counted in badTimestamps)`,
      )
    }
    return t
  }

  private drain(): void {
    while (this.gate.open && this.ready.length > 0) this.gate.pushed(this.hand(this.ready.shift()!))
  }

  /** Push one frame downstream, then answer its sender. */
  private hand(r: Ready): boolean {
    this.ctx.counters.frames++
    this.ctx.counters.bytes += r.frame.data.length
    const more = this.push(r.frame)
    this.answer(r.done)
    return more
  }

  private answer(done: Completed): void {
    const message = done.ack ? (this.key ? signAck(done.ack, this.key) : done.ack) : this.reply
    if (message.length === 0 || !this.socket) return
    this.socket.send(message, done.peer.port, done.peer.address, (err) => {
      if (err) this.warn(`could not answer ${peerKey(done.peer)}: ${err.message}`)
    })
  }

  private emitMessage(event: MessageEvent): void {
    this.emit('message', event)
  }

  private bound(socket: Socket | undefined): AddressInfo | null {
    try {
      return socket ? socket.address() : null
    } catch (err) {
      // A closed socket has no address.
      if ((err as NodeJS.ErrnoException).code === 'ERR_SOCKET_DGRAM_NOT_RUNNING') return null
      throw err
    }
  }

  private closeSockets(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    closeQuietly(this.socket)
    closeQuietly(this.msgSocket)
    this.socket = this.msgSocket = undefined
  }
}
