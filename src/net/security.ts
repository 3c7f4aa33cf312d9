// The door of every network stage that has one: TLS (./tls.ts) and the
// token check (./auth.ts) put together for a server's accept and a client's
// dial, the option specs a stage spreads into its own, and what a plain,
// tokenless end does with a peer configured otherwise. Engines get a
// ServerSecurity or ClientSecurity made from the stage's options (null when
// the stage is plain and tokenless: then nothing here runs but the look at a
// peer's first bytes).

import net, { type Socket } from 'node:net'
import type { OptionSpecs } from '../core/spec.js'
import { InvalidOptionError } from '../core/errors.js'
import {
  authenticate,
  checkToken,
  clientAuth,
  clientTokenOptions,
  plainMismatch,
  REFUSAL,
  refusalMessage,
  serverAuth,
  serverTokenOptions,
  type ClientAuth,
  type ClientTokenOptions,
  type ServerAuth,
  type ServerTokenOptions,
} from './auth.js'
import {
  acceptTls,
  clientTls,
  clientTlsOptions,
  explainClientTls,
  isTlsSocket,
  serverTls,
  serverTlsOptions,
  type ClientTls,
  type ClientTlsOptions,
  type ServerTls,
  type ServerTlsOptions,
} from './tls.js'
import { nodeTls } from '../core/builtins.js'
import { peerName, type DialSecurity } from './socket.js'
import type { StageServer } from './server.js'

// ------------------------------------------------------------- options

export interface ServerSecurityOptions extends ServerTlsOptions, ServerTokenOptions {
  /** A client must finish the TLS handshake and the token check within this long after connecting, else it is turned away (logged) (milliseconds; default 5s) */
  handshakeTimeout: number
}
/** For stages whose wire cannot carry a token (cmd-server): TLS only. */
export interface ServerTlsOnlyOptions extends ServerTlsOptions {
  /** A client must finish the TLS handshake within this long after connecting, else it is turned away (logged) (milliseconds; default 5s) */
  handshakeTimeout: number
}

export type ClientSecurityOptions = ClientTlsOptions & ClientTokenOptions

function handshakeTimeoutOption(what: string) {
  return {
    type: 'duration' as const,
    min: 1,
    default: 5000,
    doc: `A client must finish ${what} within this long after connecting, else it is turned away (logged)`,
  }
}

/** TLS, token, tokens, handshakeTimeout: spread into a server stage's options. */
export function serverSecurityOptions(): OptionSpecs<ServerSecurityOptions> {
  return {
    ...serverTlsOptions(),
    ...serverTokenOptions(),
    handshakeTimeout: handshakeTimeoutOption('the TLS handshake and the token check'),
  }
}

export function serverTlsOnlyOptions(): OptionSpecs<ServerTlsOnlyOptions> {
  return { ...serverTlsOptions(), handshakeTimeout: handshakeTimeoutOption('the TLS handshake') }
}

/** tls, ca, cert, key, keyPassphrase, servername, token, tokenName: spread into a client stage's options. */
export function clientSecurityOptions(): OptionSpecs<ClientSecurityOptions> {
  return { ...clientTlsOptions(), ...clientTokenOptions() }
}

// ------------------------------------------------------------- servers

export interface ServerSecurity {
  tls: ServerTls | null
  auth: ServerAuth | null
  timeout: number
}

/** The server's door from its options; null when it is plain and checks no token. Reads the PEM files now. */
export function serverSecurity(o: Partial<ServerSecurityOptions>, stage: string): ServerSecurity | null {
  const t = serverTls({ cert: o.cert ?? '', key: o.key ?? '', keyPassphrase: o.keyPassphrase ?? '', ca: o.ca ?? '' }, stage)
  const auth = serverAuth(o, stage)
  if (!t && !auth) return null
  return { tls: t, auth, timeout: o.handshakeTimeout ?? 5000 }
}

/** What a guarded server hands its engine: the connection ready for the protocol, and who it is. */
export interface Admitted {
  /** The name of the client's token in tokens=, '' for the shared token= or no check. */
  name: string
  /** The client presented a certificate the server's ca= accepts. */
  certified: boolean
}

/**
 * The listener for a server: every connection passes TLS (when cert= is
 * given) and the token check (when token= or tokens= is) before `admit`
 * sees it; one that does not is turned away with a 'client' leave event
 * whose reason says why (`refused: wrong token …`), and is told so in bytes
 * it can read. `pause`: hand connections over paused, as
 * net.createServer({ pauseOnConnect }) does. With no security the listener
 * is `admit` itself.
 */
