// Send frames over UDP: frame-pipe's native datagrams, or seed 000's whole
// (000a) and chunked (000b/c) wires. A transport with its own framing: it
// takes Frames. Sending is paced by acknowledgements like the seeds' clients,
// which wait for `get message!!!` before the next image, but with a window
// and a timeout: a lost reply costs ackTimeout, never the rest of the run.

import type { Socket } from 'node:dgram'
import { Transform, type TransformCallback } from 'node:stream'
import { randomInt } from 'node:crypto'
import { FramePipeError, networkError } from '../../core/errors.js'
import { expectFrame } from '../../core/checks.js'
import type { Frame } from '../../core/frame.js'
import { formatAddress } from '../socket.js'
import { MessageSender } from './messages.js'
import { encodeFrame, MAX_DATAGRAM, parseDatagram } from './native.js'
import { seedChunks } from './seed.js'
import { closeQuietly, connectUdp, type UdpProto } from './socket.js'
import { throttle } from '../../core/warnings.js'
import { SendWindow } from './window.js'
import { SIGNED_DATA_HEADER_BYTES, signData, udpKey, verifyDatagram } from './auth.js'
import { passOn, type StageContext } from '../../core/stage.js'

export interface UdpClientSinkConfig {
  host: string
  port: number
  proto: UdpProto
  ack: 'reply' | 'none'
  window: number
  whenFull: 'skip' | 'wait'
  ackTimeout: number
  mtu: number
  msgPort: number
  message: string
  msgInterval: number
  /** Sign every native datagram, and take only signed acks (./auth.ts); '' = off. */
  token?: string
}

/** The seed server json.loads `message`: anything else is refused at once. */
export function checkMessage(message: string, stage: string): void {
  try {
    JSON.parse(message)
  } catch (err) {
    throw new FramePipeError(
      'ERR_INVALID_OPTION',
      `message must be JSON (the seed server json.loads it) but received '${message}': ${(err as Error).message}`,
      { stage },
    )
  }
}

/** Datagrams handed to the socket per turn of the event loop, so a receiver (even in this process) can drain between bursts. */
const BURST = 32

interface Job {
  frame: Frame
  datagrams: Array<Buffer | Buffer[]>
  id: number
  /** The pipeline's write callback, called once the frame is out. */
  held?: TransformCallback
}

export class UdpClientSink extends Transform {
  private readonly o: UdpClientSinkConfig
  private readonly ctx: StageContext
  private readonly address: string
  private readonly warn: (message: string) => void
  private readonly window: SendWindow<Job> | null
  /** Native: this sender's stream id, so a restarted sender starts afresh at the receiver. */
  private readonly stream = randomInt(2 ** 32)
  private nextId = 0
  private socket: Socket | undefined
  private msgSocket: Socket | undefined
  private messages: MessageSender | undefined
  /** Jobs to send, one frame's datagrams at a time (interleaved chunks would break the seed wires). */
  private readonly outbox: Job[] = []
  private sending = false
  private timer: NodeJS.Timeout | null = null
  private burst: NodeJS.Immediate | null = null
  private resumeTimer: NodeJS.Immediate | null = null
  private flushed: TransformCallback | null = null
  /** token=: the signing key. */
  private readonly key: Buffer | null

  constructor(o: UdpClientSinkConfig, ctx: StageContext) {
    super({ objectMode: true, highWaterMark: 2 })
    this.o = o
    this.ctx = ctx
    this.address = formatAddress(o.host, o.port)
    this.warn = throttle((m) => this.emit('warning', m))
    this.window = o.ack === 'reply' ? new SendWindow<Job>(o.window, o.ackTimeout) : null
    for (const name of ['acked', 'unacked', 'lateAcks', 'oversize', 'refused', 'garbage', 'inFlight']) ctx.counters[name] = 0
    this.key = o.token ? udpKey(o.token) : null
    if (this.key) ctx.counters.forged = 0
  }

