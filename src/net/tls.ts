// TLS for the network stages, with Node's `tls` module only (no crypto of our
// own): the options every TLS-capable stage shares, the PEM files read once
// when the stage is made (a wrong path is one clear error before anything
// listens or connects), a server's accept that tells a TLS client from a plain
// one by its first byte, and one-line explanations of handshake failures.
//
// A server peeks at the first byte of each connection before it hands the
// connection to a tls.Server (never listening itself: it only does the
// handshake and checks client certificates, as Node does for any TLS
// server): a TLS client always begins with a handshake record (0x16), so
// anything else is a plain peer, which can be told so in plain bytes it can
// read (frame-pipe's refusal message, or an HTTP 400 for a browser), rather
// than a TLS alert it cannot.

import type { ConnectionOptions, SecureContext, Server as TlsServer, TLSSocket } from 'node:tls'
import { readFileSync } from 'node:fs'
import { isIP, type Socket } from 'node:net'
import { InvalidOptionError } from '../core/errors.js'
import type { OptionSpecs } from '../core/spec.js'
import { formatDuration } from '../core/spec.js'
import { ExactReader } from './exact-reader.js'
import { nodeCrypto, nodeTls } from '../core/builtins.js'

/** A TLSSocket, told without loading node:tls: only TLS sockets carry `encrypted` (always true). */
export function isTlsSocket(socket: Socket): socket is TLSSocket {
  return (socket as Partial<TLSSocket>).encrypted === true
}

/** The first byte of every TLS handshake record (a ClientHello starts one). */
export const TLS_HANDSHAKE = 0x16

// ------------------------------------------------------------- options

export interface ServerTlsOptions {
  /** TLS: certificate (PEM file, chain allowed); with key= the server speaks only TLS and turns plain clients away. `frame-pipe cert` makes one to try (default '') */
  /** TLS: certificate (PEM file, chain allowed); with key= the server speaks only TLS and turns plain clients away. `frame-pipe cert` makes one to try (default '') */
  /** TLS: certificate (PEM file, chain allowed); with key= the server speaks only TLS and turns plain clients away. `frame-pipe cert` makes one to try (default '') */
  /** TLS: certificate (PEM file, chain allowed); with key= the server speaks only TLS and turns plain clients away. `frame-pipe cert` makes one to try (default '') */
  /** TLS: certificate (PEM file, chain allowed); with key= the server speaks only TLS and turns plain clients away. `frame-pipe cert` makes one to try (default '') */
  cert: string
  /** TLS: private key (PEM file) of cert= (default '') */
  /** TLS: private key (PEM file) of cert= (default '') */
  /** TLS: private key (PEM file) of cert= (default '') */
  /** TLS: private key (PEM file) of cert= (default '') */
  /** TLS: private key (PEM file) of cert= (default '') */
  key: string
  /** TLS: passphrase of an encrypted key= (the secret, @FILE or env:NAME; default (none)) */
  /** TLS: passphrase of an encrypted key= (the secret, @FILE or env:NAME; default (none)) */
  /** TLS: passphrase of an encrypted key= (the secret, @FILE or env:NAME; default (none)) */
  /** TLS: passphrase of an encrypted key= (the secret, @FILE or env:NAME; default (none)) */
  /** TLS: passphrase of an encrypted key= (the secret, @FILE or env:NAME; default (none)) */
  keyPassphrase: string
  /** TLS: CA certificates (PEM file); when given, every client must present a certificate signed by one of them (mutual TLS) (default '') */
  /** TLS: CA certificates (PEM file); when given, every client must present a certificate signed by one of them (mutual TLS) (default '') */
  /** TLS: CA certificates (PEM file); when given, every client must present a certificate signed by one of them (mutual TLS) (default '') */
  /** TLS: CA certificates (PEM file); when given, every client must present a certificate signed by one of them (mutual TLS) (default '') */
  /** TLS: CA certificates (PEM file); when given, every client must present a certificate signed by one of them (mutual TLS) (default '') */
  ca: string
}