export function guard(
  security: ServerSecurity | null,
  server: StageServer,
  admit: (socket: Socket, who: Admitted) => void,
  options: { pause?: boolean } = {},
): (raw: Socket) => void {
  if (!security) return (socket) => admit(socket, { name: '', certified: false })
  return (raw) => {
    const peer = peerName(raw)
    const deadline = performance.now() + security.timeout
    // Held, so that closing the server cuts connections still at the door.
    server.track(raw)
    // No Nagle: the handshakes are small messages back and forth, each waiting for the last.
    raw.setNoDelay(true)
    const refuse = (reason: string, socket: Socket, answer?: Buffer) => {
      turnAway(socket, answer)
      server.refuse(peer, reason)
    }
    const checked = (socket: Socket) => {
      const certified = isTlsSocket(socket) && socket.authorized
      if (!security.auth) return ready(socket, { name: '', certified })
      authenticate(socket, { role: 'server', auth: security.auth }, Math.max(1, deadline - performance.now()), peer, (failure, name) => {
        if (failure) return refuse(failure.reason, socket, failure.answer)
        ready(socket, { name: name ?? '', certified })
      })
    }
    const ready = (socket: Socket, who: Admitted) => {
      if (socket.destroyed) return
      if (options.pause) socket.pause()
      admit(socket, who)
    }
    if (!security.tls) return checked(raw)
    acceptTls(raw, security.tls, deadline, (refusal, secure) => {
      if (refusal?.secure) return refuse(refusal.reason, refusal.secure, refusalMessage(REFUSAL.certificate))
      if (refusal) return refuse(refusal.reason, raw, refusal.plain ? refusalMessage(REFUSAL.tlsRequired) : undefined)
      // A tick after the peek's reader let go of the raw socket (see ExactReader).
      process.nextTick(() => checked(secure!))
    })
  }
}

// ------------------------------------------------------------- clients

export interface ClientSecurity extends DialSecurity {
  tls: ClientTls | null
  auth: ClientAuth | null
}

/** The client's door from its options, for dial(); undefined when it is plain and has no token. Reads the PEM files now. */
export function clientSecurity(o: Partial<ClientSecurityOptions>, host: string, stage: string): ClientSecurity | undefined {
  const t = clientTls(o, host, stage)
  const auth = clientAuth(o, stage)
  if (!t && !auth) return undefined
  return {
    tls: t,
    auth,
    open(h, port) {
      // No Nagle: the handshakes are small messages back and forth, each waiting for the last.
      if (!t) return { socket: net.connect({ host: h, port, noDelay: true }), ready: 'connect' }
      const socket = nodeTls().connect({ host: h, port, ...t.options })
      socket.setNoDelay(true)
      return { socket, ready: 'secureConnect' }
    },
    check(socket, address, timeoutMs, callback) {
      if (!auth) return callback(null)
      authenticate(socket, { role: 'client', auth }, timeoutMs, address, (failure) => {
        if (!failure) return callback(null)
        if (failure.answer && !socket.destroyed) socket.write(failure.answer)
        socket.destroy()
        callback(explained(failure.reason))
      })
    },
    explain(err, address) {
      if (!t) return err
      const code = (err as NodeJS.ErrnoException).code ?? ''
      // Not a TLS matter: the connection itself failed (refused, timed out, unknown host).
      if (['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL'].includes(code)) return err
      return explained(explainClientTls(err, address, t.servername), err)
    },
  }
}

/** A connection the other end's door turned away (TLS, token): the message explains; no code, so that logs (describeLoss) show the words. */
export class RefusedError extends Error {}

function explained(message: string, cause?: Error): Error {
  return new RefusedError(message, cause ? { cause } : undefined)
}

// ------------------------------------------------------------- plain ends

/**
 * A plain client without a token checks the first chunk its server sends:
 * frame-pipe's token check or a refusal means the two ends are set up
 * differently. Returns the Error to fail the connection with (the answer
 * already sent), or undefined: the server's data, carry on. (Servers call
 * plainMismatch themselves and turn the client away.)
 */
export function plainServerProblem(socket: Socket, first: Buffer, address: string): Error | undefined {
  const failure = plainMismatch(first, 'server', address)
  if (!failure) return undefined
  if (failure.answer && socket.writable) socket.write(failure.answer)
  return explained(failure.reason)
}

/**
 * Close a refused connection so that the refusal reaches the peer: send
 * `answer`, FIN, read and discard what the peer still sends (an unread byte
 * would turn the close into a reset, which can destroy the answer on its
 * way), and cut it after a second if the peer does not close.
 */
export function turnAway(socket: Socket, answer?: Buffer): void {
  // The refusal is already logged; a reset now only ends it sooner.
  socket.on('error', () => undefined)
  if (answer && socket.writable) socket.write(answer)
  socket.end()
  socket.resume()
  setTimeout(() => socket.destroy(), 1000).unref()
}

/** Refuse token= with a UDP seed wire (whole/chunked): datagram signing is native only; and a short token. */
export function checkUdpToken(stage: string, proto: string, token: string): void {
  if (token === '') return
  if (proto !== 'native') {
    throw new InvalidOptionError(
      stage,
      'token',
      `token= signs frame-pipe's native datagrams; proto=${proto} is seed 000's wire, which cannot carry a signature: use proto=native on both ends, or drop token=`,
    )
  }
  checkToken(stage, 'token', token)
}

/** How an admitted client proved itself, for its 'join' line: `TLS, token 'cam1'`; undefined for a plain, tokenless server. */
export function admittedAs(security: ServerSecurity | null | undefined, who: Admitted): string | undefined {
  if (!security) return undefined
  const parts: string[] = []
  if (security.tls) parts.push(who.certified ? 'TLS, client certificate' : 'TLS')
  if (security.auth) parts.push(who.name ? `token '${who.name}'` : 'token')
  return parts.join(', ')
}