  override _construct(callback: (error?: Error | null) => void): void {
    connectUdp(this.o.host, this.o.port, this.ctx.name, (err, socket) => {
      if (err || !socket) return callback(err)
      this.socket = socket
      socket.on('error', (e) => this.socketError(e, this.address))
      socket.on('message', (d: Buffer) => this.onReply(d))
      if (this.o.msgPort === 0) return callback()
      const msgAddress = formatAddress(this.o.host, this.o.msgPort)
      connectUdp(this.o.host, this.o.msgPort, this.ctx.name, (err2, msg) => {
        if (err2 || !msg) return callback(err2)
        this.msgSocket = msg
        msg.on('error', (e) => this.socketError(e, msgAddress))
        this.messages = new MessageSender(
          msg,
          { message: Buffer.from(this.o.message), interval: this.o.msgInterval, timeout: this.o.ackTimeout },
          { counters: this.ctx.counters, warn: this.warn },
        )
        this.messages.start()
        callback()
      })
    })
  }

  override _transform(record: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    const chunk = expectFrame(this.ctx.name, record, "udp-client does its own framing: remove 'prefix' before it, or insert unprefix")
    if (chunk instanceof FramePipeError) return callback(chunk)
    const job = this.makeJob(chunk)
    if (job instanceof FramePipeError) return callback(job)
    if (!job) return callback()
    const w = this.window
    if (!w || !w.full) {
      job.held = callback
      return this.launch(job)
    }
    if (this.o.whenFull === 'wait') {
      job.held = callback
      w.park(job)
      return
    }
    if (w.park(job)) this.ctx.counters.drops++
    callback()
  }

  override _flush(callback: TransformCallback): void {
    // Whatever is parked goes out when a slot frees; every flight ends by ack or ackTimeout.
    this.flushed = callback
    this.checkFlushed()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.shutdown()
    this.outbox.length = 0
    callback(err)
  }

  /** The datagrams for `frame`, or null when it cannot go on this wire (dropped, counted, warned). */
  private makeJob(frame: Frame): Job | FramePipeError | null {
    // The id is given when the frame is sent (launch).
    const id = 0
    if (this.o.proto === 'whole') {
      if (frame.data.length > MAX_DATAGRAM) {
        this.oversize(
          `frame seq ${frame.seq} is ${frame.data.length} bytes, more than one UDP datagram holds (${MAX_DATAGRAM}); dropped (use proto=chunked or native, or a lower jpeg quality)`,
        )
        return null
      }
      return { frame, datagrams: [frame.data], id }
    }
    if (this.o.proto === 'chunked') return { frame, datagrams: seedChunks(frame.data), id }
    const datagrams = encodeFrame(frame, this.stream, id, this.o.mtu, this.ctx.name, this.key ? SIGNED_DATA_HEADER_BYTES : undefined)
    if (datagrams instanceof FramePipeError) return datagrams
    return { frame, datagrams, id }
  }

  /** Take a window slot and queue the frame's datagrams. */
  private launch(job: Job): void {
    // Ids follow the order frames are sent, not offered: a frame skipped while parked leaves no gap at the receiver.
    job.id = this.nextId
    this.nextId = (this.nextId + 1) >>> 0
    if (this.o.proto === 'native') {
      for (const d of job.datagrams) {
        const [header, payload] = d as Buffer[]
        header!.writeUInt32BE(job.id, 12)
        // Signed once the id is in: the tag covers it.
        if (this.key) signData(header!, payload!, this.key)
      }
    }
    this.window?.open(job, job.id)
    this.outbox.push(job)
    this.pump()
  }

  private pump(): void {
    if (this.sending || this.destroyed) return
    const job = this.outbox.shift()
    if (!job) return this.checkFlushed()
    this.sending = true
    this.sendFrom(job, 0)
  }

  private sendFrom(job: Job, start: number): void {
    const socket = this.socket
    if (!socket || this.destroyed) return
    const end = Math.min(job.datagrams.length, start + BURST)
    let failed: Error | null = null
    let left = end - start
    for (let i = start; i < end; i++) {
      socket.send(job.datagrams[i]!, (err) => {
        if (err) failed ??= err
        if (--left > 0) return
        if (failed) return this.sent(job, failed)
        if (end < job.datagrams.length)
          this.burst = setImmediate(() => {
            this.burst = null
            this.sendFrom(job, end)
          })
        else this.sent(job, null)
      })
    }
  }