export interface ClientTlsOptions {
  /** Speak TLS to the server and check its certificate (against the system's CAs, or ca=); ca= and cert= imply it (default false) */
  /** Speak TLS to the server and check its certificate (against the system's CAs, or ca=); ca= and cert= imply it (default false) */
  /** Speak TLS to the server and check its certificate (against the system's CAs, or ca=); ca= and cert= imply it (default false) */
  /** Speak TLS to the server and check its certificate (against the system's CAs, or ca=); ca= and cert= imply it (default false) */
  tls: boolean
  /** TLS: trust these CA certificates (PEM file) for the server's certificate instead of the system's (a self-signed cert.pem itself) (default '') */
  /** TLS: trust these CA certificates (PEM file) for the server's certificate instead of the system's (a self-signed cert.pem itself) (default '') */
  /** TLS: trust these CA certificates (PEM file) for the server's certificate instead of the system's (a self-signed cert.pem itself) (default '') */
  /** TLS: trust these CA certificates (PEM file) for the server's certificate instead of the system's (a self-signed cert.pem itself) (default '') */
  /** TLS: trust these CA certificates (PEM file) for the server's certificate instead of the system's (a self-signed cert.pem itself) (default '') */
  ca: string
  /** TLS: client certificate (PEM file), for a server whose ca= requires one; with key= (default '') */
  /** TLS: client certificate (PEM file), for a server whose ca= requires one; with key= (default '') */
  /** TLS: client certificate (PEM file), for a server whose ca= requires one; with key= (default '') */
  /** TLS: client certificate (PEM file), for a server whose ca= requires one; with key= (default '') */
  /** TLS: client certificate (PEM file), for a server whose ca= requires one; with key= (default '') */
  cert: string
  /** TLS: private key (PEM file) of cert= (default '') */
  /** TLS: private key (PEM file) of cert= (default '') */
  /** TLS: private key (PEM file) of cert= (default '') */
  /** TLS: private key (PEM file) of cert= (default '') */
  /** TLS: private key (PEM file) of cert= (default '') */
  key: string
  /** TLS: passphrase of an encrypted key= (the secret, @FILE or env:NAME; default (none)) */
  /** TLS: passphrase of an encrypted key= (the secret, @FILE or env:NAME; default (none)) */
  /** TLS: passphrase of an encrypted key= (the secret, @FILE or env:NAME; default (none)) */
  /** TLS: passphrase of an encrypted key= (the secret, @FILE or env:NAME; default (none)) */
  /** TLS: passphrase of an encrypted key= (the secret, @FILE or env:NAME; default (none)) */
  keyPassphrase: string
  /** TLS: the name the server's certificate must carry (and SNI); '' = the host connected to (default '') */
  /** TLS: the name the server's certificate must carry (and SNI); '' = the host connected to (default '') */
  /** TLS: the name the server's certificate must carry (and SNI); '' = the host connected to (default '') */
  /** TLS: the name the server's certificate must carry (and SNI); '' = the host connected to (default '') */
  /** TLS: the name the server's certificate must carry (and SNI); '' = the host connected to (default '') */
  servername: string
}

/** cert, key, keyPassphrase, ca: a server speaks only TLS once cert= and key= are given. */
export function serverTlsOptions(): OptionSpecs<ServerTlsOptions> {
  return {
    cert: {
      type: 'string',
      default: '',
      doc: 'TLS: certificate (PEM file, chain allowed); with key= the server speaks only TLS and turns plain clients away. `frame-pipe cert` makes one to try',
    },
    key: { type: 'string', default: '', doc: 'TLS: private key (PEM file) of cert=' },
    keyPassphrase: { type: 'secret', default: '', doc: 'TLS: passphrase of an encrypted key=' },
    ca: {
      type: 'string',
      default: '',
      doc: 'TLS: CA certificates (PEM file); when given, every client must present a certificate signed by one of them (mutual TLS)',
    },
  }
}

/** tls, ca, cert, key, keyPassphrase, servername. `withSwitch`: false where TLS is chosen otherwise (https:// URLs). */
export function clientTlsOptions(withSwitch = true): OptionSpecs<ClientTlsOptions> {
  const specs: OptionSpecs<ClientTlsOptions> = {
    tls: {
      type: 'boolean',
      default: false,
      doc: "Speak TLS to the server and check its certificate (against the system's CAs, or ca=); ca= and cert= imply it",
    },
    ca: {
      type: 'string',
      default: '',
      doc: "TLS: trust these CA certificates (PEM file) for the server's certificate instead of the system's (a self-signed cert.pem itself)",
    },
    cert: { type: 'string', default: '', doc: 'TLS: client certificate (PEM file), for a server whose ca= requires one; with key=' },
    key: { type: 'string', default: '', doc: 'TLS: private key (PEM file) of cert=' },
    keyPassphrase: { type: 'secret', default: '', doc: 'TLS: passphrase of an encrypted key=' },
    servername: {
      type: 'string',
      default: '',
      doc: "TLS: the name the server's certificate must carry (and SNI); '' = the host connected to",
    },
  }
  if (!withSwitch) delete (specs as Partial<typeof specs>).tls
  return specs
}

