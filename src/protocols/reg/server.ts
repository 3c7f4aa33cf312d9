// Seed 004's server role: clients register a UDP port over TCP, then each gets
// one frame per UDP datagram and answers every frame with `continue` (or `end`).
// Like the original, one UDP socket sends to every client; unlike it, replies
// are routed by their source address (one client's `end` never stops another),
// every wait has a timeout, and bad input costs one connection or one frame,
// never the server.

import dgram, { type RemoteInfo } from 'node:dgram'
import { mkdir, open, type FileHandle } from 'node:fs/promises'
import net, { type AddressInfo, type Socket } from 'node:net'
import { dirname } from 'node:path'
import { Transform, type TransformCallback } from 'node:stream'
import { FramePipeError, networkError } from '../../core/errors.js'
import { expectFrame } from '../../core/checks.js'
import { now, type Frame } from '../../core/frame.js'
import { describeLoss, formatAddress } from '../../net/socket.js'
import { StageServer } from '../../net/server.js'
import { MAX_DATAGRAM, UdpOutbox, isEnd, parseRegistration, plainAddress, serverLogLine } from './messages.js'
import { passOn, type StageContext } from '../../core/stage.js'
import { stageWarnings } from '../../core/warnings.js'

export interface RegServerConfig {
  host: string
  port: number
  log: string
  ackTimeout: number
  retries: number
  maxClients: number
  skip: boolean
  wait: number
  quiet: number
  registerTimeout: number
}

interface Client {
  /** `ip:port` of the client's UDP socket: replies are routed by it. */
  key: string
  /** For the log and events: IPv4 without the ::ffff: prefix. */
  ip: string
  /** Where datagrams go. */
  sendTo: string
  port: number
  tcp: Socket
  /** Generation of the last frame sent; -1 before the first. */
  lastGen: number
  /** A frame was sent and its reply has not come yet. */
  inFlight: boolean
  timer: NodeJS.Timeout | null
  /** Timeouts in a row. */
  tries: number
  /** The TCP registration connection closed: send nothing more, wait a moment for `end`. */
  closing: boolean
  /** Frames this client skipped because newer ones had arrived. */
  skipped: number
  gone: boolean
}

export class RegServerSink extends Transform {
  private readonly o: RegServerConfig
  private readonly ctx: StageContext
  private readonly server: StageServer
  private udp: UdpOutbox | undefined
  private udpBound: AddressInfo | null = null
  private log: FileHandle | undefined
  /** Log lines are appended one after the other; never rejects (a failure destroys the stage). */
  private logChain: Promise<void> = Promise.resolve()
  private readonly clients = new Map<string, Client>()
  private registering = 0
  private newest: { frame: Frame; gen: number } | null = null
  private gen = 0
  /** skip=false or wait: the write callback held until every client has been sent the newest frame, or until enough clients. */
  private held: (() => void) | null = null
  private started = false
  private stopping = false
  private readonly warn: ReturnType<typeof stageWarnings>

  constructor(o: RegServerConfig, ctx: StageContext) {
    // Frames are held for clients to come and ask: a deep buffer would only hold stale frames.
    super({ objectMode: true, highWaterMark: 1 })
    this.o = o
    this.ctx = ctx
    this.server = new StageServer(this, ctx.name)
    this.warn = stageWarnings(this, ctx.name)
    Object.assign(ctx.counters, { clients: 0, sent: 0, resends: 0, oversize: 0, refused: 0, lost: 0, strays: 0, late: 0 })
  }

  /** The TCP registration address once listening (port 0 picks one), else null. */
  address(): AddressInfo | null {
    return this.server.address()
  }

  /** The address frames are sent from, once bound. */
  udpAddress(): AddressInfo | null {
    return this.udpBound
  }

  override _construct(callback: (error?: Error | null) => void): void {
    this.openLog()
      .then(() => this.bindUdp())
      .then(() => {
        this.server.listen(
          net.createServer((socket) => this.accept(socket)),
          this.o.host,
          this.o.port,
          callback,
        )
      }, callback)
  }

  private async openLog(): Promise<void> {
    if (!this.o.log) return
    try {
      // The original dies on its first log write when week13/ is missing; we make it, and fail now if we cannot.
      await mkdir(dirname(this.o.log), { recursive: true })
      this.log = await open(this.o.log, 'a')
    } catch (err) {
      throw new FramePipeError('ERR_IO', `cannot open log '${this.o.log}': ${(err as Error).message}`, { stage: this.ctx.name, cause: err })
    }
  }

  private bindUdp(): Promise<void> {
    return new Promise((resolve, reject) => {
      const udp = dgram.createSocket(net.isIPv6(this.o.host) ? 'udp6' : 'udp4')
      this.udp = new UdpOutbox(udp)
      const onError = (err: Error) => reject(networkError(this.ctx.name, err, formatAddress(this.o.host, 0)))
      udp.once('error', onError)
      udp.bind(0, this.o.host, () => {
        udp.off('error', onError)
        udp.on('error', (err) => this.destroy(networkError(this.ctx.name, err, 'udp socket')))
        udp.on('message', (msg, rinfo) => this.reply(msg, rinfo))
        this.udpBound = udp.address()
        resolve()
      })
    })
  }