  private sent(job: Job, err: Error | null): void {
    this.sending = false
    if (err) {
      // EMSGSIZE (a host limit below 65507, e.g. macOS 9216), ECONNREFUSED (an ICMP error from an
      // earlier datagram, reported by this send): lose the frame, not the pipeline.
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EMSGSIZE') {
        this.oversize(
          `frame seq ${job.frame.seq} (${job.frame.data.length} bytes): ${err.message}; dropped (this host's datagram limit is lower)`,
        )
      } else {
        this.ctx.counters.drops++
        if (code === 'ECONNREFUSED') this.refused(this.address)
        else this.warn(`frame seq ${job.frame.seq} could not be sent to ${this.address}: ${err.message}`)
      }
      this.window?.cancel(job.id)
    } else {
      this.ctx.counters.frames++
      this.ctx.counters.bytes += job.frame.data.length
      this.window?.arm(job.id, performance.now())
      passOn(this, job.frame)
    }
    this.afterChange()
    const held = job.held
    job.held = undefined
    // Node runs send callbacks on nextTick when the kernel took the datagrams at once: calling the
    // pipeline back directly would chain frame after frame without ever yielding to I/O and timers
    // (a receiver in this process would starve). One turn of the event loop per frame.
    if (held)
      this.resumeTimer = setImmediate(() => {
        this.resumeTimer = null
        held()
      })
    this.pump()
  }

  private onReply(d: Buffer): void {
    const w = this.window
    if (!w) return
    if (this.o.proto === 'native') {
      if (this.key && verifyDatagram(d, this.key) !== 'ok') {
        this.ctx.counters.forged++
        this.warn(`ignored an unsigned or forged ack from ${this.address}: does the receiver have the same token=?`)
        return
      }
      const p = parseDatagram(d)
      if (p.kind !== 'ack' || p.stream !== this.stream >>> 0) {
        this.ctx.counters.garbage++
        this.warn(
          `ignored a datagram of ${d.length} bytes from ${this.address}: ${p.kind === 'bad' ? p.reason : p.kind === 'ack' ? 'an ack for another sender' : 'not an ack'}`,
        )
        return
      }
      const r = w.ackId(p.id)
      if (!r) {
        this.ctx.counters.lateAcks++
        return
      }
      this.ctx.counters.acked++
      // Sent before the acked one and still unanswered: the receiver has given them up.
      this.ctx.counters.unacked += r.older.length
    } else {
      if (!w.ackOldest()) {
        this.ctx.counters.lateAcks++
        return
      }
      this.ctx.counters.acked++
      this.emit('reply', d.toString('utf8'))
    }
    this.afterChange()
  }

  private onDeadline(): void {
    this.timer = null
    const w = this.window
    if (!w) return
    const expired = w.expire(performance.now())
    if (expired.length > 0) {
      this.ctx.counters.unacked += expired.length
      this.warn(
        `no reply from ${this.address} within ${this.o.ackTimeout} ms for frame seq ${expired[expired.length - 1]!.frame.seq}; moving on`,
      )
    }
    this.afterChange()
  }

  /** A slot may have freed or a deadline moved: send what is parked, re-arm the timer, maybe finish. */
  private afterChange(): void {
    const w = this.window
    if (w) {
      for (let job = w.unpark(); job; job = w.unpark()) this.launch(job)
      this.ctx.counters.inFlight = w.inFlight
      if (this.timer) clearTimeout(this.timer)
      this.timer = null
      const deadline = w.nextDeadline()
      if (deadline !== undefined) this.timer = setTimeout(() => this.onDeadline(), Math.max(0, deadline - performance.now()))
    }
    this.checkFlushed()
  }

  private checkFlushed(): void {
    if (!this.flushed || this.sending || this.outbox.length > 0 || (this.window && !this.window.idle)) return
    const callback = this.flushed
    this.flushed = null
    this.shutdown()
    callback()
  }

  private oversize(message: string): void {
    this.ctx.counters.drops++
    this.ctx.counters.oversize++
    this.warn(message)
  }

  private socketError(err: Error, address: string): void {
    // A connected UDP socket learns from ICMP that nobody listens: not fatal, a server may come.
    if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') return this.refused(address)
    this.destroy(networkError(this.ctx.name, err, address))
  }

  private refused(address: string): void {
    this.ctx.counters.refused++
    this.warn(`nobody is listening at ${address} (ICMP port unreachable); datagrams are lost until a receiver binds it`)
  }

  private shutdown(): void {
    if (this.timer) clearTimeout(this.timer)
    if (this.burst) clearImmediate(this.burst)
    if (this.resumeTimer) clearImmediate(this.resumeTimer)
    this.timer = this.burst = this.resumeTimer = null
    this.messages?.stop()
    closeQuietly(this.socket)
    closeQuietly(this.msgSocket)
    this.socket = this.msgSocket = undefined
  }
}
