// Seed 003's client side: connect to a camera server that takes
// one-character commands, and read the [4-byte BE length][JPEG] images it
// sends. Works against the original Python server and against cmd-server.
// The original server takes each recv() as one command, so commands are sent
// one per write with a gap between them; the images are read by a parser
// (short reads of the header are fine) whose maxFrameBytes turns the text the
// original injects into its image stream into a clear error, not an allocation.

import type { Socket } from 'node:net'
import { Readable } from 'node:stream'
import { FramePipeError } from '../../core/errors.js'
import type { Frame } from '../../core/frame.js'
import { ReadGate } from '../../core/read-gate.js'
import { FrameParser, TextInStreamError } from '../../wire/length-parser.js'
import { Pacer } from '../../core/pacer.js'
import { dial, formatAddress, peerName, type ConnectionEvent } from '../../net/socket.js'
import { formatDuration } from '../../core/spec.js'
import type { StageContext } from '../../core/stage.js'
import { plainServerProblem, type ClientSecurity } from '../../net/security.js'

export const CMD_CLIENT_MODES = ['stream', 'snapshot'] as const
export type CmdClientMode = (typeof CMD_CLIENT_MODES)[number]

export interface CmdClientConfig {
  host: string
  port: number
  mode: CmdClientMode
  every: number
  count: number
  timeout: number
  cmdGap: number
  maxFrameBytes: number
  connectTimeout: number
  /** TLS (src/net/security.ts); undefined: plain. */
  security?: ClientSecurity
}

type Phase = 'starting' | 'streaming' | 'idle' | 'requesting' | 'closing' | 'ended'

export class CmdClient extends Readable {
  private readonly o: CmdClientConfig
  private readonly ctx: StageContext
  private readonly address: string
  private readonly parser: FrameParser
  private readonly pacer: Pacer
  private socket: Socket | null = null
  private phase: Phase = 'starting'
  private delivered = 0
  private readonly gate = new ReadGate({
    pause: () => {
      if (this.phase === 'streaming') {
        // Downstream is full: TCP holds the server back; no timeout while we are the slow one.
        this.socket?.pause()
        this.disarm()
      }
    },
    resume: () => {
      if (this.phase === 'streaming') {
        this.socket?.resume()
        this.arm()
      } else if (this.phase === 'idle') {
        this.scheduleRequest()
      }
    },
  })
  private watchdog: NodeJS.Timeout | null = null
  private requestTimer: NodeJS.Timeout | null = null
  private gapTimer: NodeJS.Timeout | null = null
  private closeTimer: NodeJS.Timeout | null = null
  /** Commands go out one at a time, at least cmdGap apart. */
  private commands: Promise<void> = Promise.resolve()
  private lastCommand = -Infinity

  constructor(o: CmdClientConfig, ctx: StageContext) {
    // Images may be megabytes: hold few.
    super({ objectMode: true, highWaterMark: 2 })
    this.o = o
    this.ctx = ctx
    this.address = formatAddress(o.host, o.port)
    this.pacer = new Pacer(o.every > 0 ? 1000 / o.every : 0)
    this.parser = new FrameParser({
      header: 'u32be',
      maxFrameBytes: o.maxFrameBytes,
      stage: ctx.name,
      counters: ctx.counters,
      onFrame: (frame) => this.onFrame(frame),
      onWarning: (err) => this.emit('warning', err),
    })
    ctx.counters.connected = 0
  }

  /** End cleanly: tell the server ('q' when streaming, then '2'), close, end the stream. */
  stop(): void {
    if (this.destroyed || this.phase === 'closing' || this.phase === 'ended') return
    if (this.phase === 'starting') {
      // Not connected yet: nothing to tell the server.
      this.phase = 'ended'
      this.push(null)
      return
    }
    this.finish()
  }

  override _construct(callback: (error?: Error | null) => void): void {
    const socket = dial(
      this.o.host,
      this.o.port,
      this.o.connectTimeout,
      this.ctx.name,
      (err) => {
        // Destroyed while connecting: the stream is going away, the failure concerns nobody.
        if (err) return callback(this.destroyed || this.phase === 'ended' ? null : err)
        if (this.destroyed || this.phase === 'ended') {
          socket.destroy()
          return callback()
        }
        this.connected(socket)
        callback()
      },
      this.o.security,
    )
    this.socket = socket
  }

  override _read(): void {
    this.gate.read()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.phase = 'ended'
    for (const timer of [this.watchdog, this.requestTimer, this.gapTimer, this.closeTimer]) if (timer) clearTimeout(timer)
    this.watchdog = this.requestTimer = this.gapTimer = this.closeTimer = null
    this.socket?.destroy()
    this.socket = null
    this.parser.release()
    callback(err)
  }

  private connected(socket: Socket): void {
    const peer = peerName(socket)
    // Frames carry their server: a sink drops (and counts) one it cannot take instead of failing.
    this.parser.peer = peer
    // Each command leaves as its own segment, now.
    socket.setNoDelay(true)
    // Plain, the first bytes may show a server set up for TLS: fail with why.
    let unchecked = !this.o.security?.tls
    socket.on('data', (chunk: Buffer) => {
      if (unchecked) {
        unchecked = false
        const mismatch = plainServerProblem(socket, chunk, this.address)
        if (mismatch) return void socket.destroy(mismatch)
      }
      this.onData(chunk)
    })
    socket.on('error', (err) => {
      // While closing, a reset is only a rougher close: 'close' follows.
      if (this.phase !== 'closing')
        this.fail(
          new FramePipeError('ERR_NETWORK', `connection to ${this.address} failed: ${err.message}`, { stage: this.ctx.name, cause: err }),
        )
    })
    socket.on('end', () => this.onEnd())
    socket.on('close', () => {
      this.ctx.counters.connected = 0
      if (this.phase === 'closing') this.endStream()
    })
    this.ctx.counters.connected = 1
    this.emit('connect', { peer, message: `connected to ${peer}` } satisfies ConnectionEvent)
    if (this.o.mode === 'stream') {
      // '3' alone, not '3' then '0' as the original client does: sent back to
      // back they often reach the original server in one read, which it takes
      // as one unknown command, ignoring both (and writing 'Unknown command'
      // into the image stream). '3' alone starts the stream.
      this.phase = 'streaming'
      void this.command('3')
      this.arm()
    } else {
      this.phase = 'idle'
      this.scheduleRequest()
    }
  }

