// Seed 004's client role: register a UDP port with the server over TCP, then
// receive one frame per datagram and answer each with `continue`; finish with
// `end`. Unlike the original, the UDP socket is bound before the port is
// registered (no lost first frame), and a lost frame or reply is retried
// instead of waiting forever.

import dgram, { type RemoteInfo } from 'node:dgram'
import net, { type AddressInfo, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import { FramePipeError, networkError } from '../../core/errors.js'
import { makeFrame, now, type Frame } from '../../core/frame.js'
import { describeLoss, dial, formatAddress, peerName, type ConnectionEvent } from '../../net/socket.js'
import { CONTINUE, END, UdpOutbox, plainAddress } from './messages.js'
import type { StageContext } from '../../core/stage.js'
import { stageWarnings } from '../../core/warnings.js'

export interface RegClientConfig {
  host: string
  port: number
  udpPort: number
  timeout: number
  retries: number
  dedupe: boolean
  connectTimeout: number
}

/** After stop(), how long the UDP socket stays open for the one frame the server sends after the last `continue`. */
const MAX_LINGER = 500

export class RegClientSource extends Readable {
  private readonly o: RegClientConfig
  private readonly ctx: StageContext
  private readonly server: string
  private tcp: Socket | null = null
  private udp: UdpOutbox | null = null
  private udpBound: AddressInfo | null = null
  /** Frames are accepted only from the server's IP (its port is learnt from each frame). */
  private serverIp = ''
  /** Where the last frame came from: replies go there. */
  private source: RemoteInfo | null = null
  /** The reply to the last frame is owed: downstream is full, so it waits for _read (and the server waits with it). */
  private held = false
  /** A frame that came while held (a resend, or a newer frame); a newer one replaces it (counted in drops). */
  private parked: Frame | null = null
  private timer: NodeJS.Timeout | null = null
  private tries = 0
  private seq = 0
  private tcpClosed = false
  private stopping = false
  private endSent = false
  private lingerTimer: NodeJS.Timeout | null = null
  private lingerDone: (() => void) | null = null
  private lingering: Promise<void> | null = null
  private warnedStray = false
  /** Bytes of the last frame taken, to recognise a repeat. */
  private last: Buffer | null = null
  private readonly warn: ReturnType<typeof stageWarnings>

  constructor(o: RegClientConfig, ctx: StageContext) {
    // Datagrams are at most 64 KiB: 4 frames bound the buffer to 256 KiB.
    super({ objectMode: true, highWaterMark: 4 })
    this.o = o
    this.ctx = ctx
    this.server = formatAddress(o.host, o.port)
    this.warn = stageWarnings(this, ctx.name)
    Object.assign(ctx.counters, { connected: 0, resends: 0, extra: 0, strays: 0, repeats: 0 })
  }

  /** The bound UDP address once registered, else null. */
  udpAddress(): AddressInfo | null {
    return this.udpBound
  }

  /**
   * End cleanly: tell the server `end` (after a `continue` for the last frame
   * when that reply is still owed, as the original client does), deliver what
   * was received, and absorb the one frame the server sends after the last
   * `continue` without delivering it.
   */
  stop(): void {
    if (this.stopping || this.destroyed) return
    this.stopping = true
    this.clearTimer()
    if (this.parked) {
      this.push(this.parked)
      this.parked = null
    }
    if (this.source) {
      if (this.held) this.sendReply(CONTINUE, this.source)
      this.sendReply(END, this.source)
      this.endSent = true
    }
    // Without a frame yet the server's UDP port is unknown: the first datagram is answered with `end`.
    this.held = false
    this.linger()
    this.push(null)
  }

  override _construct(callback: (error?: Error | null) => void): void {
    if (this.stopping) return callback()
    const tcp = dial(this.o.host, this.o.port, this.o.connectTimeout, this.ctx.name, (err) => {
      if (err) {
        this.tcp = null
        return callback(err)
      }
      this.bindAndRegister(tcp, callback)
    })
    this.tcp = tcp
  }

  /** Bind first, then register: the server may send the first frame the moment it reads the port. */
  private bindAndRegister(tcp: Socket, callback: (error?: Error | null) => void): void {
    const local = tcp.localAddress ?? '127.0.0.1'
    const peer = peerName(tcp)
    this.serverIp = plainAddress(tcp.remoteAddress ?? this.o.host)
    // The protocol sends nothing on TCP; reading (and discarding) lets us notice a close.
    tcp.resume()
    tcp.on('error', (err) => this.registrationLost(peer, err))
    tcp.on('close', () => this.registrationLost(peer, undefined))
    const udp = dgram.createSocket(net.isIPv6(local) ? 'udp6' : 'udp4')
    this.udp = new UdpOutbox(udp)
    const onBindError = (err: Error) => callback(networkError(this.ctx.name, err, formatAddress(local, this.o.udpPort)))
    udp.once('error', onBindError)
    udp.bind(this.o.udpPort, local, () => {
      udp.off('error', onBindError)
      udp.on('error', (err) => this.destroy(networkError(this.ctx.name, err, 'udp socket')))
      udp.on('message', (msg, rinfo) => this.receive(msg, rinfo))
      this.udpBound = udp.address()
      const port = this.udpBound.port
      tcp.write(String(port), 'ascii')
      this.ctx.counters.connected = 1
      this.emitEvent('connect', { peer, message: `registered UDP port ${port} with ${peer}` })
      this.armTimer()
      callback()
    })
  }

  override _read(): void {
    if (!this.held || this.stopping) return
    this.held = false
    const parked = this.parked
    this.parked = null
    if (parked && !this.push(parked)) {
      this.held = true
      return
    }
    if (this.source) this.sendReply(CONTINUE, this.source)
    this.armTimer()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.clearTimer()
    // Torn down without stop() (an error, an abort): still say `end`, or the
    // original server's thread for us waits for a reply forever.
    if (!this.endSent && this.source) {
      this.endSent = true
      this.sendReply(END, this.source)
    }
    const release = () => {
      if (this.lingerTimer) clearTimeout(this.lingerTimer)
      this.lingerTimer = null
      this.tcp?.destroy()
      this.tcp = null
      // Replies still on their way (the `end` of stop(), the one owed on a destroy) go out first.
      const udp = this.udp
      this.udp = null
      if (udp)
        udp.close().then(
          () => callback(err),
          (closeErr: Error) => callback(err ?? closeErr),
        )
      else callback(err)
    }
    // A clean end: give the extra frame its moment (bounded), so it does not hit a closed port.
    if (this.lingering && !err) this.lingering.then(release)
    else release()
  }

  private receive(data: Buffer, rinfo: RemoteInfo): void {
    if (plainAddress(rinfo.address) !== this.serverIp) {
      this.ctx.counters.strays++
      if (!this.warnedStray) {
        this.warnedStray = true
        this.emit(
          'warning',
          new FramePipeError(
            'ERR_NETWORK',
            `ignoring datagrams from ${formatAddress(rinfo.address, rinfo.port)}: frames are taken from the server's address ${this.serverIp} only`,
            { stage: this.ctx.name },
          ),
        )
      }
      return
    }
    if (this.stopping) {
      if (!this.endSent) {
        this.sendReply(END, rinfo)
        this.endSent = true
      }
      this.ctx.counters.extra++
      this.lingerDone?.()
      return
    }
    this.source = rinfo
    this.tries = 0
    this.clearTimer()
    const frame = makeFrame(data, { seq: this.seq, timestamp: now(), peer: formatAddress(rinfo.address, rinfo.port) })
    this.ctx.counters.bytes += data.length
    if (frame.format === 'unknown') {
      // Not an image: drop it, but answer: the server waits for a reply to every datagram.
      this.ctx.counters.drops++
      // A server that sends nothing but garbage must not flood the log.
      this.warn(
        `datagram of ${data.length} bytes from ${formatAddress(rinfo.address, rinfo.port)} is not an image: dropped`,
        'ERR_BAD_FRAME',
      )
      if (!this.held) {
        this.sendReply(CONTINUE, rinfo)
        this.armTimer()
      }
      return
    }
    if (this.o.dedupe && this.last !== null && data.equals(this.last)) {
      // Our reply was lost and the server sent the frame again, or the network doubled it.
      this.ctx.counters.repeats++
      if (!this.held) {
        this.sendReply(CONTINUE, rinfo)
        this.armTimer()
      }
      return
    }
    this.last = data
    this.seq++
    this.ctx.counters.frames++
    if (this.held) {
      if (this.parked) this.ctx.counters.drops++
      this.parked = frame
      return
    }
    // The reply is owed until the frame is handed on; a stop() from inside
    // push() (a consumer that stops at this frame) then sends it before `end`.
    this.held = true
    const accepted = this.push(frame)
    if (this.stopping || !accepted || !this.held) return
    this.held = false
    this.sendReply(CONTINUE, rinfo)
    this.armTimer()
  }

  private sendReply(reply: Buffer, to: RemoteInfo): void {
    this.udp?.send(reply, to.port, to.address, (err) => {
      // Like a lost reply: the frame timeout sends it again.
      if (!this.destroyed) this.emit('warning', networkError(this.ctx.name, err, formatAddress(to.address, to.port)))
    })
  }

  private armTimer(): void {
    this.clearTimer()
    if (this.stopping) return
    this.timer = setTimeout(() => this.timedOut(), this.o.timeout)
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  private timedOut(): void {
    this.timer = null
    if (this.tries >= this.o.retries) {
      const waited = (this.tries + 1) * this.o.timeout
      if (this.tcpClosed) {
        // The server closed the registration and stopped sending: the end of its stream.
        this.emitEvent('disconnect', {
          peer: this.server,
          reason: 'end',
          message: `no frame for ${waited} ms after ${this.server} closed the registration: end of stream`,
        })
        this.stop()
        return
      }
      const since = this.source ? 'after the last reply' : 'since registering'
      this.destroy(
        new FramePipeError(
          'ERR_NETWORK',
          `no frame from ${this.server} for ${waited} ms ${since} (${this.tries + 1} × timeout ${this.o.timeout} ms)`,
          { stage: this.ctx.name },
        ),
      )
      return
    }
    this.tries++
    this.ctx.counters.resends++
    if (this.source) this.sendReply(CONTINUE, this.source)
    this.emitEvent('retry', {
      peer: this.server,
      delay: this.o.timeout,
      reason: 'no frame',
      message: `no frame for ${this.o.timeout} ms${this.source ? ', sent continue again' : ' since registering'} (${this.tries}/${this.o.retries})`,
    })
    this.armTimer()
  }

  /**
   * The original server closes a client's registration when the next client
   * registers (CPython drops the old connection object), yet goes on sending
   * frames: a close alone is not the end. It only turns a later silence into
   * a clean end instead of an error.
   */
  private registrationLost(peer: string, err: Error | undefined): void {
    if (this.tcpClosed) return
    this.tcpClosed = true
    this.ctx.counters.connected = 0
    if (this.stopping || this.destroyed) return
    const reason = describeLoss(err)
    this.emitEvent('disconnect', { peer, reason, message: `registration connection to ${peer} closed (${reason}); still receiving frames` })
  }

  private linger(): void {
    const wait = Math.min(this.o.timeout, MAX_LINGER)
    this.lingering = new Promise((resolve) => {
      this.lingerDone = () => {
        this.lingerDone = null
        resolve()
      }
      this.lingerTimer = setTimeout(() => this.lingerDone?.(), wait)
    })
  }

  private emitEvent(name: 'connect' | 'disconnect' | 'retry', event: ConnectionEvent): void {
    this.emit(name, event)
  }
}
