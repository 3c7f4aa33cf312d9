// Frames from an MJPEG stream over HTTP: IP cameras, mjpg-streamer, another
// frame-pipe's `http` sink. A multipart/x-mixed-replace response is cut into
// its JPEG parts; a single-image response (a snapshot URL) gives one frame,
// or one every `every` milliseconds. Lost connections are retried with
// backoff; downstream backpressure pauses the response (and so, through TCP,
// the camera's sending) instead of buffering.

import http, { type ClientRequest, type IncomingMessage } from 'node:http'
import https from 'node:https'
import { Readable } from 'node:stream'
import { FramePipeError, FrameTooLargeError, networkError } from '../../core/errors.js'
import { DEFAULT_CLOCK_SKEW, now, saneTimestamp, sniffFormat, type Frame } from '../../core/frame.js'
import { ReadGate } from '../../core/read-gate.js'
import { boundaryFromContentType, MultipartParser, type PartHeaders } from '../../wire/multipart-parser.js'
import { backoff, describeLoss, type ConnectionEvent } from '../socket.js'
import type { StageContext } from '../../core/stage.js'
import { explainClientTls, type ClientTls } from '../tls.js'

export interface HttpSourceConfig {
  url: string
  reconnect: boolean
  retryMin: number
  retryMax: number
  timeout: number
  maxFrameBytes: number
  every: number
  /** 'user:password' for basic auth, '' = none (or the URL's user:password@). */
  auth?: string
  /** Bearer token, '' = none. */
  token?: string
  /** TLS settings for https:// URLs (ca=, cert=, servername=); null: the defaults. */
  tls?: ClientTls | null
}

/** Redirects followed in a row; one more is an error. */
export const MAX_REDIRECTS = 5

/** The URL to start from, or a one-line error that never shows the credentials. */
function checkUrl(o: HttpSourceConfig, stage: string): URL {
  let url: URL | undefined
  try {
    url = new URL(o.url)
  } catch {
    // Not a URL: said below.
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new FramePipeError('ERR_INVALID_OPTION', `expected an http:// or https:// URL for url but received '${redactUrl(o.url)}'`, {
      stage,
    })
  }
  if ((o.auth ?? '') !== '' && !o.auth!.includes(':')) {
    throw new FramePipeError('ERR_INVALID_OPTION', `expected 'user:password' for auth but received a string without ':'`, { stage })
  }
  return url
}

/** The URL as it may be printed: user:password@ replaced by ***@. */
export function redactUrl(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1***@')
}

export class HttpSource extends Readable {
  private readonly o: HttpSourceConfig
  private readonly ctx: StageContext
  private readonly start: URL
  private target: URL
  private redirects = 0
  private req: ClientRequest | null = null
  private res: IncomingMessage | null = null
  private timer: NodeJS.Timeout | null = null
  private attempt = 0
  private seq = 0
  /** The response is paused while downstream is full. */
  private readonly gate = new ReadGate({
    pause: () => {
      if (this.res) this.hold(this.res)
    },
    resume: () => {
      if (this.res && this.res.isPaused()) {
        this.res.socket?.setTimeout(this.o.timeout)
        this.res.resume()
      }
    },
  })
  private stopping = false
  /** Runs _construct's callback once the first attempt has decided (reconnect off). */
  private first: ((err?: Error | null) => void) | null = null

  constructor(o: HttpSourceConfig, ctx: StageContext) {
    // Checked before the stream exists: a stream that throws once made would still try to connect.
    const url = checkUrl(o, ctx.name)
    // Frames can be megabytes: hold few.
    super({ objectMode: true, highWaterMark: 2 })
    this.o = o
    this.ctx = ctx
    if (url.password !== '') {
      // Said once the pipeline is set up, when the CLI listens for warnings.
      process.nextTick(() =>
        this.emit(
          'warning',
          new FramePipeError(
            'ERR_INVALID_OPTION',
            'the password in url= is on the command line, where other users of this machine can read it (ps): give auth=@FILE or auth=env:NAME instead',
            { stage: ctx.name },
          ),
        ),
      )
    }
    this.start = url
    this.target = url
    ctx.counters.connected = 0
  }

  /** End cleanly after the frames already read. */
  stop(): void {
    if (this.stopping || this.destroyed) return
    this.stopping = true
    this.release()
    this.push(null)
  }

  override _construct(callback: (error?: Error | null) => void): void {
    if (this.stopping) return callback()
    if (this.o.reconnect) {
      callback()
    } else {
      this.first = callback
    }
    this.connect()
  }

  override _read(): void {
    this.gate.read()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.release()
    this.first = null
    callback(err)
  }

  private release(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const req = this.req
    this.req = null
    this.res = null
    req?.destroy()
  }