  private onData(chunk: Buffer): void {
    if (this.phase === 'closing' || this.phase === 'ended') return
    if (this.phase === 'streaming') this.arm()
    const err = this.parser.feed(chunk)
    if (err) this.fail(err instanceof TextInStreamError ? explainText(err) : err)
  }

  private onFrame(frame: Frame): void {
    if (this.phase === 'streaming') {
      this.deliver(frame)
    } else if (this.phase === 'requesting') {
      this.disarm()
      this.phase = 'idle'
      void this.command('1')
      this.deliver(frame)
      if (this.phase === 'idle' && this.gate.open) this.scheduleRequest()
    } else if (this.phase !== 'closing' && this.phase !== 'ended') {
      // An image nobody asked for (a server that streams in snapshot mode): not delivered.
      this.ctx.counters.drops++
    }
  }

  private deliver(frame: Frame): void {
    this.delivered++
    this.gate.pushed(this.push(frame))
    if (this.o.count > 0 && this.delivered >= this.o.count) this.finish()
  }

  private scheduleRequest(): void {
    if (this.requestTimer || this.phase !== 'idle') return
    this.requestTimer = setTimeout(() => {
      this.requestTimer = null
      if (this.phase !== 'idle') return
      this.pacer.tick()
      this.phase = 'requesting'
      void this.command('0').then(() => {
        if (this.phase === 'requesting') this.arm()
      })
    }, this.pacer.wait())
  }

  /** The server closed its side. */
  private onEnd(): void {
    if (this.phase === 'closing' || this.phase === 'ended') return
    const err = this.parser.end()
    if (err) return this.fail(err)
    if (this.phase === 'requesting' || this.o.mode === 'snapshot') {
      return this.fail(
        new FramePipeError(
          'ERR_NETWORK',
          `${this.address} closed the connection${this.phase === 'requesting' ? ' before sending the image asked for' : ''}`,
          { stage: this.ctx.name },
        ),
      )
    }
    // Stream mode: the server ending at an image boundary is the end of its stream.
    this.emit('disconnect', {
      peer: this.address,
      reason: 'end',
      message: `${this.address} closed the connection`,
    } satisfies ConnectionEvent)
    this.endStream()
  }

  /** Count reached or stop(): stream mode says 'q', then '2' (gap between), closes and ends. */
  private finish(): void {
    const wasStreaming = this.phase === 'streaming'
    this.phase = 'closing'
    this.disarm()
    if (this.requestTimer) clearTimeout(this.requestTimer)
    this.requestTimer = null
    // Images still in flight are read and discarded, so that our close is a FIN, not an RST.
    this.socket?.resume()
    if (wasStreaming) void this.command('q')
    void this.command('2').then(() => {
      const socket = this.socket
      if (!socket || this.destroyed || this.phase !== 'closing') return
      if (socket.destroyed) return this.endStream()
      // The server closes on '2'; one that does not is cut after the timeout. 'close' ends the stream.
      this.closeTimer = setTimeout(() => socket.destroy(), this.o.timeout)
      socket.end()
    })
  }

  private endStream(): void {
    if (this.phase === 'ended' || this.destroyed) return
    this.phase = 'ended'
    this.disarm()
    if (this.closeTimer) clearTimeout(this.closeTimer)
    this.closeTimer = null
    this.push(null)
  }

  /** Send one command byte in its own write, at least cmdGap after the previous one. */
  private command(c: string): Promise<void> {
    const next = this.commands.then(
      () =>
        new Promise<void>((resolve) => {
          const send = () => {
            this.gapTimer = null
            const socket = this.socket
            if (socket && !socket.destroyed && !this.destroyed) socket.write(c, 'latin1')
            this.lastCommand = performance.now()
            resolve()
          }
          const wait = this.lastCommand + this.o.cmdGap - performance.now()
          if (wait > 0) this.gapTimer = setTimeout(send, wait)
          else send()
        }),
    )
    this.commands = next
    return next
  }

  private arm(): void {
    this.disarm()
    this.watchdog = setTimeout(() => {
      this.watchdog = null
      this.fail(
        new FramePipeError('ERR_NETWORK', `no image from ${this.address} within ${formatDuration(this.o.timeout)}`, {
          stage: this.ctx.name,
        }),
      )
    }, this.o.timeout)
  }

  private disarm(): void {
    if (this.watchdog) clearTimeout(this.watchdog)
    this.watchdog = null
  }

  private fail(err: Error): void {
    if (this.destroyed || this.phase === 'ended') return
    this.phase = 'ended'
    this.destroy(err)
  }
}

/** The original server answers a command it did not understand with text in the image stream. */
function explainText(err: TextInStreamError): TextInStreamError {
  err.message += ` (seed 003's server answers a command it could not read, e.g. two that reached it in one read, with 'Unknown command'; a larger cmdGap keeps commands apart)`
  return err
}