  override _transform(record: unknown, encoding: BufferEncoding, callback: TransformCallback): void {
    const frame = expectFrame(this.ctx.name, record, "reg-server does its own framing: remove 'prefix' before it, or insert unprefix")
    if (frame instanceof FramePipeError) return callback(frame)
    if (frame.data.length > MAX_DATAGRAM) {
      const n = ++this.ctx.counters.oversize
      this.ctx.counters.drops++
      // A camera set too large sends nothing but oversize frames: warn at the 1st, 2nd, 4th, 8th … only.
      if ((n & (n - 1)) === 0) {
        this.emit(
          'warning',
          new FramePipeError(
            'ERR_FRAME_TOO_LARGE',
            `frame ${frame.seq} is ${frame.data.length} bytes, more than one UDP datagram holds (${MAX_DATAGRAM}): skipped (${n} so far)`,
            { stage: this.ctx.name },
          ),
        )
      }
      return callback()
    }
    if (!this.started) {
      if (this.clients.size < this.o.wait) {
        this.held = () => this._transform(frame, encoding, callback)
        return
      }
      this.started = true
    }
    this.newest = { frame, gen: ++this.gen }
    this.ctx.counters.frames++
    for (const client of this.clients.values()) {
      if (!client.inFlight && !client.closing) this.send(client)
    }
    passOn(this, frame)
    if (this.o.skip || this.allSent()) return callback()
    this.held = () => callback()
  }

  override _flush(callback: TransformCallback): void {
    // Nobody may read a sink's readable side, so it may never be destroyed: release everything here.
    this.stopping = true
    for (const client of [...this.clients.values()]) this.dropClient(client, 'server stopped')
    this.server.close()
    // The last frames may still be on their way out of the socket.
    const udp = this.udp
    this.udp = undefined
    Promise.all([udp?.close(), this.closeLog()]).then(() => callback(), callback)
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.stopping = true
    this.held = null
    for (const client of this.clients.values()) {
      if (client.timer) clearTimeout(client.timer)
      client.gone = true
    }
    this.clients.clear()
    this.server.close()
    const udp = this.udp
    this.udp = undefined
    Promise.all([udp?.close(), this.closeLog()]).then(
      () => callback(err),
      (closeErr: Error) => callback(err ?? closeErr),
    )
  }

  private async closeLog(): Promise<void> {
    const log = this.log
    this.log = undefined
    await this.logChain
    await log?.close()
  }

  private writeLog(event: 'join' | 'exit', client: Client): void {
    const log = this.log
    if (!log) return
    const line = serverLogLine(event, client.ip, client.port, now())
    this.logChain = this.logChain
      .then(() => log.write(line))
      .then(
        () => undefined,
        (err: Error) => {
          this.destroy(
            new FramePipeError('ERR_IO', `cannot write log '${this.o.log}': ${err.message}`, { stage: this.ctx.name, cause: err }),
          )
        },
      )
  }

  // ---- registration (TCP) -------------------------------------------------

  private accept(socket: Socket): void {
    const remote = socket.remoteAddress ?? '127.0.0.1'
    const peer = formatAddress(plainAddress(remote), socket.remotePort ?? 0)
    if (this.stopping || this.clients.size + this.registering >= this.o.maxClients) {
      socket.destroy()
      this.refuse(peer, `already ${this.clients.size + this.registering} clients (maxClients)`)
      return
    }
    // Every TCP socket, registered or not, so that _destroy can close them.
    this.server.track(socket)
    this.registering++
    let text = ''
    let done = false
    let client: Client | undefined
    let loss: Error | undefined
    let quietTimer: NodeJS.Timeout | undefined
    const conclude = (): void => {
      done = true
      this.registering--
      clearTimeout(quietTimer)
      clearTimeout(deadline)
    }
    const finish = (final: boolean): void => {
      if (done) return
      const r = parseRegistration(text, final)
      if (r === undefined) {
        // Digits that may go on: give a split read a moment to arrive.
        clearTimeout(quietTimer)
        quietTimer = setTimeout(() => finish(true), this.o.quiet)
        return
      }
      conclude()
      if ('error' in r) {
        socket.destroy()
        this.refuse(peer, r.error)
        return
      }
      client = this.register(socket, remote, r.port)
    }
    const deadline = setTimeout(() => {
      if (done) return
      if (text.trim() !== '') return finish(true)
      conclude()
      socket.destroy()
      this.refuse(peer, `no port number within ${this.o.registerTimeout} ms`)
    }, this.o.registerTimeout)
    socket.on('data', (chunk: Buffer) => {
      // After registration nothing more is expected; reading on lets us see the close.
      if (done) return
      text += chunk.toString('latin1')
      finish(false)
    })
    socket.on('end', () => finish(true))
    // 'close' follows every error; the error only names the reason.
    socket.on('error', (err) => {
      loss = err
    })
    socket.on('close', () => {
      if (!done) {
        conclude()
        if (!this.stopping) this.refuse(peer, `connection closed before a port number (${describeLoss(loss)})`)
        return
      }
      if (client) this.registrationClosed(client, describeLoss(loss))
    })
  }