  /** The Authorization header for `url`: auth= or token=, sent only to the origin of the URL given (never after a redirect elsewhere). */
  private credentials(url: URL): Record<string, string> {
    if (url.origin !== this.start.origin) return {}
    if (this.o.token) return { Authorization: `Bearer ${this.o.token}` }
    if (this.o.auth) return { Authorization: `Basic ${Buffer.from(this.o.auth, 'utf8').toString('base64')}` }
    return {}
  }

  /** A TLS failure explained (untrusted certificate, plain server), else the error as it is. */
  private explain(err: Error, url: URL): Error {
    const reset = (err as NodeJS.ErrnoException).code === 'ECONNRESET' && /before secure TLS connection/.test(err.message)
    if (url.protocol !== 'https:' || !(isTlsRefusal(err) || reset)) return err
    return new Error(explainClientTls(err, url.host, this.o.tls?.servername ?? url.hostname), { cause: err })
  }

  /** Where we connect, without the credentials, for messages. */
  private where(url: URL = this.target): string {
    return `${url.protocol}//${url.host}${url.pathname}${url.search}`
  }

  private connect(): void {
    this.timer = null
    const url = this.target
    const get = url.protocol === 'https:' ? https.get : http.get
    const req = get(url, {
      headers: { 'User-Agent': 'frame-pipe', Accept: 'multipart/x-mixed-replace, image/jpeg, image/*;q=0.8', ...this.credentials(url) },
      timeout: this.o.timeout,
      // A connection of its own: a pooled one may have been made with other TLS settings (another ca=).
      ...(url.protocol === 'https:' ? { ...this.o.tls?.options, agent: false } : undefined),
    })
    this.req = req
    req.on('timeout', () => {
      req.destroy(Object.assign(new Error(`no data for ${this.o.timeout} ms`), { code: 'ETIMEDOUT' }))
    })
    req.on('error', (err) => {
      if (req !== this.req) return
      // After the response began, an error is a lost stream; before, a failed attempt.
      if (this.res) this.lost(req, err)
      else this.failed(networkError(this.ctx.name, this.explain(err, url), this.where()), !isTlsRefusal(err))
    })
    req.on('response', (res) => {
      if (req !== this.req) return res.resume()
      this.respond(req, res)
    })
  }

