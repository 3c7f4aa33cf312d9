// Who may ask the http sink for what. Every request passes, in order:
//   1. the Host check against DNS rebinding: a web page on another site that
//      points its own name at this machine's address would otherwise read the
//      camera through the visitor's browser. Accepted: IP addresses (a
//      rebinding needs a name), localhost and *.localhost, the name the server
//      is bound to, this machine's host name when bound to every address, the
//      certificate's names (HTTPS), and allowedHosts=; '*' turns it off.
//   2. credentials, unless the route is public=: HTTP basic auth (auth=
//      user:password) or a bearer token (token=), compared in constant time.
//      A request without credentials gets 401 and the challenge; wrong ones
//      are logged and counted per address, and an address with too many in a
//      row is locked out for a while (429), so a password cannot be guessed
//      at network speed.

import { createHash, timingSafeEqual } from 'node:crypto'
import { hostname } from 'node:os'
import { isIP } from 'node:net'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { InvalidOptionError } from '../../core/errors.js'
import type { Counters } from '../../core/stage.js'
import { formatAddress } from '../socket.js'

/** Wrong credentials from one address within FAILURE_WINDOW before it is locked out. */
export const MAX_FAILURES = 10
export const FAILURE_WINDOW = 60_000
export const LOCKOUT = 60_000
/** Addresses remembered at once; the oldest is forgotten beyond. */
const MAX_TRACKED = 4096

export interface HttpGateConfig {
  /** The host option the server listens on. */
  host: string
  /** 'user:password', '' = none. */
  auth: string
  /** Bearer token, '' = none. */
  token: string
  /** Comma-separated paths served without credentials. */
  public: string
  /** Comma-separated extra host names, '*' = no Host check. */
  allowedHosts: string
  /** Names in the TLS certificate, if any. */
  certNames: readonly string[]
}

export interface GateHooks {
  counters: Counters
  /** A line for the log ('warning'). */
  warn(message: string): void
}

interface Failures {
  count: number
  first: number
  lockedUntil: number
}

export class HttpGate {
  private readonly basic: Buffer | null
  private readonly bearer: Buffer | null
  private readonly open: ReadonlySet<string>
  private readonly any: boolean
  private readonly names: Set<string>
  private readonly hooks: GateHooks
  private readonly failures = new Map<string, Failures>()

  constructor(o: HttpGateConfig, stage: string, hooks: GateHooks) {
    if (o.auth !== '' && !o.auth.includes(':')) {
      throw new InvalidOptionError(stage, 'auth', `expected 'user:password' for auth but received a string without ':'`)
    }
    this.basic = o.auth === '' ? null : digest(o.auth)
    this.bearer = o.token === '' ? null : digest(o.token)
    const paths = list(o.public)
    for (const p of paths) {
      if (!p.startsWith('/')) throw new InvalidOptionError(stage, 'public', `public=: '${p}' is not a path (e.g. public=/stats)`)
    }
    if (paths.length > 0 && !this.basic && !this.bearer) {
      throw new InvalidOptionError(
        stage,
        'public',
        'public= opens routes that auth= or token= would guard, but neither is given: every route is open',
      )
    }
    this.open = new Set(paths)
    const extra = list(o.allowedHosts).map(normalHost)
    this.any = extra.includes('*')
    this.names = new Set(['localhost', ...extra, ...o.certNames.map(normalHost)])
    const bound = normalHost(o.host)
    if (bound === '0.0.0.0' || bound === '::' || bound === '') {
      const me = normalHost(hostname())
      this.names.add(me)
      this.names.add(`${me.split('.')[0]}.local`)
    } else if (isIP(bound) === 0) {
      this.names.add(bound)
    }
    this.hooks = hooks
    hooks.counters.authFailures = 0
  }

  /** Credentials are asked for (some route is guarded). */
  get guarded(): boolean {
    return this.basic !== null || this.bearer !== null
  }

