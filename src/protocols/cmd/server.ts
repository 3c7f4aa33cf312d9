// Seed 003's camera server, compatible with its client: each client sends
// one-character commands and gets [length header][JPEG] images back.
//   '0' one image (the newest frame; the next single image waits for '1')
//   '1' confirm the single image   '2' close this connection
//   '3' stream every frame from now on   'q' stop streaming
// Unlike the original, commands are parsed one byte at a time (TCP merges
// '3''0' into one read, which the original ignores as one unknown command),
// state is per connection (the original's is global to all clients), an
// unknown byte is logged and never written into the image stream, and header
// and JPEG go out in one write.

import { FramePipeError } from '../../core/errors.js'
import type { Frame, Packet } from '../../core/frame.js'
import { FrameServer, type FrameServerOptions, type ServedClient } from '../frame-server.js'
import { encodeHeader, hex, type FixedHeaderFormat } from '../../wire/headers.js'
import type { StageContext } from '../../core/stage.js'

export interface CmdServerConfig {
  host: string
  port: number
  header: FixedHeaderFormat
  maxQueue: number
  maxClients: number
  linger: number
  /** TLS (src/net/security.ts); null: plain. */
  security?: FrameServerOptions['security']
  sendTimeout: number
  idleTimeout: number
}

interface CmdClient extends ServedClient {
  streaming: boolean
  /** '0' came: one image is due as soon as it may be sent. */
  wantsOne: boolean
  /** A single image was sent and '1' has not come yet. */
  awaitingConfirm: boolean
  /** For the FPS line: images sent at the last report, and when. */
  fpsSent: number
  fpsSince: number
}

/** What the FPS log line is emitted as: `{ peer, fps, message: 'FPS: 29.9 (127.0.0.1:53712)' }`. */
export interface FpsEvent {
  peer: string
  fps: number
  message: string
}

const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d])

export class CmdServer extends FrameServer<CmdClient> {
  private readonly header: FixedHeaderFormat
  private fpsTimer: NodeJS.Timeout | null = null

  constructor(o: CmdServerConfig, ctx: StageContext) {
    super(o, ctx)
    this.header = o.header
  }

  override _construct(callback: (error?: Error | null) => void): void {
    super._construct((err) => {
      // Like the original, once a second while images go out: `FPS: <n>`.
      if (!err) this.fpsTimer = setInterval(() => this.reportFps(), 1000).unref()
      callback(err)
    })
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (this.fpsTimer) clearInterval(this.fpsTimer)
    this.fpsTimer = null
    super._destroy(err, callback)
  }

  protected encode(frame: Frame): Packet | FramePipeError {
    const header = encodeHeader(this.header, frame, false, this.ctx.name)
    return header instanceof FramePipeError ? header : [header, frame.data]
  }

  protected newClient(base: ServedClient): CmdClient {
    return { ...base, streaming: false, wantsOne: false, awaitingConfirm: false, fpsSent: 0, fpsSince: performance.now() }
  }

  /** Waiting for a command: not streaming and no image asked for (an image sent and not confirmed counts as waiting). */
  protected awaitsClient(client: CmdClient): boolean {
    return !client.streaming && !client.wantsOne
  }

  protected onData(client: CmdClient, data: Buffer): void {
    let unknown: number[] | undefined
    for (const byte of data) {
      if (client.closing) break
      switch (byte) {
        case 0x30: // '0'
          // The original ignores '0' while streaming: every frame goes out anyway.
          if (!client.streaming) {
            client.wantsOne = true
            this.serveOne(client)
          }
          break
        case 0x31: // '1'
          // A stray '1' (no image outstanding) confirms nothing ahead of time, unlike the original's global flag.
          client.awaitingConfirm = false
          this.serveOne(client)
          break
        case 0x32: // '2'
          this.closeClient(client)
          break
        case 0x33: // '3'
          // Streaming answers a pending '0' too.
          client.streaming = true
          client.wantsOne = false
          break
        case 0x71: // 'q'
          client.streaming = false
          break
        default:
          if (!WHITESPACE.has(byte)) (unknown ??= []).push(byte)
      }
    }
    if (unknown) {
      const n = unknown.length
      this.warn(
        `ignored ${n} unknown command byte${n === 1 ? '' : 's'} from ${client.peer}: ${hex(Buffer.from(unknown.slice(0, 16)))}${n > 16 ? ' …' : ''} (commands are 0 1 2 3 q)`,
      )
    }
  }

  protected onFrame(): void {
    const packet = this.latest!.packet
    for (const client of this.clients) {
      if (client.streaming) this.send(client, packet)
      else this.serveOne(client)
    }
  }

  /** Send the single image that '0' asked for, once there is a frame and the previous single image was confirmed. */
  private serveOne(client: CmdClient): void {
    if (!client.wantsOne || client.awaitingConfirm || client.streaming || !this.latest) return
    client.wantsOne = false
    client.awaitingConfirm = true
    this.send(client, this.latest.packet)
  }

  private reportFps(): void {
    const t = performance.now()
    for (const client of this.clients) {
      const sent = client.sent - client.fpsSent
      const elapsed = (t - client.fpsSince) / 1000
      client.fpsSent = client.sent
      client.fpsSince = t
      if (sent === 0) continue
      const fps = Math.round((sent / elapsed) * 10) / 10
      this.emit('info', { peer: client.peer, fps, message: `FPS: ${fps} (${client.peer})` } satisfies FpsEvent)
    }
  }
}
