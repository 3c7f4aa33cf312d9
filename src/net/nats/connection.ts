// One connection to a NATS server (or cluster) for a nats stage: credentials
// and TLS, reconnects with the same backoff as the TCP clients (retryMin
// doubling up to retryMax), and a log event for each change of state, so that
// `frame-pipe` prints one line when the server goes away and one when it is back.

import { readFileSync } from 'node:fs'
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type NatsConnection,
  type Server,
  type Status,
} from '@nats-io/transport-node'
import { FramePipeError, InvalidOptionError } from '../../core/errors.js'
import type { Counters } from '../../core/spec.js'
import { backoff, type ConnectionEvent } from '../socket.js'

/** How to reach the server: what both nats stages share. token, password and nkey arrive resolved (`secret` options: read from @FILE or env:NAME by resolveOptions). */
export interface NatsLinkConfig {
  /** NATS server URL, or several comma-separated (a cluster: the client moves to another when one goes); tls:// requires TLS; no credentials in the URL (default nats://127.0.0.1:4222) */
  /** NATS server URL, or several comma-separated (a cluster: the client moves to another when one goes); tls:// requires TLS; no credentials in the URL (default nats://127.0.0.1:4222) */
  server: string
  /** Token the server requires (authorization { token }) (the secret, @FILE or env:NAME; default (none)) */
  /** Token the server requires (authorization { token }) (the secret, @FILE or env:NAME; default (none)) */
  token: string
  /** User name for user/password authentication (default '') */
  /** User name for user/password authentication (default '') */
  user: string
  /** Password of user (the secret, @FILE or env:NAME; default (none)) */
  /** Password of user (the secret, @FILE or env:NAME; default (none)) */
  password: string
  /** NKey user seed (SU…, as `nk -gen user` prints it) for nkey authentication (the secret, @FILE or env:NAME; default (none)) */
  /** NKey user seed (SU…, as `nk -gen user` prints it) for nkey authentication (the secret, @FILE or env:NAME; default (none)) */
  nkey: string
  /** Path of a creds file (user JWT + seed, as nsc writes it) for decentralized auth; the file holds the secret (default '') */
  /** Path of a creds file (user JWT + seed, as nsc writes it) for decentralized auth; the file holds the secret (default '') */
  creds: string
  /** Require TLS to the server (implied by tls://, ca, cert) (default false) */
  /** Require TLS to the server (implied by tls://, ca, cert) (default false) */
  tls: boolean
  /** PEM file of the CA that signed the server's certificate (default: the system CAs) (default '') */
  /** PEM file of the CA that signed the server's certificate (default: the system CAs) (default '') */
  ca: string
  /** PEM file of our client certificate, when the server verifies clients (with key) (default '') */
  /** PEM file of our client certificate, when the server verifies clients (with key) (default '') */
  cert: string
  /** PEM file of the client certificate's private key (a path: the file holds the secret) (default '') */
  /** PEM file of the client certificate's private key (a path: the file holds the secret) (default '') */
  key: string
  /** When the server goes away, reconnect (backoff from retryMin to retryMax) and resubscribe; off: losing the server is an error (default true) */
  /** When the server goes away, reconnect (backoff from retryMin to retryMax) and resubscribe; off: losing the server is an error (default true) */
  reconnect: boolean
  /** Retry the first connection too, instead of failing when no server is there (default false) */
  /** Retry the first connection too, instead of failing when no server is there (default false) */
  waitForServer: boolean
  /** First delay before a retry; doubles on each failure (milliseconds; default 100ms) */
  /** First delay before a retry; doubles on each failure (milliseconds; default 100ms) */
  retryMin: number
  /** Longest delay between retries (milliseconds; default 5s) */
  /** Longest delay between retries (milliseconds; default 5s) */
  retryMax: number
  /** Give up a connection attempt (TCP, TLS and handshake) after this long (milliseconds; default 5s) */
  /** Give up a connection attempt (TCP, TLS and handshake) after this long (milliseconds; default 5s) */
  connectTimeout: number
}

