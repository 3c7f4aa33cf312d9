// The token check between two frame-pipes, before the first frame moves, on
// the native protocols (tcp-server/tcp-client carrying header=native, and
// snapshot-server/snapshot-client). Both ends hold the same token (or the
// server holds one per client name); the token itself never crosses the
// wire: each end proves it holds it with an HMAC-SHA256 over both ends'
// random nonces, so a recording of one exchange replays nowhere.
//
// Every message starts with the same 8 bytes, then 32:
//   0  "FPAU" (46 50 41 55)   4  version (1)   5  type   6  a byte   7  a byte
//   HELLO  (1)  6 role (0 client, 1 server)  7 name length  8..39 nonce  then the name (UTF-8)
//   PROOF  (2)  6 0  7 0   8..39 HMAC-SHA256(token, label ‖ client nonce ‖ server nonce ‖ name length ‖ name ‖ binding)
//   REFUSE (3)  6 status   7 0   8..39 zero
// Both ends send HELLO at once on connecting; each sends its PROOF when the
// other's HELLO has come, and checks the other's PROOF: one round trip. The
// label is "frame-pipe auth v1 client" or "… server" with a 0 byte, so an
// end's own proof sent back to it does not pass. Over TLS, `binding` is 32
// bytes of the TLS session's keying material (RFC 5705 exporter), so a
// proof made on one TLS connection is worthless on another (no relaying).
// An end that refuses says why in a REFUSE before it closes; an end without
// a token that sees a HELLO answers REFUSE (no token here), so both ends log
// one line that names the real cause.

import type { Socket } from 'node:net'
import { InvalidOptionError } from '../core/errors.js'
import type { OptionSpecs } from '../core/spec.js'
import { formatDuration } from '../core/spec.js'
import { ExactReader } from './exact-reader.js'
import { isTlsSocket, TLS_HANDSHAKE } from './tls.js'
import { nodeCrypto } from '../core/builtins.js'

export const AUTH_MAGIC = 0x46504155 // "FPAU"
export const AUTH_VERSION = 1
export const AUTH_MESSAGE_BYTES = 40
const HEAD_BYTES = 8
const NONCE_BYTES = 32
export const MSG_HELLO = 1
export const MSG_PROOF = 2
export const MSG_REFUSE = 3
/** A token shorter than this could be guessed offline from one recorded exchange. */
export const MIN_TOKEN_LENGTH = 16
const EXPORTER_LABEL = 'EXPORTER-frame-pipe-auth'

/** Why an end refuses, as carried in a REFUSE message. */
export const REFUSAL = {
  /** The peer's proof does not match this end's token. */
  wrongToken: 1,
  /** The server has no token under the name the client gave. */
  unknownName: 2,
  /** This end requires a token: the peer sent data without the check. */
  tokenRequired: 3,
  /** This end has no token: the peer asked for the check. */
  noToken: 4,
  /** This end speaks TLS only: the peer spoke plain TCP. */
  tlsRequired: 5,
  /** The check did not finish within this end's time limit. */
  timeout: 6,
  /** The peer's messages are of a version this end does not speak. */
  version: 7,
  /** This end requires a client certificate its ca= signed (TLS): the peer has none, or another. */
  certificate: 8,
} as const
export type RefusalCode = (typeof REFUSAL)[keyof typeof REFUSAL]

export type Role = 'client' | 'server'

// ------------------------------------------------------------- options

export interface ServerTokenOptions {
  /** Require this shared token (at least 16 characters; give @FILE or env:NAME) from every client before the first frame moves: a challenge–response, the token never crosses the wire; native wires only (header=native, snapshot, UDP proto=native): a seed wire cannot carry it (the secret, @FILE or env:NAME; default (none)) */
  /** Require this shared token (at least 16 characters; give @FILE or env:NAME) from every client before the first frame moves: a challenge–response, the token never crosses the wire; native wires only (header=native, snapshot, UDP proto=native): a seed wire cannot carry it (the secret, @FILE or env:NAME; default (none)) */
  /** Require this shared token (at least 16 characters; give @FILE or env:NAME) from every client before the first frame moves: a challenge–response, the token never crosses the wire; native wires only (header=native, snapshot, UDP proto=native): a seed wire cannot carry it (the secret, @FILE or env:NAME; default (none)) */
  token: string
  /** Per-client tokens, one 'name:token' per line (give @FILE); a client picks its line with tokenName=; with token= too, nameless clients use that (the secret, @FILE or env:NAME; default (none)) */
  /** Per-client tokens, one 'name:token' per line (give @FILE); a client picks its line with tokenName=; with token= too, nameless clients use that (the secret, @FILE or env:NAME; default (none)) */
  /** Per-client tokens, one 'name:token' per line (give @FILE); a client picks its line with tokenName=; with token= too, nameless clients use that (the secret, @FILE or env:NAME; default (none)) */
  tokens: string
}