  private respond(req: ClientRequest, res: IncomingMessage): void {
    const status = res.statusCode ?? 0
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume()
      const next = this.redirect(res.headers.location)
      // A redirect we will not follow is the server's answer, like a 4xx: an error, not retried.
      if (next instanceof FramePipeError) return this.failed(next, false)
      this.redirects++
      this.target = next
      this.req = null
      req.destroy()
      return this.connect()
    }
    if (status < 200 || status >= 300) {
      res.resume()
      const retry = status >= 500 || status === 408 || status === 429
      const advice =
        status === 401
          ? Object.keys(this.credentials(this.target)).length > 0 || this.target.username !== ''
            ? ': wrong credentials (auth=, token=)'
            : ': the server requires credentials: give auth=@FILE (user:password) or token=@FILE'
          : ''
      return this.failed(
        new FramePipeError('ERR_NETWORK', `GET ${this.where()} answered ${status} ${res.statusMessage ?? ''}`.trimEnd() + advice, {
          stage: this.ctx.name,
        }),
        retry,
      )
    }
    const type = (res.headers['content-type'] ?? '').toLowerCase()
    if (type.startsWith('multipart/')) return this.stream(req, res)
    if (type.startsWith('image/')) return this.single(req, res)
    if (type === '' || type.startsWith('application/octet-stream')) return this.sniffBody(req, res, type)
    res.resume()
    this.notMjpeg(type)
  }

  /**
   * Where a redirect leads, or why it is not followed: only http and https
   * (never file:, ftp: …), never from https down to http, at most
   * MAX_REDIRECTS in a row. Credentials in the URL go to its own origin only.
   */
  private redirect(location: string): URL | FramePipeError {
    const refuse = (why: string) =>
      new FramePipeError('ERR_NETWORK', `GET ${this.where()} redirects ${why}; not followed`, { stage: this.ctx.name })
    const shown = JSON.stringify(location.length > 100 ? location.slice(0, 100) + '…' : location)
    if (this.redirects >= MAX_REDIRECTS) return refuse(`a ${MAX_REDIRECTS + 1}th time in a row (to ${shown})`)
    let next: URL
    try {
      next = new URL(location, this.target)
    } catch {
      return refuse(`to a malformed Location ${shown}`)
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') return refuse(`to ${next.protocol} (${shown}): only http and https are`)
    if (this.target.protocol === 'https:' && next.protocol === 'http:') return refuse(`from https down to http (${shown})`)
    if (next.origin !== this.target.origin) {
      next.username = ''
      next.password = ''
    }
    return next
  }

  /**
   * A vague Content-Type (ffmpeg's `-listen 1` server sends octet-stream):
   * the first bytes tell a multipart stream (`--boundary`) from an image.
   */
  private sniffBody(req: ClientRequest, res: IncomingMessage, type: string): void {
    const onData = (chunk: Buffer) => {
      res.off('data', onData)
      res.off('end', onEnd)
      res.pause()
      if (req !== this.req) return
      if (/^\s*--/.test(chunk.toString('latin1', 0, 64))) this.stream(req, res, chunk)
      else if (sniffFormat(chunk) !== 'unknown') this.single(req, res, chunk)
      else this.notMjpeg(type)
    }
    const onEnd = () => {
      res.off('data', onData)
      if (req === this.req) this.notMjpeg(type)
    }
    res.on('data', onData)
    res.once('end', onEnd)
  }

  private notMjpeg(type: string): void {
    this.failed(
      new FramePipeError(
        'ERR_BAD_FRAME',
        `GET ${this.where()} answered with ${type || 'no Content-Type'}, not an MJPEG stream (multipart/x-mixed-replace) or an image`,
        { stage: this.ctx.name },
      ),
      false,
    )
  }

  private connected(res: IncomingMessage): void {
    this.attempt = 0
    this.res = res
    const first = this.first
    this.first = null
    first?.()
    // Polling a snapshot makes a request each time: log the connection once, not per image.
    if (this.ctx.counters.connected === 1) return
    this.ctx.counters.connected = 1
    this.emitEvent('connect', { peer: this.where(), message: `connected to ${this.where()}` })
  }

  /** A multipart response: every part is a frame. */
  private stream(req: ClientRequest, res: IncomingMessage, first?: Buffer): void {
    let warned = false
    const parser = new MultipartParser({
      boundary: boundaryFromContentType(res.headers['content-type']),
      maxFrameBytes: this.o.maxFrameBytes,
      stage: this.ctx.name,
      onPart: (body, headers) => this.part(res, body, headers),
      onCorrupt: (reason) => {
        this.ctx.counters.drops++
        // One warning per connection: a camera that bends the format does so on every frame.
        if (warned) return
        warned = true
        this.emit(
          'warning',
          new FramePipeError('ERR_BAD_FRAME', `stream from ${this.where()}: ${reason} (further ones are only counted in drops)`, {
            stage: this.ctx.name,
          }),
        )
      },
    })
    this.connected(res)
    res.on('data', (chunk: Buffer) => {
      if (res !== this.res) return
      const err = parser.feed(chunk)
      if (err) this.fault(req, err)
    })
    res.on('end', () => {
      if (res !== this.res) return
      if (parser.end() !== undefined || parser.truncated > 0) this.ctx.counters.drops++
      this.lost(req, undefined)
    })
    res.on('error', (err) => {
      if (res === this.res) this.lost(req, err)
    })
    res.on('close', () => {
      if (res === this.res && !res.complete) this.lost(req, new Error('connection closed mid-stream'))
    })
    if (first) {
      const err = parser.feed(first)
      if (err) return this.fault(req, err)
    }
    if (!this.gate.open) this.hold(res)
    else res.resume()
  }

  private part(res: IncomingMessage, body: Buffer, headers: PartHeaders): void {
    // Stopped or lost while the rest of a chunk was being parsed.
    if (res !== this.res) return
    if (body.length === 0) {
      this.ctx.counters.drops++
      return
    }
    this.ctx.counters.frames++
    this.ctx.counters.bytes += body.length
    this.gate.pushed(this.push(this.frame(body, headers)))
  }

  private frame(data: Buffer, headers: PartHeaders): Frame {
    const seqText = headers.get('x-seq')
    const seq = seqText !== undefined && /^\d{1,10}$/.test(seqText) ? Number(seqText) >>> 0 : this.seq
    this.seq = (seq + 1) >>> 0
    return {
      data,
      format: sniffFormat(data),
      width: 0,
      height: 0,
      channels: 0,
      seq,
      timestamp: captureTime(headers.get('x-timestamp')),
      peer: this.where(),
    }
  }

  private hold(res: IncomingMessage): void {
    // Waiting for downstream is not the server going quiet.
    res.socket?.setTimeout(0)
    res.pause()
  }

  /** A single-image response: one frame, then the next fetch after `every`, or the end. */
  private single(req: ClientRequest, res: IncomingMessage, first?: Buffer): void {
    const announced = Number(res.headers['content-length'])
    if (Number.isFinite(announced) && announced > this.o.maxFrameBytes) {
      res.resume()
      return this.failed(new FrameTooLargeError(this.ctx.name, announced, this.o.maxFrameBytes), false)
    }
    const started = performance.now()
    const chunks: Buffer[] = []
    let length = 0
    this.connected(res)
    const add = (chunk: Buffer) => {
      if (res !== this.res) return
      length += chunk.length
      if (length > this.o.maxFrameBytes) {
        chunks.length = 0
        this.fault(
          req,
          new FramePipeError('ERR_FRAME_TOO_LARGE', `the image at ${this.where()} grew past maxFrameBytes (${this.o.maxFrameBytes})`, {
            stage: this.ctx.name,
          }),
        )
        return
      }
      chunks.push(chunk)
    }
    if (first) add(first)
    res.on('data', add)
    res.resume()
    res.on('error', (err) => {
      if (res === this.res) this.lost(req, err)
    })
    res.on('close', () => {
      if (res !== this.res) return
      if (!res.complete) return this.lost(req, new Error('connection closed mid-image'))
      this.res = null
      this.req = null
      const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length)
      if (data.length > 0) {
        this.ctx.counters.frames++
        this.ctx.counters.bytes += data.length
        this.push(
          this.frame(
            data,
            new Map([
              ['x-timestamp', (res.headers['x-timestamp'] as string) ?? ''],
              ['x-seq', (res.headers['x-seq'] as string) ?? ''],
            ]),
          ),
        )
      }
      if (this.o.every <= 0) {
        this.ctx.counters.connected = 0
        this.stopping = true
        this.push(null)
        return
      }
      this.redirects = 0
      this.target = this.start
      this.timer = setTimeout(() => this.connect(), Math.max(0, this.o.every - (performance.now() - started)))
    })
  }

  /** The server's bytes are bad (a part over maxFrameBytes, a broken multipart): that connection ends, and is retried with reconnect. */
  private fault(req: ClientRequest, err: FramePipeError): void {
    if (req !== this.req) return
    this.ctx.counters.badPeers = (this.ctx.counters.badPeers ?? 0) + 1
    this.lost(req, err)
  }

  private lost(req: ClientRequest, err: Error | undefined): void {
    if (req !== this.req) return
    this.req = null
    this.res = null
    req.destroy()
    this.ctx.counters.connected = 0
    const reason = err instanceof FramePipeError ? err.message.replace(`${this.ctx.name}: `, '') : describeLoss(err)
    this.emitEvent('disconnect', { peer: this.where(), reason, message: `disconnected from ${this.where()} (${reason})` })
    if (this.stopping) return
    if (!this.o.reconnect) {
      if (err instanceof FramePipeError) this.destroy(err)
      else if (err)
        this.destroy(
          new FramePipeError('ERR_NETWORK', `connection to ${this.where()} failed: ${err.message}`, { stage: this.ctx.name, cause: err }),
        )
      else this.push(null)
      return
    }
    this.retry(`lost ${this.where()} (${reason})`)
  }

  /** A request that did not give a stream: an error, or a retry when that makes sense. */
  private failed(err: FramePipeError, retryable: boolean): void {
    const req = this.req
    this.req = null
    this.res = null
    req?.destroy()
    this.ctx.counters.connected = 0
    if (this.stopping || this.destroyed) return
    const first = this.first
    this.first = null
    if (first) return first(err)
    if (!this.o.reconnect || !retryable) return void this.destroy(err)
    this.retry(err.message.replace(`${this.ctx.name}: `, ''))
  }

  private retry(reason: string): void {
    this.redirects = 0
    this.target = this.start
    const delay = backoff(this.attempt++, this.o.retryMin, this.o.retryMax)
    this.emitEvent('retry', { peer: this.where(), reason, delay, message: `${reason}; retrying in ${delay} ms` })
    this.timer = setTimeout(() => this.connect(), delay)
  }

  private emitEvent(name: 'connect' | 'disconnect' | 'retry', event: ConnectionEvent): void {
    this.emit(name, event)
  }
}

/** A TLS handshake failure (certificate, protocol): retrying does not help. */
function isTlsRefusal(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code ?? ''
  return code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || /CERT|SELF_SIGNED|UNABLE_TO_/.test(code)
}

/**
 * The capture time a part carries in X-Timestamp (seconds since the epoch, as
 * mjpg-streamer and the http sink send it), else now. mjpg-streamer may send
 * a monotonic clock instead, and a peer's clock must not name or rotate
 * recordings: anything more than an hour off (DEFAULT_CLOCK_SKEW) is ignored.
 */
function captureTime(text: string | undefined): number {
  const t = now()
  if (!text) return t
  return saneTimestamp(Number(text) * 1000, t, DEFAULT_CLOCK_SKEW)
}