/** What a link reports to its stage. */
export interface LinkHooks {
  stage: string
  counters: Counters
  /** A log event: 'connect', 'disconnect', 'retry' carry a ConnectionEvent; 'warning' and 'info' a line. */
  emit(event: 'connect' | 'disconnect' | 'retry', detail: ConnectionEvent): void
  emit(event: 'warning' | 'info', detail: string): void
  /** Connected again after a loss (the subscriptions are already renewed by the client). */
  up?(): void
  /** The connection is lost; the client is trying to get it back. */
  down?(): void
  /** The connection is gone for good (reconnect=false, or credentials refused on a reconnect): the stage must end with this error. */
  failed(err: FramePipeError): void
}

/** Checked credentials and TLS settings: made when the stage is created, so that a mistake fails before anything starts. */
export interface LinkAuth {
  servers: string[]
  /** Shown in messages: the servers without any credentials. */
  label: string
  authenticator?: Authenticator
  tlsRequired: boolean
}

// A server that no longer answers pings is given up after PING_INTERVAL × MAX_PINGS_OUT, then reconnected.
const PING_INTERVAL = 10_000
const MAX_PINGS_OUT = 3

/** Parse `server` and check the credentials: every mistake is one InvalidOptionError naming the option, never showing a secret. */
export function prepareLink(stage: string, c: NatsLinkConfig): LinkAuth {
  const servers: string[] = []
  let tlsRequired = c.tls
  for (const part of c.server.split(',')) {
    const text = part.trim()
    if (text === '') continue
    const m = /^(?:(nats|tls):\/\/)?([^/@\s]+?)(?::(\d+))?\/?$/.exec(text)
    if (text.includes('@')) {
      throw new InvalidOptionError(
        stage,
        'server',
        'server: credentials in the URL would show in ps; give them with token=, user= and password= (as @file or env:NAME)',
      )
    }
    if (!m)
      throw new InvalidOptionError(
        stage,
        'server',
        `server: expected nats://host:port (or tls://host:port), comma-separated for a cluster, but received '${text}'`,
      )
    const port = m[3] === undefined ? 4222 : Number(m[3])
    if (port < 1 || port > 65535) throw new InvalidOptionError(stage, 'server', `server: port ${port} out of range in '${text}'`)
    if (m[1] === 'tls') tlsRequired = true
    servers.push(`${m[2]}:${port}`)
  }
  if (servers.length === 0) throw new InvalidOptionError(stage, 'server', 'server: give at least one nats://host:port')

  const { token, password, nkey } = c
  const creds = readCreds(stage, c.creds)
  const kinds = [
    token !== '' && 'token',
    (c.user !== '' || password !== '') && 'user/password',
    nkey !== '' && 'nkey',
    creds && 'creds',
  ].filter(Boolean)
  if (kinds.length > 1)
    throw new InvalidOptionError(
      stage,
      kinds[1] === 'user/password' ? 'user' : String(kinds[1]),
      `give one way to authenticate, not ${kinds.join(' and ')}`,
    )
  if (password !== '' && c.user === '') throw new InvalidOptionError(stage, 'password', 'password needs user=')
  let authenticator: Authenticator | undefined
  if (token !== '') authenticator = tokenAuthenticator(token)
  else if (c.user !== '') authenticator = usernamePasswordAuthenticator(c.user, password)
  else if (nkey !== '') {
    // A user seed is 'SU' + base32; never echo it, even cut short.
    if (!/^SU[A-Z2-7]{50,}$/.test(nkey))
      throw new InvalidOptionError(stage, 'nkey', 'nkey: expected a user nkey seed (starts with SU, as `nk -gen user` prints)')
    authenticator = nkeyAuthenticator(new TextEncoder().encode(nkey))
  } else if (creds) authenticator = credsAuthenticator(creds)
  for (const option of ['ca', 'cert', 'key'] as const) {
    if (c[option] !== '') tlsRequired = true
  }
  if ((c.cert === '') !== (c.key === ''))
    throw new InvalidOptionError(stage, c.cert === '' ? 'cert' : 'key', 'a client certificate needs both cert= and key=')
  return { servers, label: servers.length === 1 ? servers[0]! : servers.join(','), authenticator, tlsRequired }
}