export interface ClientTokenOptions {
  /** Prove this token (the server's token=, or this client's line of its tokens=; give @FILE or env:NAME) before the first frame moves; native wires only (header=native, snapshot, UDP proto=native): a seed wire cannot carry it (the secret, @FILE or env:NAME; default (none)) */
  /** Prove this token (the server's token=, or this client's line of its tokens=; give @FILE or env:NAME) before the first frame moves; native wires only (header=native, snapshot, UDP proto=native): a seed wire cannot carry it (the secret, @FILE or env:NAME; default (none)) */
  /** Prove this token (the server's token=, or this client's line of its tokens=; give @FILE or env:NAME) before the first frame moves; native wires only (header=native, snapshot, UDP proto=native): a seed wire cannot carry it (the secret, @FILE or env:NAME; default (none)) */
  token: string
  /** The name of this client's token in the server's tokens= file; '' = its shared token= (default '') */
  /** The name of this client's token in the server's tokens= file; '' = its shared token= (default '') */
  /** The name of this client's token in the server's tokens= file; '' = its shared token= (default '') */
  tokenName: string
}

const NATIVE_ONLY = 'native wires only (header=native, snapshot, UDP proto=native): a seed wire cannot carry it'

export function serverTokenOptions(): OptionSpecs<ServerTokenOptions> {
  return {
    token: {
      type: 'secret',
      default: '',
      doc: `Require this shared token (at least ${MIN_TOKEN_LENGTH} characters; give @FILE or env:NAME) from every client before the first frame moves: a challenge–response, the token never crosses the wire; ${NATIVE_ONLY}`,
    },
    tokens: {
      type: 'secret',
      default: '',
      doc: "Per-client tokens, one 'name:token' per line (give @FILE); a client picks its line with tokenName=; with token= too, nameless clients use that",
    },
  }
}

export function clientTokenOptions(): OptionSpecs<ClientTokenOptions> {
  return {
    token: {
      type: 'secret',
      default: '',
      doc: `Prove this token (the server's token=, or this client's line of its tokens=; give @FILE or env:NAME) before the first frame moves; ${NATIVE_ONLY}`,
    },
    tokenName: { type: 'string', default: '', doc: "The name of this client's token in the server's tokens= file; '' = its shared token=" },
  }
}

export interface ServerAuth {
  /** The key for a client name ('' = the shared token), or undefined when the server has none under that name. */
  keyFor(name: string): Buffer | undefined
}

export interface ClientAuth {
  key: Buffer
  name: string
}

/** The server's tokens from its options, or null when it checks none. */
export function serverAuth(o: Partial<ServerTokenOptions>, stage: string): ServerAuth | null {
  const shared = o.token ?? ''
  const list = o.tokens ?? ''
  if (shared === '' && list === '') return null
  if (shared !== '') checkToken(stage, 'token', shared)
  const named = new Map<string, Buffer>()
  list.split(/\r?\n/).forEach((line, i) => {
    const text = line.trim()
    if (text === '' || text.startsWith('#')) return
    const colon = text.indexOf(':')
    // Errors name the line, never its text: it holds a token.
    if (colon <= 0) throw new InvalidOptionError(stage, 'tokens', `tokens= line ${i + 1}: expected 'name:token'`)
    const name = text.slice(0, colon).trim()
    const token = text.slice(colon + 1).trim()
    if (Buffer.byteLength(name) > 255)
      throw new InvalidOptionError(stage, 'tokens', `tokens= line ${i + 1}: the name is longer than 255 bytes`)
    if (named.has(name)) throw new InvalidOptionError(stage, 'tokens', `tokens= line ${i + 1}: the name '${name}' is given twice`)
    checkToken(stage, 'tokens', token, `tokens= line ${i + 1}`)
    named.set(name, Buffer.from(token, 'utf8'))
  })
  if (shared === '' && named.size === 0) throw new InvalidOptionError(stage, 'tokens', 'tokens= holds no name:token line')
  const sharedKey = shared === '' ? undefined : Buffer.from(shared, 'utf8')
  return { keyFor: (name) => (name === '' ? sharedKey : named.get(name)) }
}