// ------------------------------------------------------------- servers

export interface ServerTls {
  /** Does the handshakes (and client certificate checks) of connections handed to it; it never listens. */
  server: TlsServer
  /** ca= given: clients must present a certificate signed by it. */
  requestCert: boolean
  /** Names and addresses the certificate is for (its subjectAltName), lower case. */
  names: string[]
  /** Connections in their handshake, by remote address and port: the tls.Server's events name the TLSSocket only. */
  pending: Map<string, (err: Error | null, socket: TLSSocket) => void>
}

/** The server side of TLS from a stage's options, or null when cert= and key= are not given (plain TCP). */
export function serverTls(o: ServerTlsOptions, stage: string): ServerTls | null {
  if (o.cert === '' && o.key === '') {
    if (o.ca !== '')
      throw new InvalidOptionError(stage, 'ca', 'ca= asks clients for TLS certificates: the server needs cert= and key= to speak TLS')
    if (o.keyPassphrase !== '')
      throw new InvalidOptionError(stage, 'keyPassphrase', 'keyPassphrase= is for an encrypted key=, which is not given')
    return null
  }
  if (o.cert === '')
    throw new InvalidOptionError(stage, 'cert', 'key= is given without cert=: TLS needs both (`frame-pipe cert` makes a pair)')
  if (o.key === '')
    throw new InvalidOptionError(stage, 'key', 'cert= is given without key=: TLS needs both (`frame-pipe cert` makes a pair)')
  const cert = readPem(stage, 'cert', o.cert, 'CERTIFICATE')
  const key = readPem(stage, 'key', o.key, 'PRIVATE KEY')
  const ca = o.ca === '' ? undefined : readPem(stage, 'ca', o.ca, 'CERTIFICATE')
  const files = { cert, key, ca, passphrase: o.keyPassphrase || undefined }
  // Made once here for its clear errors (a key that is not cert='s, a wrong passphrase); the server makes its own from the same files.
  secureContext(stage, files)
  const requestCert = ca !== undefined
  // Client certificates are checked below (acceptTls), not by Node's rejectUnauthorized, which would cut the
  // connection without a word to either side: the client is told why, in a message it reads, and so is the log.
  const server = nodeTls().createServer({ ...files, minVersion: 'TLSv1.2', requestCert, rejectUnauthorized: false })
  const pending = new Map<string, (err: Error | null, socket: TLSSocket) => void>()
  server.on('secureConnection', (socket: TLSSocket) => pending.get(connectionKey(socket))?.(null, socket))
  server.on('tlsClientError', (err: Error, socket: TLSSocket) => pending.get(connectionKey(socket))?.(err, socket))
  return { server, requestCert, names: certificateNames(cert), pending }
}