/** A creds file (JWT + seed, as `nsc` writes it), by its path. */
function readCreds(stage: string, path: string): Uint8Array | undefined {
  if (path === '') return undefined
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new InvalidOptionError(
      stage,
      'creds',
      `creds: cannot read the file ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    )
  }
  if (!text.includes('BEGIN NATS USER JWT') || !text.includes('BEGIN USER NKEY SEED')) {
    throw new InvalidOptionError(
      stage,
      'creds',
      `creds: ${path} is not a NATS creds file (expected the USER JWT and USER NKEY SEED blocks that nsc writes)`,
    )
  }
  return new TextEncoder().encode(text)
}

/**
 * A NATS connection with its log events. `open` resolves once connected (or
 * fails with one clear line); afterwards losses and recoveries are reported
 * through the hooks while the client reconnects on its own.
 */
export class NatsLink {
  readonly nc: NatsConnection
  private readonly hooks: LinkHooks
  private readonly auth: LinkAuth
  private closing = false
  /** Whether the client has a server now. */
  connected = true

  private constructor(nc: NatsConnection, auth: LinkAuth, hooks: LinkHooks) {
    this.nc = nc
    this.auth = auth
    this.hooks = hooks
  }

  /**
   * Connect. With waitForServer, failed first attempts are retried with
   * backoff (never when the server refused the credentials) until `signal`
   * aborts; without it the first failure is the error.
   */
  static async open(c: NatsLinkConfig, auth: LinkAuth, hooks: LinkHooks, signal: AbortSignal): Promise<NatsLink> {
    // Reconnect attempts since the last success; the first attempt after a loss goes at once.
    let attempt = 0
    // First attempts are retried by the loop below, not by the client.
    let established = false
    const options = {
      servers: auth.servers,
      authenticator: auth.authenticator,
      tls: auth.tlsRequired ? tlsOptions(c) : undefined,
      timeout: c.connectTimeout,
      reconnect: c.reconnect,
      maxReconnectAttempts: c.reconnect ? -1 : 0,
      pingInterval: PING_INTERVAL,
      maxPingOut: MAX_PINGS_OUT,
      // The backoff is ours (reconnectToServer below): the client's own fixed wait and jitter are off.
      reconnectTimeWait: 0,
      reconnectJitter: 0,
      reconnectJitterTLS: 0,
      reconnectDelayHandler: () => 0,
      reconnectToServer: (pool: ReadonlyArray<Server>) => {
        const server = pool[0]
        if (!server || !established) return null
        const delay = attempt === 0 ? 0 : backoff(attempt - 1, c.retryMin, c.retryMax)
        attempt++
        if (delay > 0) {
          const peer = `${server.hostname}:${server.port}`
          // The handler must not throw: log from the next tick.
          process.nextTick(() => hooks.emit('retry', { peer, delay, message: `reconnecting to ${peer} failed; retrying in ${delay} ms` }))
        }
        return { server, delay }
      },
      name: `frame-pipe ${hooks.stage}`,
    }
    let nc: NatsConnection
    for (let first = 0; ; first++) {
      try {
        nc = await connect(options)
        break
      } catch (err) {
        const failure = natsError(hooks.stage, err, auth.label)
        if (!c.waitForServer || signal.aborted || /refused the credentials|expired/.test(failure.message)) throw failure
        const delay = backoff(first, c.retryMin, c.retryMax)
        hooks.emit('retry', {
          peer: auth.label,
          delay,
          reason: shortReason(err),
          message: `connecting to ${auth.label} failed (${shortReason(err)}); retrying in ${delay} ms`,
        })
        await abortableDelay(delay, signal)
        if (signal.aborted) throw failure
      }
    }
    const link = new NatsLink(nc, auth, hooks)
    if (signal.aborted) {
      await link.close()
      throw new FramePipeError('ERR_NETWORK', 'stopped while connecting', { stage: hooks.stage })
    }
    established = true
    attempt = 0
    link.watch(() => {
      attempt = 0
    })
    const info = nc.info
    hooks.counters.connected = 1
    hooks.emit('connect', {
      peer: nc.getServer(),
      message: `connected to ${nc.getServer()}${info ? ` (nats-server ${info.version}, max_payload ${info.max_payload} bytes${info.jetstream ? ', JetStream' : ''})` : ''}`,
    })
    return link
  }

  /** The largest message the server takes (payload + headers). */
  maxPayload(): number {
    return this.nc.info?.max_payload ?? 1024 * 1024
  }

  server(): string {
    return this.nc.getServer()
  }

  /** Close for good; no failure is reported for it. */
  async close(): Promise<void> {
    this.closing = true
    this.connected = false
    this.hooks.counters.connected = 0
    if (!this.nc.isClosed()) await this.nc.close().catch(() => {})
  }

  private watch(reset: () => void): void {
    const { hooks } = this
    void (async () => {
      for await (const s of this.nc.status()) this.onStatus(s, reset)
    })()
    void this.nc.closed().then((err) => {
      this.connected = false
      hooks.counters.connected = 0
      if (this.closing) return
      const why = err ? natsError(hooks.stage, err, this.auth.label).message.replace(`${hooks.stage}: `, '') : 'closed'
      hooks.failed(
        new FramePipeError('ERR_NETWORK', `connection to ${this.auth.label} ended: ${why}`, {
          stage: hooks.stage,
          cause: err ?? undefined,
        }),
      )
    })
  }

  private onStatus(s: Status, reset: () => void): void {
    const { hooks } = this
    switch (s.type) {
      case 'disconnect':
        if (this.closing) return
        this.connected = false
        hooks.counters.connected = 0
        hooks.emit('disconnect', { peer: s.server, message: `disconnected from ${s.server}` })
        hooks.down?.()
        return
      case 'reconnect':
        reset()
        this.connected = true
        hooks.counters.connected = 1
        hooks.emit('connect', { peer: s.server, message: `reconnected to ${s.server}` })
        hooks.up?.()
        return
      case 'error':
        if (!this.closing) hooks.emit('warning', `server says: ${s.error.message}`)
        return
      case 'ldm':
        hooks.emit('info', `${s.server} is shutting down (lame duck mode); moving to another server when it goes`)
        return
      case 'staleConnection':
        hooks.emit('warning', `${this.server()} stopped answering pings; reconnecting`)
        return
      case 'slowConsumer':
        hooks.emit('warning', `slow consumer: ${s.pending} messages pending on ${s.sub.getSubject()}`)
        return
      default:
    }
  }
}

/** Wait `ms`, or less when `signal` aborts. */
function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done)
  })
}

/** Why an attempt failed, in a word or two: `refused`, `timed out`, or the client's message. */
function shortReason(err: unknown): string {
  const e = err as Error & { code?: string; cause?: { code?: string } }
  const code = e?.code ?? e?.cause?.code
  if (code === 'ECONNREFUSED' || /connection refused/i.test(e?.message ?? '')) return 'refused'
  if (e?.name === 'TimeoutError' || /timeout/i.test(e?.message ?? '')) return 'timed out'
  return code ?? e?.message ?? String(err)
}

function tlsOptions(c: NatsLinkConfig) {
  const tls: { caFile?: string; certFile?: string; keyFile?: string } = {}
  if (c.ca !== '') tls.caFile = c.ca
  if (c.cert !== '') tls.certFile = c.cert
  if (c.key !== '') tls.keyFile = c.key
  return tls
}

/** One line for a failure of the NATS client, naming the server and what to check. */
export function natsError(stage: string, err: unknown, server: string): FramePipeError {
  if (err instanceof FramePipeError) return err
  const e = err as Error & { code?: string; cause?: unknown }
  const name = e?.name ?? ''
  const cause = e?.cause as (Error & { code?: string }) | undefined
  const text = e?.message ?? String(err)
  const code = e?.code ?? cause?.code
  let message: string
  if (name === 'AuthorizationError' || /authorization violation/i.test(text)) {
    message = `${server} refused the credentials (${text.replace(/^'|'$/g, '')}): check token, user/password, nkey or creds`
  } else if (name === 'UserAuthenticationExpiredError') {
    message = `${server}: the user credentials have expired`
  } else if (code === 'ECONNREFUSED' || /connection refused/i.test(text)) {
    message = `connection refused by ${server} (is nats-server running?)`
  } else if (name === 'TimeoutError' || /timeout/i.test(text)) {
    message = `no answer from ${server} within connectTimeout`
  } else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    message = `unknown host in ${server}`
  } else if (/tls|certificate|self.signed|SSL/i.test(text) || /^ERR_TLS|CERT|SSL/.test(code ?? '')) {
    message = `TLS with ${server} failed: ${text}${/certificate/i.test(text) ? " (give the CA that signed the server's certificate with ca=)" : ''}`
  } else {
    message = `${server}: ${text}`
  }
  return new FramePipeError('ERR_NETWORK', message, { stage, cause: err })
}
