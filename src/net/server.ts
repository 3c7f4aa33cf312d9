// The listening side that every server stage shares (tcp-server in both
// directions, http, reg-server, and cmd-server and snapshot-server through
// FrameServer): listen with one-line errors and say where ('listening'),
// keep every connection, turn away connections over a cap with a 'client'
// leave event, and close the server with every socket it still holds.

import type { AddressInfo, Server, Socket } from 'node:net'
import { closeAll, listenFor, type ClientEvent } from './socket.js'
import { heldBack, RateLimit } from '../core/warnings.js'

/** The stage that owns the server: it emits 'listening' and 'client', and a server error after listening destroys it. */
export interface ServerOwner {
  emit(event: string, ...args: unknown[]): boolean
  destroy(err: Error): unknown
}

export class StageServer<S extends Server = Server> {
  /** The server once listen() has been given it (net.Server, or http.Server for the viewer). */
  listener: S | undefined
  /** Every connection handed to track() that has not closed yet. */
  readonly sockets = new Set<Socket>()
  /** Connections turned away so far. */
  refused = 0
  private readonly owner: ServerOwner
  private readonly stage: string
  /** A flood of connections over a cap must not become a flood of log lines. */
  private readonly refusals = new RateLimit()

  constructor(owner: ServerOwner, stage: string) {
    this.owner = owner
    this.stage = stage
  }

  /** The bound address once listening (port 0 picks one), else null. */
  address(): AddressInfo | null {
    return (this.listener?.address() as AddressInfo | null | undefined) ?? null
  }

  /**
   * Listen with `server` on host:port. A failure calls back with a one-line
   * networkError (`tcp-server: port in use: 127.0.0.1:9000`); once listening,
   * a later error of the server destroys the owner. Then `announce` gives
   * what the owner's 'listening' event carries (the bound address unless it
   * says otherwise), emitted after the callback; undefined emits nothing (the
   * owner stopped while the server was starting).
   */
  listen(
    server: S,
    host: string,
    port: number,
    callback: (error?: Error | null) => void,
    announce: (address: AddressInfo) => unknown = (address) => address,
  ): void {
    this.listener = server
    listenFor(this.owner, server, host, port, this.stage, (err, address) => {
      if (err) return callback(err)
      const event = announce(address!)
      callback()
      if (event !== undefined) this.owner.emit('listening', event)
    })
  }

  /** Keep `socket` until it closes, so that close() can cut it. */
  track(socket: Socket): void {
    this.sockets.add(socket)
    socket.on('close', () => this.sockets.delete(socket))
  }

  /** Emit a 'client' event (the CLI logs it). */
  client(event: ClientEvent): void {
    this.owner.emit('client', event)
  }

  /**
   * Turn a connection away (over a cap): cut `socket` when given, and say so
   * as a 'leave' whose reason is `refused: <why>`, rate-limited (a few per
   * second; the next one says how many were held back).
   */
  refuse(peer: string, why: string, socket?: Socket): void {
    socket?.destroy()
    this.refused++
    const held = this.refusals.pass()
    if (held !== undefined) this.client({ event: 'leave', peer, reason: `refused: ${why}${heldBack(held)}` })
  }

  /** Close the server and every tracked socket, and `others` too. */
  close(others: Iterable<Socket> = []): void {
    closeAll(this.listener, this.sockets)
    for (const socket of others) socket.destroy()
  }
}