function connectionKey(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`
}

/**
 * A plain peer on a TLS port, a failed handshake, or a client certificate
 * refused: `reason` is the log line; `plain`: the peer speaks plain TCP and
 * can read a plain answer; `secure`: the handshake is done (the certificate
 * was refused), an answer goes through this TLS socket.
 */
export interface TlsRefusal {
  reason: string
  plain: boolean
  secure?: TLSSocket
}

/**
 * Accept TLS on a freshly accepted connection: wait (until `deadline`, a
 * performance.now() time) for the first byte; a handshake record is wrapped
 * in a TLSSocket and called back once the handshake is done, anything else
 * (or nothing in time) is refused. The raw socket is the caller's to close
 * on refusal.
 */
export function acceptTls(
  raw: Socket,
  t: ServerTls,
  deadline: number,
  callback: (refusal: TlsRefusal | null, socket?: TLSSocket) => void,
): void {
  const limit = Math.max(0, deadline - performance.now())
  const key = connectionKey(raw)
  let done = false
  const finish = (refusal: TlsRefusal | null, socket?: TLSSocket) => {
    if (done) return
    done = true
    clearTimeout(timer)
    if (t.pending.get(key) === handshake) t.pending.delete(key)
    raw.off('close', onClose)
    callback(refusal, socket)
  }
  const handshake = (err: Error | null, socket: TLSSocket) => {
    if (err) return finish({ reason: `TLS handshake failed: ${explainServerTls(err)}`, plain: false })
    if (t.requestCert && !socket.authorized) {
      const none = Object.keys(socket.getPeerCertificate() ?? {}).length === 0
      return finish({
        reason: none
          ? 'it sent no client certificate, and this server requires one (ca=): give the client cert= and key='
          : `its client certificate is not signed by this server's ca= (${socket.authorizationError})`,
        plain: false,
        secure: socket,
      })
    }
    finish(null, socket)
  }
  const onClose = () =>
    finish({
      reason: "closed the connection during the TLS handshake (does the client trust this server's certificate? give it ca=)",
      plain: false,
    })
  let started = false
  const timer = setTimeout(() => {
    reader.release()
    const within = formatDuration(Math.round(limit))
    if (started) return finish({ reason: `the TLS handshake did not finish within ${within}`, plain: false })
    finish({ reason: `no TLS handshake within ${within} (a plain client waiting for data? give it tls=true and ca=)`, plain: true })
  }, limit)
  const reader = new ExactReader(raw, (why) => finish({ reason: `${why} before the TLS handshake`, plain: false }))
  reader.read(1, (first) => {
    reader.release()
    raw.unshift(first)
    if (first[0] !== TLS_HANDSHAKE) {
      return finish({
        reason: `it speaks plain TCP to this TLS port (first byte ${hexByte(first[0]!)}): give the client tls=true (and ca=)`,
        plain: true,
      })
    }
    started = true
    // The TLS server wraps the raw socket (and the byte put back above with it) and answers through `pending`.
    t.pending.set(key, handshake)
    raw.once('close', onClose)
    t.server.emit('connection', raw)
  })
}

/** Why a server's handshake with a client failed, in words. */
export function explainServerTls(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code ?? ''
  if (/ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN)/.test(code))
    return "the client does not trust this server's certificate (give the client ca= with it, e.g. cert.pem from `frame-pipe cert`)"
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED/.test(code))
    return 'it sent no client certificate, and this server requires one (ca=): give the client cert= and key='
  if (/CERTIFICATE_VERIFY_FAILED/.test(code) || isCertError(code))
    return `its client certificate is not signed by this server's ca= (${code})`
  if (/WRONG_VERSION_NUMBER|UNKNOWN_PROTOCOL|HTTP_REQUEST|PACKET_LENGTH/.test(code)) return 'what it sent is not TLS'
  if (/NO_SHARED_CIPHER|UNSUPPORTED_PROTOCOL|VERSION/.test(code)) return `no TLS version or cipher in common (${code})`
  return firstLine(err.message)
}

// ------------------------------------------------------------- clients

export interface ClientTls {
  options: ConnectionOptions
  /** The name the server's certificate is checked against. */
  servername: string
}

/** The client side of TLS, or null for plain TCP (no tls=, ca= or cert=). `url`: TLS is decided by the URL (https://). */
export function clientTls(o: Partial<ClientTlsOptions>, host: string, stage: string, on?: boolean): ClientTls | null {
  const ca = o.ca ?? ''
  const cert = o.cert ?? ''
  const key = o.key ?? ''
  const passphrase = o.keyPassphrase ?? ''
  const servername = o.servername ?? ''
  const wanted = on ?? (o.tls === true || ca !== '' || cert !== '')
  if (!wanted) {
    for (const [name, value] of [
      ['key', key],
      ['keyPassphrase', passphrase],
      ['servername', servername],
    ] as const) {
      if (value !== '')
        throw new InvalidOptionError(stage, name, `${name}= is for TLS, which is off: give tls=true (or ca=) to speak TLS to the server`)
    }
    return null
  }
  if (cert !== '' && key === '') throw new InvalidOptionError(stage, 'cert', 'cert= is given without key=: a client certificate needs both')
  if (key !== '' && cert === '') throw new InvalidOptionError(stage, 'key', 'key= is given without cert=: a client certificate needs both')
  if (passphrase !== '' && key === '')
    throw new InvalidOptionError(stage, 'keyPassphrase', 'keyPassphrase= is for an encrypted key=, which is not given')
  const context = secureContext(stage, {
    ca: ca === '' ? undefined : readPem(stage, 'ca', ca, 'CERTIFICATE'),
    cert: cert === '' ? undefined : readPem(stage, 'cert', cert, 'CERTIFICATE'),
    key: key === '' ? undefined : readPem(stage, 'key', key, 'PRIVATE KEY'),
    passphrase: passphrase || undefined,
  })
  const name = servername || host
  // SNI carries host names only; the certificate check takes an address too.
  const options: ConnectionOptions = { secureContext: context, servername: isIP(name) ? undefined : name }
  if (servername !== '') options.checkServerIdentity = (_host, peerCert) => nodeTls().checkServerIdentity(servername, peerCert)
  return { options, servername: name }
}

