// Request/reply for frames: a client asks for the newest frame when it wants
// one, instead of taking a stream it must keep up with (a dashboard, a
// monitor that checks a camera once a minute). The wire protocol:
//   client → server: one byte 'G' (0x47) per request; requests may be pipelined
//   server → client: per request, the newest frame as a native header (40
//                    bytes: "FRMP", seq, timestamp, size, format; see unprefix
//                    header=native) followed by the payload. With no frame
//                    yet, the reply waits for the first one.
// Anything else from a client (CR and LF aside) closes its connection.

import { FramePipeError } from '../../core/errors.js'
import type { Frame, Packet } from '../../core/frame.js'
import { FrameServer, type FrameServerOptions, type ServedClient } from '../frame-server.js'
import { encodeHeader, hex } from '../../wire/headers.js'
import type { StageContext } from '../../core/stage.js'
import { MAX_PENDING, SNAPSHOT_REQUEST } from './messages.js'

export interface SnapshotServerConfig {
  host: string
  port: number
  checksum: boolean
  maxClients: number
  linger: number
  /** TLS and the token check (src/net/security.ts); null: plain and tokenless. */
  security?: FrameServerOptions['security']
  sendTimeout: number
  idleTimeout: number
}

interface SnapshotClient extends ServedClient {
  /** Requests not yet answered. */
  pending: number
}

export class SnapshotServer extends FrameServer<SnapshotClient> {
  private readonly checksum: boolean

  constructor(o: SnapshotServerConfig, ctx: StageContext) {
    // One reply at a time in a client's queue (see serve): the queue bound is never reached.
    super({ ...o, maxQueue: 1 }, ctx)
    this.checksum = o.checksum
    ctx.counters.requests = 0
  }

  protected encode(frame: Frame): Packet | FramePipeError {
    const header = encodeHeader('native', frame, this.checksum, this.ctx.name)
    return header instanceof FramePipeError ? header : [header, frame.data]
  }

  protected newClient(base: ServedClient): SnapshotClient {
    return { ...base, pending: 0 }
  }

  /** No request unanswered and nothing queued: waiting for the next 'G'. */
  protected awaitsClient(client: SnapshotClient): boolean {
    return client.pending === 0 && client.queue.length === 0
  }

  protected onData(client: SnapshotClient, data: Buffer): void {
    for (let i = 0; i < data.length; i++) {
      const byte = data[i]!
      if (byte === SNAPSHOT_REQUEST) {
        client.pending++
        this.ctx.counters.requests++
      } else if (byte !== 0x0a && byte !== 0x0d) {
        this.warn(
          `${client.peer} sent ${hex(data.subarray(i, i + 8))}${data.length - i > 8 ? ' …' : ''}, not a request ('G' = 47); connection closed`,
        )
        return this.closeClient(client)
      }
    }
    if (client.pending > MAX_PENDING) {
      this.warn(
        `${client.peer} has ${client.pending} unanswered requests (more than ${MAX_PENDING}) and does not read the replies; connection closed`,
      )
      return this.closeClient(client)
    }
    this.serve(client)
  }

  protected onFrame(): void {
    for (const client of this.clients) this.serve(client)
  }

  protected override onPumped(client: SnapshotClient): void {
    this.serve(client)
  }

  /** Answer pending requests with the newest frame, one reply queued at a time (the next once the socket takes it). */
  private serve(client: SnapshotClient): void {
    if (client.pending === 0 || !this.latest || client.queue.length > 0 || client.gone || client.closing) return
    client.pending--
    // send() hands the packet to the socket at once when it has room, and then calls onPumped for the next.
    this.send(client, this.latest.packet)
  }
}
