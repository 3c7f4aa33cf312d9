// One source, many connections: the machinery shared by the server sinks
// (tcp-server, http, and cmd-server and snapshot-server through FrameServer).
// Each client has its own small queue of whole items (packets, frames): a slow
// client loses its oldest items, it never slows the source or the other
// clients, and it never receives an item cut in half. At the end, clients get
// up to `linger` to take what is queued for them, then a FIN.

import http from 'node:http'
import type { Socket } from 'node:net'
import { packetLength, type Packet } from '../core/frame.js'
import type { Counters } from '../core/stage.js'
import { closeAll, describeLoss } from './socket.js'
import type { StageServer } from './server.js'
import { writePacket } from '../core/packets.js'
import { formatDuration } from '../core/spec.js'

/** What the fan-out keeps per client; stages extend it with the connection and their protocol's state. */
export interface FanClient<T> {
  /** Whole items not yet given to the connection, oldest first; at most maxQueue. */
  queue: T[]
  /** Items dropped for this client: its queue was full, or still held items at the end. */
  drops: number
  /** Items handed to the connection. */
  sent: number
  gone: boolean
  /** performance.now() when the connection last took something (or was found ready to); set by the fan-out. */
  moved?: number
}

export interface FanOutOptions<T, C extends FanClient<T>> {
  /** The stage's server: it keeps every connection, and flush() and destroy() close it. */
  server: StageServer
  maxQueue: number
  linger: number
  /** Milliseconds a client's connection may take nothing (stay above its highWaterMark) before it is cut off, counted in `stalled`; 0 = never. */
  sendTimeout?: number
  counters: Counters
  /** Whether the client's connection takes another item now (below its highWaterMark); when it does not, its 'drain' must call pump(). */
  ready(client: C): boolean
  /** Hand one item to the client's connection; returns the bytes that adds (counted in counters.bytes). */
  write(client: C, item: T): number
  /** The client's queue is empty after a pump (after an offer or a 'drain'): a protocol may queue its next item. */
  pumped?(client: C): void
  /** remove() has forgotten the client: close its connection as `reason` requires and say so. */
  left(client: C, reason: string): void
  /**
   * After the end's FIN, how long connections may stay open before they are
   * cut. 'rest': what is left of linger, at least a moment (clients normally
   * answer our FIN at once; give them a moment even when linger is used up).
   * 'short': a moment (viewers normally close at once; a stalled one is cut
   * off after a short grace).
   */
  grace: 'rest' | 'short'
}

/** `ready` and `write` for clients served whole packets over a TCP socket. */
export const packetsToSocket = {
  ready: (client: { socket: Socket }): boolean => client.socket.writableLength < client.socket.writableHighWaterMark,
  write: (client: { socket: Socket }, packet: Packet): number => {
    writePacket(client.socket, packet)
    return packetLength(packet)
  },
}

/** A moment for connections to close after our FIN (no more than linger): the least grace 'rest' gives, what 'short' gives. */
const SHORT_GRACE = 250

export class FanOut<T, C extends FanClient<T>> {
  readonly clients = new Set<C>()
  private readonly o: FanOutOptions<T, C>
  private pending: NodeJS.Immediate | null = null
  /** Called on any progress while flush() waits for queues to drain. */
  private onProgress: (() => void) | null = null
  private lingerTimer: NodeJS.Timeout | null = null
  private stallTimer: NodeJS.Timeout | null = null

  constructor(o: FanOutOptions<T, C>) {
    this.o = o
    o.counters.clients = 0
    const timeout = o.sendTimeout ?? 0
    if (timeout > 0) {
      o.counters.stalled = 0
      // A few checks per timeout: a stalled client is cut within about 1.25 × sendTimeout.
      this.stallTimer = setInterval(() => this.checkStalled(timeout), Math.max(20, Math.min(1000, timeout / 4)))
      this.stallTimer.unref()
    }
  }

  add(client: C): void {
    client.moved = performance.now()
    this.clients.add(client)
    this.o.counters.clients = this.clients.size
  }

  /** Cut off every client whose connection has taken nothing for `timeout` ms. */
  private checkStalled(timeout: number): void {
    const t = performance.now()
    for (const c of this.clients) {
      if (this.o.ready(c)) c.moved = t
      else if (t - (c.moved ?? t) >= timeout) {
        this.o.counters.stalled!++
        this.remove(c, `stalled: took nothing for ${formatDuration(timeout)} (sendTimeout)`)
      }
    }
  }

  private stopStallTimer(): void {
    if (this.stallTimer) clearInterval(this.stallTimer)
    this.stallTimer = null
  }