/** Why a client's TLS connection to `address` failed, as one line starting with the address. */
export function explainClientTls(err: Error, address: string, servername: string): string {
  const code = (err as NodeJS.ErrnoException).code ?? ''
  if (/WRONG_VERSION_NUMBER|UNKNOWN_PROTOCOL|PACKET_LENGTH_TOO_LONG|RECORD_LAYER_FAILURE/.test(code) || code === 'ECONNRESET')
    return `${address} does not speak TLS (its answer is not a TLS handshake): drop tls=/ca= here, or give the server cert= and key=`
  if (isCertError(code))
    return `${address}'s certificate is not trusted (${code}): give ca= with the certificate that signed it (for \`frame-pipe cert\`: its cert.pem)`
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `${address}'s certificate is not for '${servername}' (${firstLine(err.message)}): give servername= one of its names, or make one for this name (frame-pipe cert --name ${servername})`
  if (code === 'CERT_HAS_EXPIRED') return `${address}'s certificate has expired: make a new one`
  if (/ALERT_CERTIFICATE_REQUIRED/.test(code))
    return `${address} requires a client certificate: give cert= and key= signed by the server's ca=`
  if (/ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|DECRYPT_ERROR)/.test(code))
    return `${address} does not accept our client certificate (${code}): give cert= signed by the server's ca=`
  return `TLS with ${address} failed: ${firstLine(err.message)}`
}

// ------------------------------------------------------------- helpers

const CERT_ERRORS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
])

function isCertError(code: string): boolean {
  return CERT_ERRORS.has(code)
}

function readPem(stage: string, option: string, path: string, kind: 'CERTIFICATE' | 'PRIVATE KEY'): Buffer {
  let data: Buffer
  try {
    data = readFileSync(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : code
    throw new InvalidOptionError(stage, option, `${option}=${path}: cannot read the file (${why})`)
  }
  // "PRIVATE KEY" also matches "EC PRIVATE KEY", "RSA PRIVATE KEY" and "ENCRYPTED PRIVATE KEY".
  if (!data.includes(`-----BEGIN `) || !data.includes(kind)) {
    throw new InvalidOptionError(
      stage,
      option,
      `${option}=${path}: not a PEM file with a ${kind.toLowerCase()} (-----BEGIN … ${kind}-----)`,
    )
  }
  return data
}

function secureContext(stage: string, o: { cert?: Buffer; key?: Buffer; ca?: Buffer; passphrase?: string }): SecureContext {
  try {
    return nodeTls().createSecureContext({ ...o, minVersion: 'TLSv1.2' })
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const text = `${e.code ?? ''} ${e.message}`
    if (/KEY_VALUES_MISMATCH|key values mismatch/i.test(text))
      throw new InvalidOptionError(stage, 'key', 'key= is not the private key of cert=')
    if (/bad decrypt|BAD_DECRYPT|bad password|interrupted or cancelled/i.test(text))
      throw new InvalidOptionError(stage, 'keyPassphrase', 'key= is encrypted and keyPassphrase= does not open it')
    throw new InvalidOptionError(stage, o.cert ? 'cert' : 'ca', `TLS files refused: ${firstLine(e.message)}`)
  }
}

/** The DNS names and IP addresses of a certificate's subjectAltName (the first one of a chain), lower case. */
export function certificateNames(pem: Buffer): string[] {
  try {
    const alt = new (nodeCrypto().X509Certificate)(pem).subjectAltName ?? ''
    return alt
      .split(',')
      .map((s) => s.trim())
      .map((s) => (s.startsWith('DNS:') ? s.slice(4) : s.startsWith('IP Address:') ? s.slice(11) : ''))
      .filter((s) => s !== '')
      .map((s) => s.toLowerCase())
  } catch {
    // Not parseable here (an unusual format Node's TLS still takes): the names are only a convenience.
    return []
  }
}

function hexByte(b: number): string {
  return b.toString(16).padStart(2, '0')
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.trim()
}