/** The client's token from its options, or null when it has none. */
export function clientAuth(o: Partial<ClientTokenOptions>, stage: string): ClientAuth | null {
  const token = o.token ?? ''
  const name = o.tokenName ?? ''
  if (token === '') {
    if (name !== '') throw new InvalidOptionError(stage, 'tokenName', 'tokenName= names a token, but token= is not given')
    return null
  }
  checkToken(stage, 'token', token)
  if (Buffer.byteLength(name) > 255) throw new InvalidOptionError(stage, 'tokenName', 'tokenName= is longer than 255 bytes')
  return { key: Buffer.from(token, 'utf8'), name }
}

/** Refuse a token too short to resist guessing; the message gives its length, never its text. */
export function checkToken(stage: string, option: string, token: string, where = `${option}=`): void {
  // The length may be said; the token may not.
  if ([...token].length < MIN_TOKEN_LENGTH)
    throw new InvalidOptionError(
      stage,
      option,
      `${where}: the token has ${[...token].length} characters; use at least ${MIN_TOKEN_LENGTH}, e.g. a file made by \`openssl rand -base64 24\``,
    )
}

// ------------------------------------------------------------- messages

function head(type: number, b6: number, b7: number, body: Buffer | null, extra = 0): Buffer {
  const m = Buffer.alloc(AUTH_MESSAGE_BYTES + extra)
  m.writeUInt32BE(AUTH_MAGIC, 0)
  m[4] = AUTH_VERSION
  m[5] = type
  m[6] = b6
  m[7] = b7
  body?.copy(m, HEAD_BYTES)
  return m
}

function hello(role: Role, nonce: Buffer, name: Buffer): Buffer {
  const m = head(MSG_HELLO, role === 'client' ? 0 : 1, name.length, nonce, name.length)
  name.copy(m, AUTH_MESSAGE_BYTES)
  return m
}

/** The REFUSE message for `code`. */
export function refusalMessage(code: RefusalCode): Buffer {
  return head(MSG_REFUSE, code, 0, null)
}

function isAuthMagic(bytes: Buffer): boolean {
  return bytes.length >= 4 && bytes.readUInt32BE(0) === AUTH_MAGIC
}

/** Do these first bytes look like a TLS ClientHello (a handshake record of TLS 1.0–1.3)? */
export function looksLikeTls(bytes: Buffer): boolean {
  return bytes.length >= 3 && bytes[0] === TLS_HANDSHAKE && bytes[1] === 0x03 && bytes[2]! <= 0x04
}

function mac(key: Buffer, role: Role, clientNonce: Buffer, serverNonce: Buffer, name: Buffer, binding: Buffer): Buffer {
  return nodeCrypto()
    .createHmac('sha256', key)
    .update(`frame-pipe auth v${AUTH_VERSION} ${role}\0`)
    .update(clientNonce)
    .update(serverNonce)
    .update(Buffer.of(name.length))
    .update(name)
    .update(binding)
    .digest()
}

