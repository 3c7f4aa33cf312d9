// HTTPS for the http sink, on the very http.Server that serves plain HTTP:
// each raw connection passes acceptTls (src/net/tls.ts) before the server's
// own HTTP handling sees it, so the server, its routes, keep-alive and close
// behave the same over TLS. A plain HTTP request on the HTTPS port gets a
// readable 400 that says to use https://; a TLS client on a plain port is
// recognised by its ClientHello and logged as such.

import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { looksLikeTls } from '../auth.js'
import { turnAway } from '../security.js'
import { peerName } from '../socket.js'
import { acceptTls, type ServerTls } from '../tls.js'

const USE_HTTPS_BODY = 'this server speaks HTTPS only: use https:// instead of http://\n'
/** The reason phrase carries the advice too: clients that print only the status line still show it. */
const USE_HTTPS = Buffer.from(
  'HTTP/1.1 400 This Server Speaks HTTPS Only\r\nContent-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(USE_HTTPS_BODY)}\r\nConnection: close\r\n\r\n${USE_HTTPS_BODY}`,
)

const CERTIFICATE_BODY = 'this server requires a client certificate signed by its ca=\n'
const CERTIFICATE_REQUIRED = Buffer.from(
  'HTTP/1.1 403 Client Certificate Required\r\nContent-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(CERTIFICATE_BODY)}\r\nConnection: close\r\n\r\n${CERTIFICATE_BODY}`,
)

/**
 * Make `server` speak only TLS. Call it before adding other 'connection'
 * listeners: those added later see the raw connections, the HTTP machinery
 * sees the TLS ones. `refused` logs a connection turned away.
 */
export function secureHttpServer(server: Server, t: ServerTls, timeoutMs: number, refused: (peer: string, why: string) => void): void {
  const http = server.listeners('connection') as Array<(socket: Socket) => void>
  server.removeAllListeners('connection')
  server.on('connection', (raw: Socket) => {
    const peer = peerName(raw)
    acceptTls(raw, t, performance.now() + timeoutMs, (refusal, secure) => {
      if (refusal?.secure) {
        turnAway(refusal.secure, CERTIFICATE_REQUIRED)
        return refused(peer, refusal.reason)
      }
      if (refusal) {
        if (refusal.plain) {
          turnAway(raw, USE_HTTPS)
          return refused(
            peer,
            /^it speaks plain/.test(refusal.reason) ? 'plain HTTP on this HTTPS port (the client should use https://)' : refusal.reason,
          )
        }
        turnAway(raw)
        return refused(peer, refusal.reason)
      }
      // A tick after the peek let go of the raw socket (see ExactReader).
      process.nextTick(() => {
        for (const listener of http) listener.call(server, secure!)
      })
    })
  })
}

/**
 * On a plain HTTP server, say so when a client speaks TLS to it (an https://
 * URL): Node's parser only sees a bad request. Other bad requests are answered
 * as Node answers them without this listener.
 */
export function explainTlsOnPlainHttp(server: Server, refused: (peer: string, why: string) => void): void {
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) => {
    if (err.rawPacket && looksLikeTls(err.rawPacket)) {
      refused(peerName(socket), 'it speaks TLS (https://) to this plain http port: give this server cert= and key=, or use http://')
      return void socket.destroy()
    }
    // What Node does when nobody listens for 'clientError'.
    if (socket.writable && !(socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
      const status =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? '431 Request Header Fields Too Large'
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? '408 Request Timeout'
            : '400 Bad Request'
      socket.write(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`)
    }
    socket.destroy(err)
  })
}
