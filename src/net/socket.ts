// Socket plumbing shared by the four TCP stages: listening and dialling with
// errors that carry the stage and address, peer names, retry delays.

import net, { type AddressInfo, type Server, type Socket } from 'node:net'
import { networkError } from '../core/errors.js'

/** What a server stage emits as 'client' (the CLI logs it). A refused connection is a 'leave' whose reason says why. */
export interface ClientEvent {
  event: 'join' | 'leave'
  peer: string
  reason?: string
  /** Packets dropped for this client while it was connected (sinks). */
  drops?: number
}

/** What client stages emit as 'connect', 'disconnect' and 'retry'; `message` is the log line. */
export interface ConnectionEvent {
  peer: string
  message: string
  reason?: string
  /** 'retry': milliseconds until the next attempt. */
  delay?: number
}

export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/** `127.0.0.1:53712`, captured on connection: a closed socket forgets its remote address. */
export function peerName(socket: Socket): string {
  return formatAddress(socket.remoteAddress ?? '?', socket.remotePort ?? 0)
}

/** Why a connection ended, for logs: 'end' for a clean close, else the error code. */
export function describeLoss(err: Error | undefined): string {
  if (!err) return 'end'
  return (err as NodeJS.ErrnoException).code ?? err.message
}

/** Listen on host:port; the callback gets the bound address or a one-line networkError (`tcp-server: port in use: 127.0.0.1:9000`). */
export function listen(
  server: Server,
  host: string,
  port: number,
  stage: string,
  callback: (err: Error | null, address?: AddressInfo) => void,
): void {
  const onError = (err: Error) => {
    server.off('listening', onListening)
    callback(networkError(stage, err, formatAddress(host, port)))
  }
  const onListening = () => {
    server.off('error', onError)
    callback(null, server.address() as AddressInfo)
  }
  server.once('error', onError)
  server.once('listening', onListening)
  server.listen(port, host)
}

/** listen() for a server stage: once it listens, a later error of the server destroys `owner` with a one-line networkError. */
export function listenFor(
  owner: { destroy(err: Error): unknown },
  server: Server,
  host: string,
  port: number,
  stage: string,
  callback: (err: Error | null, address?: AddressInfo) => void,
): void {
  listen(server, host, port, stage, (err, address) => {
    if (!err) server.on('error', (e) => owner.destroy(networkError(stage, e, formatAddress(host, port))))
    callback(err, address)
  })
}

/**
 * TLS and the token check for dial(), made from a stage's options by
 * src/net/security.ts (clientSecurity): how to open the connection, what to
 * do once it is open, and how to explain a failure while connecting.
 */
export interface DialSecurity {
  /** Open the connection; `ready` is the event that says it is open ('secureConnect' for TLS). */
  open(host: string, port: number): { socket: Socket; ready: 'connect' | 'secureConnect' }
  /** Once open: the token check. Calls back once, with null or a one-line error; not at all when the owner destroys the socket. */
  check(socket: Socket, address: string, timeoutMs: number, callback: (err: Error | null) => void): void
  /** A failure while opening (a TLS handshake error), explained. */
  explain(err: Error, address: string): Error
}

/**
 * Connect to host:port, giving up after `timeoutMs`. The callback runs at
 * most once: with null when connected (attach your own listeners then), or
 * with the failure as a one-line networkError, the socket already destroyed.
 * It does not run when the owner destroys the socket while it connects.
 * With `security`, connected means the TLS handshake and the token check are
 * done too (each within timeoutMs).
 */
export function dial(
  host: string,
  port: number,
  timeoutMs: number,
  stage: string,
  callback: (err: Error | null) => void,
  security?: DialSecurity,
): Socket {
  const address = formatAddress(host, port)
  const { socket, ready } = security ? security.open(host, port) : { socket: net.connect({ host, port }), ready: 'connect' }
  const timer = setTimeout(() => {
    const err = Object.assign(new Error(`connect timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' })
    socket.destroy(err)
  }, timeoutMs)
  const cleanup = () => {
    clearTimeout(timer)
    socket.off(ready, onConnect)
    socket.off('error', onError)
    socket.off('close', cleanup)
  }
  const onConnect = () => {
    cleanup()
    if (!security) return callback(null)
    security.check(socket, address, timeoutMs, (err) => callback(err && networkError(stage, err, address)))
  }
  const onError = (err: Error) => {
    cleanup()
    callback(networkError(stage, security ? security.explain(err, address) : err, address))
  }
  socket.once(ready, onConnect)
  socket.once('error', onError)
  // Destroyed by its owner while connecting (stop): nobody is waiting for an answer.
  socket.once('close', cleanup)
  return socket
}

/** Exponential backoff: min, 2·min, 4·min … capped at max. */
export function backoff(attempt: number, min: number, max: number): number {
  return Math.min(max, min * 2 ** Math.min(attempt, 30))
}

/** Close a server and every socket it still holds. */
export function closeAll(server: Server | undefined, sockets: Iterable<Socket>): void {
  server?.close()
  for (const s of sockets) s.destroy()
}