/** What a peer's REFUSE means, seen from the end that receives it; `peer` names the other end. */
export function describeRefusal(code: number, peer: string, peerRole: Role, name = ''): string {
  switch (code) {
    case REFUSAL.wrongToken:
      return `wrong token: ${peer} holds a different one (our proof did not match)`
    case REFUSAL.unknownName:
      return `${peer} has no token named '${name}' in its tokens=`
    case REFUSAL.tokenRequired:
      return `${peer} requires a token: give token= (the same as the ${peerRole}'s; @FILE or env:NAME)`
    case REFUSAL.noToken:
      return peerRole === 'server'
        ? `${peer} does not check tokens (it runs without token=): give it the same token, or drop token= here`
        : `no token: ${peer} runs without token= (give it the same token as this server)`
    case REFUSAL.tlsRequired:
      return `${peer} speaks TLS only: give tls=true (and ca= for a self-signed certificate)`
    case REFUSAL.timeout:
      return `${peer} gave up: the token check took longer than its time limit`
    case REFUSAL.version:
      return `${peer} speaks another version of the token check (upgrade the older end)`
    case REFUSAL.certificate:
      return `${peer} requires a client certificate signed by its ca=: give cert= and key= (ours is missing or not one it trusts)`
    default:
      return `${peer} refused us (reason ${code})`
  }
}

// ------------------------------------------------------------- the check

/** How the check failed: `reason` is one line for the log; `answer`, when set, is the REFUSE to send the peer before closing. */
export interface AuthFailure {
  reason: string
  answer?: Buffer
}

export type Credentials = { role: 'client'; auth: ClientAuth } | { role: 'server'; auth: ServerAuth }

/**
 * Run the token check on a connected socket (TLS already done, if any).
 * Calls back once: null and the client's token name on success, the socket
 * then at the first byte after the check; or the failure, the socket the
 * caller's to close (sending `answer` first). Silent when the owner destroys
 * the socket meanwhile. `peer` names the other end in messages.
 */
export function authenticate(
  socket: Socket,
  me: Credentials,
  timeoutMs: number,
  peer: string,
  callback: (failure: AuthFailure | null, name?: string) => void,
): void {
  const peerRole: Role = me.role === 'client' ? 'server' : 'client'
  const myNonce = nodeCrypto().randomBytes(NONCE_BYTES)
  const myNameText = me.role === 'client' ? me.auth.name : ''
  const myName = Buffer.from(myNameText, 'utf8')
  let done = false
  const finish = (failure: AuthFailure | null, name?: string) => {
    if (done) return
    done = true
    clearTimeout(timer)
    reader.release()
    socket.off('close', onClose)
    // A tick, so that the socket's readable state is reset before its owner takes it (see ExactReader).
    process.nextTick(() => callback(failure, name))
  }
  const fail = (reason: string, code?: RefusalCode) => finish({ reason, answer: code ? refusalMessage(code) : undefined })
  const timer = setTimeout(() => {
    const what = reader.buffered > 0 ? `${reader.buffered} bytes that are not the token check` : 'nothing'
    fail(
      me.role === 'server'
        ? `no token check within ${formatDuration(Math.round(timeoutMs))} (it sent ${what}; a client without token=?)`
        : `no token check from ${peer} within ${formatDuration(Math.round(timeoutMs))} (it sent ${what}; does it run with token=?)`,
      REFUSAL.timeout,
    )
  }, timeoutMs)
  const reader = new ExactReader(socket, (why) =>
    fail(
      me.role === 'server'
        ? `${why} during the token check`
        : `${peer} ${why} during the token check (does it run with token=, and is ours right?)`,
    ),
  )
  // Destroyed by its owner (the stage is stopping): nobody waits for an answer.
  const onClose = () => {
    if (done) return
    done = true
    clearTimeout(timer)
    reader.release()
  }
  socket.once('close', onClose)
  let binding: Buffer
  try {
    binding = isTlsSocket(socket) ? socket.exportKeyingMaterial(32, EXPORTER_LABEL, Buffer.alloc(0)) : Buffer.alloc(0)
  } catch (err) {
    return fail(`TLS keying material unavailable: ${(err as Error).message}`)
  }
  socket.write(hello(me.role, myNonce, myName))

  /** Read one message's 8-byte head; anything but our magic (or a REFUSE) is explained. */
  const readHead = (expected: number, then: (h: Buffer) => void) => {
    reader.read(4, (magic) => {
      if (!isAuthMagic(magic)) return fail(...notTheCheck(magic, me.role, peer))
      reader.read(HEAD_BYTES - 4, (rest) => {
        const h = Buffer.concat([magic, rest])
        if (h[4] !== AUTH_VERSION)
          return fail(`${peer} speaks version ${h[4]} of the token check; this end speaks ${AUTH_VERSION}`, REFUSAL.version)
        if (h[5] === MSG_REFUSE) {
          return reader.read(NONCE_BYTES, () =>
            fail(describeRefusal(h[6]!, me.role === 'client' ? peer : 'the client', peerRole, myNameText)),
          )
        }
        if (h[5] !== expected) return fail(`${peer} sent message type ${h[5]} where type ${expected} belongs`, REFUSAL.version)
        then(h)
      })
    })
  }

  readHead(MSG_HELLO, (h) => {
    const theirRole: Role = h[6] === 0 ? 'client' : 'server'
    if (theirRole !== peerRole) return fail(`${peer} is a ${theirRole} too: connect a client to a server`)
    reader.read(NONCE_BYTES, (theirNonce) => {
      reader.read(h[7]!, (nameBytes) => {
        const name = me.role === 'server' ? nameBytes.toString('utf8') : me.auth.name
        const key = me.role === 'server' ? me.auth.keyFor(name) : me.auth.key
        if (!key)
          return fail(
            name === '' ? 'no token name given, and this server has no shared token=' : `no token named '${name}' in tokens=`,
            REFUSAL.unknownName,
          )
        const wire = me.role === 'server' ? nameBytes : myName
        const clientNonce = me.role === 'client' ? myNonce : theirNonce
        const serverNonce = me.role === 'server' ? myNonce : theirNonce
        socket.write(head(MSG_PROOF, 0, 0, mac(key, me.role, clientNonce, serverNonce, wire, binding)))
        const expected = mac(key, peerRole, clientNonce, serverNonce, wire, binding)
        readHead(MSG_PROOF, () => {
          reader.read(NONCE_BYTES, (proof) => {
            if (!nodeCrypto().timingSafeEqual(proof, expected)) {
              return fail(
                me.role === 'server'
                  ? `wrong token${name ? ` for '${name}'` : ''} (its proof does not match ours)`
                  : `wrong token: ${peer} holds a different one (its proof does not match ours)`,
                REFUSAL.wrongToken,
              )
            }
            finish(null, name)
          })
        })
      })
    })
  })
}