  private refuse(peer: string, reason: string): void {
    this.ctx.counters.refused++
    // A flood of bad registrations must not become a flood of log lines.
    this.warn(`registration from ${peer} refused: ${reason}`, 'ERR_BAD_HEADER')
    this.server.refuse(peer, reason)
  }

  private register(tcp: Socket, remote: string, port: number): Client {
    const ip = plainAddress(remote)
    const key = formatAddress(ip, port)
    const old = this.clients.get(key)
    if (old) this.dropClient(old, 'replaced by a new registration')
    // A udp6 socket reaches an IPv4 peer at its mapped address (::ffff:a.b.c.d).
    const sendTo = net.isIPv6(this.o.host) ? remote : ip
    const client: Client = {
      key,
      ip,
      sendTo,
      port,
      tcp,
      lastGen: -1,
      inFlight: false,
      timer: null,
      tries: 0,
      closing: false,
      skipped: 0,
      gone: false,
    }
    this.clients.set(key, client)
    this.ctx.counters.clients = this.clients.size
    this.writeLog('join', client)
    this.server.client({ event: 'join', peer: key })
    if (this.held && !this.started && this.clients.size >= this.o.wait) {
      const release = this.held
      this.held = null
      release()
    } else if (this.newest) {
      this.send(client)
    }
    return client
  }

  /**
   * The original ignores the TCP connection after registration; a closed one
   * here means the client is gone. It may still be about to send `end`
   * (the original client exits right after sending it), so wait ackTimeout
   * for that, sending nothing more, then drop it.
   */
  private registrationClosed(client: Client, why: string): void {
    if (client.gone || client.closing) return
    client.closing = true
    client.inFlight = false
    if (client.timer) clearTimeout(client.timer)
    client.timer = setTimeout(() => this.dropClient(client, `registration connection closed (${why})`), this.o.ackTimeout)
    this.releaseIfSent()
  }

  // ---- frames and replies (UDP) -------------------------------------------

  /** Send the newest frame to one client as one datagram and wait for its reply. */
  private send(client: Client, again = false): void {
    const newest = this.newest
    if (!newest || !this.udp || this.stopping) return
    if (!again && newest.gen <= client.lastGen) return
    if (client.lastGen >= 0 && newest.gen > client.lastGen + 1) {
      const skipped = newest.gen - client.lastGen - 1
      client.skipped += skipped
      this.ctx.counters.drops += skipped
    }
    const data = newest.frame.data
    client.lastGen = newest.gen
    client.inFlight = true
    this.ctx.counters.sent++
    this.ctx.counters.bytes += data.length
    this.udp.send(data, client.port, client.sendTo, (err) => {
      // A failed send is like a lost datagram: the ack timer sends again.
      if (!client.gone) this.emit('warning', networkError(this.ctx.name, err, client.key))
    })
    if (client.timer) clearTimeout(client.timer)
    client.timer = setTimeout(() => this.timedOut(client), this.o.ackTimeout)
    this.releaseIfSent()
  }

  private timedOut(client: Client): void {
    client.timer = null
    if (client.gone) return
    client.tries++
    if (client.tries > this.o.retries) {
      this.ctx.counters.lost++
      this.dropClient(client, `no reply to ${client.tries} frames in a row (ackTimeout ${this.o.ackTimeout} ms)`)
      return
    }
    this.ctx.counters.resends++
    this.send(client, true)
  }

  private reply(msg: Buffer, rinfo: RemoteInfo): void {
    const client = this.clients.get(formatAddress(plainAddress(rinfo.address), rinfo.port))
    if (!client) {
      this.ctx.counters.strays++
      return
    }
    if (isEnd(msg)) {
      this.dropClient(client, 'end')
      return
    }
    // Anything else means continue, as in the original. A reply with no frame
    // in flight (a duplicate, or one that came after a resend) asks for nothing.
    if (!client.inFlight || client.closing) {
      this.ctx.counters.late++
      return
    }
    if (client.timer) clearTimeout(client.timer)
    client.timer = null
    client.inFlight = false
    client.tries = 0
    this.send(client)
  }

  private dropClient(client: Client, reason: string): void {
    if (client.gone) return
    client.gone = true
    if (client.timer) clearTimeout(client.timer)
    client.timer = null
    this.clients.delete(client.key)
    this.ctx.counters.clients = this.clients.size
    client.tcp.destroy()
    this.writeLog('exit', client)
    this.server.client({ event: 'leave', peer: client.key, reason, drops: client.skipped })
    this.releaseIfSent()
  }

  /** skip=false: every client still here has been sent the newest frame. */
  private allSent(): boolean {
    const gen = this.newest?.gen ?? 0
    for (const c of this.clients.values()) {
      if (!c.closing && c.lastGen < gen) return false
    }
    return true
  }

  private releaseIfSent(): void {
    if (!this.held || !this.started || !this.allSent()) return
    const release = this.held
    this.held = null
    release()
  }
}