  /**
   * Whether the request may go on to its route; when not, the answer (403,
   * 401, 429) has been sent. `path` is the URL path without the query.
   */
  admit(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    const host = req.headers.host
    if (host !== undefined && !this.hostAllowed(host)) {
      const name = normalHost(host)
      this.hooks.warn(
        `refused a request for ${path} from ${peerOf(req)}: Host '${name}' is not served here (DNS rebinding guard; allowedHosts=${name} if it is yours)`,
      )
      answer(res, 403, {}, `Host '${name}' is not served here: start the server with allowedHosts=${name} if that name is yours\n`)
      return false
    }
    if (!this.guarded || this.open.has(path)) return true
    const address = req.socket.remoteAddress ?? '?'
    const now = performance.now()
    const f = this.failures.get(address)
    if (f && f.lockedUntil > now) {
      const wait = Math.ceil((f.lockedUntil - now) / 1000)
      answer(res, 429, { 'Retry-After': String(wait) }, `too many failed logins from ${address}: try again in ${wait} s\n`)
      return false
    }
    const given = req.headers.authorization
    if (!given) {
      answer(res, 401, { 'WWW-Authenticate': this.challenge() }, 'authentication required\n')
      return false
    }
    const why = this.check(given)
    if (why === undefined) {
      this.failures.delete(address)
      return true
    }
    this.failed(address, path, why, now)
    answer(res, 401, { 'WWW-Authenticate': this.challenge() }, 'authentication required\n')
    return false
  }

  private hostAllowed(header: string): boolean {
    if (this.any) return true
    const name = normalHost(header)
    return isIP(name) !== 0 || name.endsWith('.localhost') || this.names.has(name)
  }

  /** undefined when the credentials are right, else what was wrong (never the credentials). */
  private check(header: string): string | undefined {
    const m = /^(\S+)\s+(\S+)\s*$/.exec(header)
    const scheme = m?.[1]!.toLowerCase()
    if (scheme === 'basic' && this.basic) {
      const text = Buffer.from(m![2]!, 'base64').toString('utf8')
      return timingSafeEqual(digest(text), this.basic) ? undefined : 'wrong user or password'
    }
    if (scheme === 'bearer' && this.bearer) return timingSafeEqual(digest(m![2]!), this.bearer) ? undefined : 'wrong bearer token'
    return `credentials of a kind this server does not take (${scheme ?? 'unreadable'}; it takes ${this.kinds()})`
  }

  private failed(address: string, path: string, why: string, now: number): void {
    this.hooks.counters.authFailures++
    let f = this.failures.get(address)
    if (!f || now - f.first > FAILURE_WINDOW) {
      f = { count: 0, first: now, lockedUntil: 0 }
      this.failures.delete(address)
      if (this.failures.size >= MAX_TRACKED) this.failures.delete(this.failures.keys().next().value as string)
      this.failures.set(address, f)
    }
    f.count++
    if (f.count >= MAX_FAILURES) {
      f.lockedUntil = now + LOCKOUT
      f.count = 0
      f.first = now
      this.hooks.warn(
        `failed login from ${address} for ${path} (${why}): ${MAX_FAILURES} in a row, locked out for ${LOCKOUT / 1000} s (429)`,
      )
      return
    }
    this.hooks.warn(
      `failed login from ${address} for ${path} (${why}); ${MAX_FAILURES - f.count} more and it is locked out for ${LOCKOUT / 1000} s`,
    )
  }

  private challenge(): string {
    const parts: string[] = []
    if (this.basic) parts.push('Basic realm="frame-pipe", charset="UTF-8"')
    if (this.bearer) parts.push('Bearer realm="frame-pipe"')
    return parts.join(', ')
  }

  private kinds(): string {
    return [this.basic ? 'Basic' : '', this.bearer ? 'Bearer' : ''].filter(Boolean).join(' or ')
  }
}

/** `Example.COM:8080` → `example.com`, `[::1]:8080` → `::1`. */
export function normalHost(text: string): string {
  let h = text.trim().toLowerCase()
  if (h.startsWith('[')) {
    const end = h.indexOf(']')
    return end < 0 ? h : h.slice(1, end)
  }
  const colon = h.lastIndexOf(':')
  // One colon: host:port; more: a bare IPv6 address.
  if (colon >= 0 && h.indexOf(':') === colon) h = h.slice(0, colon)
  return h.endsWith('.') ? h.slice(0, -1) : h
}

function list(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
}

function peerOf(req: IncomingMessage): string {
  return formatAddress(req.socket.remoteAddress ?? '?', req.socket.remotePort ?? 0)
}

function answer(res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  const bytes = Buffer.from(body)
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': bytes.length,
    'Cache-Control': 'no-store',
    ...headers,
  })
  res.end(res.req.method === 'HEAD' ? undefined : bytes)
}

/** Fixed-length digest so that credentials of any length compare in constant time. */
function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}