  /** Serve `client` over a TCP socket: tracked, and removed when it ends, fails or closes. */
  connect(client: C, socket: Socket): void {
    this.o.server.track(socket)
    // A frame should leave now, not wait for the ACK of the previous one.
    socket.setNoDelay(true)
    socket.on('error', (err) => this.remove(client, describeLoss(err)))
    socket.on('end', () => this.remove(client, 'end'))
    socket.on('close', () => this.remove(client, 'closed'))
    socket.on('drain', () => this.pump(client))
    this.add(client)
  }

  remove(client: C, reason: string): void {
    if (client.gone) return
    client.gone = true
    client.queue.length = 0
    this.clients.delete(client)
    this.o.counters.clients = this.clients.size
    this.o.left(client, reason)
    this.progress()
  }

  /** Queue an item for one client: drop its oldest when the queue is full, then write what the connection takes. */
  offer(client: C, item: T): void {
    client.queue.push(item)
    if (client.queue.length > this.o.maxQueue) {
      client.queue.shift()
      client.drops++
      this.o.counters.drops++
    }
    this.pump(client)
  }

  /** Hand queued items to the connection while it is below its highWaterMark; 'drain' calls again. */
  pump(client: C): void {
    const { queue } = client
    while (queue.length > 0 && !client.gone && this.o.ready(client)) {
      const item = queue.shift()!
      this.o.counters.bytes += this.o.write(client, item)
      client.sent++
      client.moved = performance.now()
    }
    this.progress()
    if (queue.length === 0 && !client.gone) this.o.pumped?.(client)
  }

  /** Count what is still queued for a client as dropped, and forget it. */
  dropQueue(client: C): void {
    client.drops += client.queue.length
    this.o.counters.drops += client.queue.length
    client.queue.length = 0
  }

  /** Something was handed over or closed: flush() may be waiting for that. */
  progress(): void {
    this.onProgress?.()
  }

  /** Every queue handed to its connection; what a socket still buffers goes out before the FIN. */
  drained(): boolean {
    for (const c of this.clients) {
      if (c.queue.length > 0) return false
    }
    return true
  }

  /**
   * Let the source go on. Never wait for a client; but when some are behind,
   * let socket I/O run before the next item, so that clients which keep up
   * are not starved by a source that produces faster than one event-loop turn.
   */
  proceed(callback: () => void): void {
    if (this.drained()) return callback()
    this.pending = setImmediate(() => {
      this.pending = null
      callback()
    })
  }

  /**
   * The end: stop accepting, wait until every queue is handed over or linger
   * has passed, then FIN every client (`end`; what is still queued counts as
   * dropped) and cut the connections still open after a grace. Calls back once
   * the server has closed, which is once its last connection has.
   */
  flush(end: (client: C) => void, callback: () => void): void {
    // From here linger bounds how long a client may take.
    this.stopStallTimer()
    const server = this.o.server.listener!
    let serverClosed = false
    let whenClosed: (() => void) | null = null
    server.close(() => {
      serverClosed = true
      whenClosed?.()
    })
    const deadline = Date.now() + this.o.linger
    const finish = () => {
      this.onProgress = null
      if (this.lingerTimer) clearTimeout(this.lingerTimer)
      for (const c of this.clients) {
        this.dropQueue(c)
        end(c)
      }
      // Keep-alive connections that carry no stream would hold close() open.
      if (server instanceof http.Server) server.closeIdleConnections()
      const short = Math.min(this.o.linger, SHORT_GRACE)
      const grace = this.o.grace === 'short' ? short : Math.max(deadline - Date.now(), short)
      // Every open socket, including clients that already left but have not closed yet.
      this.lingerTimer = setTimeout(() => closeAll(undefined, this.o.server.sockets), grace)
      whenClosed = () => {
        if (this.lingerTimer) clearTimeout(this.lingerTimer)
        this.lingerTimer = null
        callback()
      }
      if (serverClosed) whenClosed()
    }
    this.onProgress = () => {
      if (this.drained()) finish()
    }
    this.lingerTimer = setTimeout(finish, this.o.linger)
    this.onProgress()
  }

  /** Release everything: timers, queues, the server and every socket. */
  destroy(): void {
    this.stopStallTimer()
    if (this.pending) clearImmediate(this.pending)
    if (this.lingerTimer) clearTimeout(this.lingerTimer)
    this.pending = null
    this.lingerTimer = null
    this.onProgress = null
    for (const c of this.clients) c.queue.length = 0
    this.clients.clear()
    this.o.server.close()
  }
}