/** The first bytes where the token check belongs are something else: say what, and what to answer. */
function notTheCheck(first: Buffer, me: Role, peer: string): [string, RefusalCode?] {
  if (first[0] === TLS_HANDSHAKE) {
    return me === 'server'
      ? ['it speaks TLS to this plain port: give this server cert= and key=, or drop tls=/ca= on the client']
      : [`${peer} speaks TLS: give tls=true (and ca=)`]
  }
  return me === 'server'
    ? [`no token: it sent data without the token check (first bytes ${hex(first)}): give the client token=`, REFUSAL.tokenRequired]
    : [
        `${peer} does not check tokens: it sent data (${hex(first)}${describeStart(first)}) instead of the token check; give it token=, or drop token= here`,
      ]
}

/**
 * A plain end without a token looks at the first bytes its peer sends: a TLS
 * ClientHello or frame-pipe's token check means the two ends are configured
 * differently. Returns the log line and the answer to send (a REFUSE the peer
 * understands), or undefined for anything else: the peer's data.
 */
export function plainMismatch(first: Buffer, peerRole: Role, peer: string): AuthFailure | undefined {
  if (peerRole === 'client' && looksLikeTls(first)) {
    return { reason: 'it speaks TLS to this plain port: give this server cert= and key=, or drop tls=/ca= on the client' }
  }
  if (!isAuthMagic(first) || first.length < 6) return undefined
  const type = first[5]
  if (type === MSG_HELLO) {
    return {
      reason:
        peerRole === 'client'
          ? 'it asks for a token check, but this server has no token=: give it the same token, or drop token= on the client'
          : describeRefusal(REFUSAL.tokenRequired, peer, 'server'),
      answer: refusalMessage(REFUSAL.noToken),
    }
  }
  if (type === MSG_REFUSE && first.length >= 7) {
    return { reason: describeRefusal(first[6]!, peerRole === 'server' ? peer : 'the client', peerRole) }
  }
  return undefined
}

function hex(bytes: Buffer): string {
  return [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ')
}

function describeStart(first: Buffer): string {
  if (first.toString('latin1', 0, 4) === 'FRMP') return ': a native frame header'
  return ''
}
