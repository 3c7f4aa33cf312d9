// Watch a frame stream in the browser, or in anything that reads MJPEG over
// HTTP (VLC, ffplay, GStreamer, OpenCV, another frame-pipe):
//
//   /              a live page: the picture and its numbers
//   /stream.mjpg   multipart/x-mixed-replace MJPEG
//   /snapshot.jpg  the latest frame
//   /stats         fps, size, bytes/s, drops, viewers, latency as JSON
//   /state         the same in µStreamer's shape; /metrics for Prometheus
//   (and mjpg-streamer's and µStreamer's URLs for the stream and snapshot: routes.ts)
//
// Each viewer has its own small queue: a slow one gets the newest frame when
// it falls behind, and never slows the source or the other viewers. The wire
// layout is mjpg-streamer's (boundary right after each JPEG), so browsers
// show a frame as soon as it arrives instead of when the next one starts.

import { readFile } from 'node:fs/promises'
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { Transform, type TransformCallback } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { FramePipeError } from '../../core/errors.js'
import { expectFrame, fromPeer, rejectFrame } from '../../core/checks.js'
import { stageWarnings } from '../../core/warnings.js'
import { now, sniffFormat, type Frame } from '../../core/frame.js'
import { jpegSize } from '../../wire/jpeg.js'
import { FanOut, type FanClient } from '../fanout.js'
import { describeLoss, formatAddress } from '../socket.js'
import { StageServer } from '../server.js'
import { HttpGate } from './auth.js'
import { explainTlsOnPlainHttp, secureHttpServer } from './tls.js'
import type { ServerTls } from '../tls.js'
import { passOn, pipelineOf, RELEASE_HELD, type StageContext } from '../../core/stage.js'
import { LATENCY, SlidingStats, type LatencySummary } from '../../core/stats.js'
import { ROUTE_LIST, routeOf, ustreamerState } from './routes.js'
import { METRICS_CONTENT_TYPE, prometheusText } from './metrics.js'

export interface HttpSinkConfig {
  host: string
  port: number
  auth: string
  /** Bearer token, '' = none. */
  token: string
  /** Comma-separated paths served without credentials. */
  public: string
  /** Comma-separated extra names for the Host check, '*' = no check. */
  allowedHosts: string
  maxQueue: number
  maxViewers: number
  lazy: boolean
  linger: number
  /** HTTPS (src/net/tls.ts); null: plain HTTP. */
  tls?: ServerTls | null
  handshakeTimeout?: number
  maxConnections: number
  maxPerAddress: number
  headerTimeout: number
  idleTimeout: number
  sendTimeout: number
}

/** The JSON of /stats. */
export interface ViewerStats {
  /** Frames per second arriving at the sink, over the last second. */
  fps: number
  width: number
  height: number
  /** JPEG bytes per second arriving at the sink. */
  bytesPerSec: number
  /** Frames received since the start. */
  frames: number
  /** Frames dropped for slow viewers since the start. */
  drops: number
  /** Viewers of /stream.mjpg now. */
  viewers: number
  /** now − capture timestamp of the frames of the last second, when they are sent on: mean, max, p50/p95/p99 (ms). */
  latencyMs: LatencySummary | null
  /** Seconds since the server started. */
  uptime: number
  /** Sequence number of the latest frame, -1 before the first. */
  seq: number
  /** Size in bytes of the latest frame. */
  frameBytes: number
  /** Lazy mode and no viewer: the source is paused. */
  paused: boolean
  /** One entry per viewer: frames sent and dropped, seconds connected. */
  clients: { peer: string; sent: number; drops: number; queued: number; seconds: number }[]
}

/** What 'listening' carries: the bound address and the viewer's URL. */
export interface HttpListening extends AddressInfo {
  url: string
}

const BOUNDARY = 'frame-pipe-boundary'
const FIRST_DELIMITER = Buffer.from(`--${BOUNDARY}\r\n`)
/** Sent right after each JPEG: a browser shows a part once it sees the next boundary. */
const AFTER_PART = Buffer.from(`\r\n--${BOUNDARY}\r\n`)
const NO_CACHE = 'no-cache, no-store, must-revalidate, max-age=0'

/** One frame ready to send: its part header is made once and shared by every viewer. */
interface Part {
  frame: Frame
  header: Buffer
}

interface Viewer extends FanClient<Part> {
  res: ServerResponse
  /** For /state's clients_stat. */
  id: number
  peer: string
  since: number
  /** The response is above its highWaterMark: wait for 'drain'. */
  blocked: boolean
}

export class HttpSink extends Transform {
  private readonly o: HttpSinkConfig
  private readonly ctx: StageContext
  /** The Host check and credentials (./auth.ts). */
  private readonly gate: HttpGate
  private readonly server: StageServer<Server>
  private page: Buffer | Error | undefined
  private readonly fan: FanOut<Part, Viewer>
  private readonly viewers: Set<Viewer>
  private latest: Part | null = null
  private width = 0
  private height = 0
  private readonly window = new SlidingStats(1000, performance.now())
  private startedAt = 0
  private lastFrameAt = -Infinity
  private viewerIds = 0
  /** Lazy mode: the frame held until a viewer comes. */
  private held: (() => void) | null = null
  private released = false
  private ending = false
  /** Open connections by remote address (maxPerAddress). */
  private readonly perAddress = new Map<string, number>()
  private readonly warn: ReturnType<typeof stageWarnings>

  constructor(o: HttpSinkConfig, ctx: StageContext) {
    // Made before the stream exists: a bad option throws before the server is scheduled to start.
    const warnings = { emit: (_message: string): void => undefined }
    const gate = new HttpGate({ ...o, certNames: o.tls?.names ?? [] }, ctx.name, {
      counters: ctx.counters,
      warn: (message) => warnings.emit(message),
    })
    // Frames can be megabytes: hold few.
    super({ objectMode: true, highWaterMark: 2 })
    warnings.emit = (message) => this.emit('warning', new FramePipeError('ERR_NETWORK', message, { stage: ctx.name }))
    this.gate = gate
    this.o = o
    this.ctx = ctx
    this.warn = stageWarnings(this, ctx.name)
    ctx.counters.connections = 0
    this.server = new StageServer<Server>(this, ctx.name)
    this.fan = new FanOut<Part, Viewer>({
      server: this.server,
      maxQueue: o.maxQueue,
      linger: o.linger,
      sendTimeout: o.sendTimeout,
      counters: ctx.counters,
      grace: 'short',
      ready: (v) => !v.blocked,
      write: (v, { frame, header }) => {
        const { res } = v
        // One writev per frame; the part header and the JPEG are never joined.
        res.cork()
        res.write(header)
        res.write(frame.data)
        const ok = res.write(AFTER_PART)
        res.uncork()
        if (!ok) v.blocked = true
        return header.length + frame.data.length + AFTER_PART.length
      },
      left: (v, reason) => {
        if (!v.res.writableFinished) v.res.destroy()
        this.server.client({ event: 'leave', peer: v.peer, reason, drops: v.drops })
      },
    })
    this.viewers = this.fan.clients
  }

  /** The bound address once listening (port 0 picks one), else null. */
  address(): AddressInfo | null {
    return this.server.address()
  }

  /** The viewer page's URL once listening (a wildcard host is shown as loopback), else null. */
  url(): string | null {
    const a = this.address()
    if (!a) return null
    const host = a.address === '0.0.0.0' ? '127.0.0.1' : a.address === '::' ? '::1' : a.address
    return `${this.o.tls ? 'https' : 'http'}://${formatAddress(host, a.port)}/`
  }

  /**
   * Stop waiting for viewers (lazy): from now on frames are taken, and
   * dropped, even when nobody watches. A source stopped while the sink holds
   * its frame cannot drain otherwise: call this with stopSource() (the CLI
   * does on Ctrl-C).
   */
  release(): void {
    this.released = true
    const held = this.held
    this.held = null
    held?.()
  }

  /** stopPipeline's hook (see RELEASE_HELD). */
  [RELEASE_HELD](): void {
    this.release()
  }

  /** For the CLI's status line and `--json` (see LATENCY). */
  [LATENCY](): LatencySummary | null {
    return this.window.snapshot(performance.now()).latencyMs
  }

  /** The numbers of /stats. */
  stats(): ViewerStats {
    const s = this.window.snapshot(performance.now())
    const t = performance.now()
    return {
      fps: round(s.fps),
      width: this.width,
      height: this.height,
      bytesPerSec: Math.round(s.bytesPerSec),
      frames: this.ctx.counters.frames,
      drops: this.ctx.counters.drops,
      viewers: this.viewers.size,
      latencyMs: s.latencyMs && roundLatency(s.latencyMs),
      uptime: this.startedAt > 0 ? round((t - this.startedAt) / 1000) : 0,
      seq: this.latest ? this.latest.frame.seq : -1,
      frameBytes: this.latest ? this.latest.frame.data.length : 0,
      paused: this.held !== null,
      clients: [...this.viewers].map((v) => ({
        peer: v.peer,
        sent: v.sent,
        drops: v.drops,
        queued: v.queue.length,
        seconds: round((t - v.since) / 1000),
      })),
    }
  }

  override _construct(callback: (error?: Error | null) => void): void {
    loadPage().then((page) => {
      this.page = page
      if (this.destroyed) return callback()
      const server = http.createServer(
        {
          // A request is its head (GET has no body): it must come whole within headerTimeout, from connecting on.
          headersTimeout: this.o.headerTimeout,
          requestTimeout: this.o.headerTimeout,
          keepAliveTimeout: this.o.idleTimeout,
          // How often Node checks those timeouts (30 s by default): a fraction of the timeout.
          connectionsCheckingInterval: Math.max(50, Math.min(1000, this.o.headerTimeout / 4)),
        },
        (req, res) => {
          // A response nobody reads (a big snapshot) must not hold its connection for good; stream() lifts this.
          if (this.o.sendTimeout > 0) res.setTimeout(this.o.sendTimeout)
          this.route(req, res)
        },
      )
      const refused = (peer: string, why: string) => this.server.refuse(peer, why)
      // Before the admitting listener: that one sees (and caps) the raw connections, HTTP the TLS ones.
      if (this.o.tls) secureHttpServer(server, this.o.tls, this.o.handshakeTimeout ?? 5000, refused)
      else explainTlsOnPlainHttp(server, refused)
      server.on('connection', (socket: Socket) => this.admit(socket))
      this.server.listen(server, this.o.host, this.o.port, callback, (address) => {
        this.startedAt = performance.now()
        if (this.gate.guarded && !this.o.tls && !isLoopback(address.address))
          process.nextTick(() =>
            this.emit(
              'warning',
              new FramePipeError(
                'ERR_NETWORK',
                `credentials (auth=, token=) cross the network in cleartext on plain http://${formatAddress(address.address, address.port)}: give cert= and key= to serve https (frame-pipe cert makes a pair)`,
                { stage: this.ctx.name },
              ),
            ),
          )
        return { ...address, url: this.url()! } satisfies HttpListening
      })
    }, callback)
  }

  override _transform(record: unknown, encoding: BufferEncoding, callback: TransformCallback): void {
    const chunk = expectFrame(this.ctx.name, record)
    if (chunk instanceof FramePipeError) return callback(chunk)
    if (sniffFormat(chunk.data) !== 'jpeg') {
      const size = chunk.width > 0 ? ` ${chunk.width}x${chunk.height}` : ''
      const err = new FramePipeError(
        'ERR_BAD_FRAME',
        `expected JPEG frames but received a ${chunk.format}${size} frame of ${chunk.data.length} bytes (seq ${chunk.seq}): insert jpeg before http`,
        { stage: this.ctx.name },
      )
      // A peer's frame costs that frame; a local one is a pipeline without its jpeg stage.
      if (!fromPeer(chunk)) return callback(err)
      rejectFrame(this.ctx.counters, this.warn, chunk, err)
      return callback()
    }
    if (this.o.lazy && !this.released && this.viewers.size === 0) {
      this.held = () => this._transform(chunk, encoding, callback)
      return
    }
    const part: Part = { frame: chunk, header: partHeader(chunk) }
    this.latest = part
    if (chunk.width > 0 && chunk.height > 0) {
      this.width = chunk.width
      this.height = chunk.height
    } else {
      const size = jpegSize(chunk.data)
      if (size) {
        this.width = size.width
        this.height = size.height
      }
    }
    this.lastFrameAt = performance.now()
    this.window.add(this.lastFrameAt, chunk.data.length, Number.isFinite(chunk.timestamp) ? now() - chunk.timestamp : undefined)
    this.ctx.counters.frames++
    for (const viewer of this.viewers) this.fan.offer(viewer, part)
    passOn(this, chunk)
    this.fan.proceed(callback)
  }

  override _flush(callback: TransformCallback): void {
    this.ending = true
    this.fan.flush((v) => v.res.end(), callback)
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.held = null
    this.latest = null
    this.fan.destroy()
    callback(err)
  }

  /**
   * A new connection: kept, or closed when maxConnections are open or its
   * address has maxPerAddress already (so idle connections cannot take every
   * file descriptor of the process, or one host every slot).
   */
  private admit(socket: Socket): void {
    const address = socket.remoteAddress ?? '?'
    const peer = formatAddress(address, socket.remotePort ?? 0)
    const open = this.server.sockets.size
    if (open >= this.o.maxConnections) return this.server.refuse(peer, `already ${open} connections (maxConnections)`, socket)
    const mine = this.perAddress.get(address) ?? 0
    if (mine >= this.o.maxPerAddress) {
      return this.server.refuse(peer, `already ${mine} connections from ${address} (maxPerAddress)`, socket)
    }
    this.perAddress.set(address, mine + 1)
    this.server.track(socket)
    this.ctx.counters.connections = this.server.sockets.size
    socket.once('close', () => {
      const n = (this.perAddress.get(address) ?? 1) - 1
      if (n > 0) this.perAddress.set(address, n)
      else this.perAddress.delete(address)
      this.ctx.counters.connections = this.server.sockets.size
    })
  }

  // ------------------------------------------------------------- routes

  private route(req: IncomingMessage, res: ServerResponse): void {
    if (!this.gate.admit(req, res, (req.url ?? '/').split('?')[0]!)) return
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain; charset=utf-8', Allow: 'GET, HEAD' })
      res.end(`${req.method} is not supported: use GET\n`)
      return
    }
    const { route, path } = routeOf(req.url ?? '/')
    switch (route) {
      case 'stream':
        return this.stream(req, res)
      case 'snapshot':
        return this.snapshot(req, res)
      case 'stats':
        return this.sendText(req, res, 200, 'application/json', JSON.stringify(this.stats()) + '\n')
      case 'state':
        return this.sendText(req, res, 200, 'application/json', JSON.stringify(this.state()) + '\n')
      case 'metrics':
        return this.sendText(req, res, 200, METRICS_CONTENT_TYPE, this.metrics())
      case 'page':
        return this.sendPage(req, res)
      default:
        return this.sendText(req, res, 404, 'text/plain; charset=utf-8', `not found: ${path}; try ${ROUTE_LIST}\n`)
    }
  }

  /** µStreamer's /state (routes.ts). A source that sent nothing for 2 s counts as offline. */
  private state(): unknown {
    const t = performance.now()
    return ustreamerState({
      width: this.width,
      height: this.height,
      online: !this.ending && t - this.lastFrameAt < 2000,
      fps: this.window.snapshot(t).fps,
      viewers: [...this.viewers].map((v) => ({ id: v.id, sent: v.sent, seconds: (t - v.since) / 1000 })),
    })
  }

  /** /metrics: this sink's numbers and every stage of its pipeline (metrics.ts). */
  private metrics(): string {
    const s = this.stats()
    return prometheusText(
      {
        frames: s.frames,
        bytes: this.window.snapshot(performance.now()).bytes,
        sentBytes: this.ctx.counters.bytes,
        drops: s.drops,
        viewers: s.viewers,
        fps: s.fps,
        uptime: s.uptime,
        width: s.width,
        height: s.height,
        latency: this[LATENCY](),
        latencyTotals: this.window.latencyTotals(),
      },
      pipelineOf(this),
    )
  }

  private sendPage(req: IncomingMessage, res: ServerResponse): void {
    const page = this.page
    if (!Buffer.isBuffer(page)) {
      return this.sendText(
        req,
        res,
        500,
        'text/plain; charset=utf-8',
        `the viewer page is missing from the package (${page?.message ?? 'not loaded'}); /stream.mjpg still works\n`,
      )
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': page.length, 'Cache-Control': NO_CACHE })
    res.end(req.method === 'HEAD' ? undefined : page)
  }

  private snapshot(req: IncomingMessage, res: ServerResponse): void {
    const part = this.latest
    if (!part) {
      res.setHeader('Retry-After', '1')
      return this.sendText(req, res, 503, 'text/plain; charset=utf-8', 'no frame yet: the source has not produced one\n')
    }
    const { frame } = part
    res.writeHead(200, {
      'Content-Type': 'image/jpeg',
      'Content-Length': frame.data.length,
      'Cache-Control': NO_CACHE,
      'X-Timestamp': (frame.timestamp / 1000).toFixed(6),
      'X-Seq': String(frame.seq),
    })
    res.end(req.method === 'HEAD' ? undefined : frame.data)
  }

  private sendText(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string): void {
    const bytes = Buffer.from(body)
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': bytes.length, 'Cache-Control': NO_CACHE })
    res.end(req.method === 'HEAD' ? undefined : bytes)
  }

  private stream(req: IncomingMessage, res: ServerResponse): void {
    const peer = formatAddress(req.socket.remoteAddress ?? '?', req.socket.remotePort ?? 0)
    if (this.ending) {
      return this.sendText(req, res, 503, 'text/plain; charset=utf-8', 'the stream has ended\n')
    }
    if (this.viewers.size >= this.o.maxViewers) {
      this.server.refuse(peer, `already ${this.viewers.size} viewers (maxViewers)`)
      return this.sendText(req, res, 503, 'text/plain; charset=utf-8', `too many viewers (maxViewers=${this.o.maxViewers})\n`)
    }
    // A raw body (no chunked encoding) is what mjpg-streamer sends and every MJPEG reader takes.
    res.removeHeader('Transfer-Encoding')
    res.writeHead(200, {
      'Content-Type': `multipart/x-mixed-replace; boundary=${BOUNDARY}`,
      'Cache-Control': NO_CACHE,
      Pragma: 'no-cache',
      Connection: 'close',
    })
    if (req.method === 'HEAD') return void res.end()
    // A stream may be quiet for long (a paused source); a viewer that does not read is cut by the fan-out's sendTimeout.
    res.setTimeout(0)
    req.socket.setNoDelay(true)
    res.write(FIRST_DELIMITER)
    const viewer: Viewer = {
      res,
      id: ++this.viewerIds,
      peer,
      queue: [],
      sent: 0,
      drops: 0,
      since: performance.now(),
      blocked: false,
      gone: false,
    }
    res.on('drain', () => {
      viewer.blocked = false
      this.fan.pump(viewer)
    })
    res.on('close', () => this.fan.remove(viewer, res.writableFinished ? 'end' : 'closed'))
    res.on('error', (err) => this.fan.remove(viewer, describeLoss(err)))
    this.fan.add(viewer)
    this.server.client({ event: 'join', peer })
    if (this.held) {
      const release = this.held
      this.held = null
      release()
    } else if (this.latest) {
      // The picture at once, not at the next frame (a slow source may take seconds).
      this.fan.offer(viewer, this.latest)
    }
  }
}

function partHeader(frame: Frame): Buffer {
  return Buffer.from(
    `Content-Type: image/jpeg\r\nContent-Length: ${frame.data.length}\r\n` +
      `X-Timestamp: ${(frame.timestamp / 1000).toFixed(6)}\r\nX-Seq: ${frame.seq}\r\n\r\n`,
    'latin1',
  )
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address === '::ffff:127.0.0.1'
}

function round(n: number): number {
  return Math.round(n * 100) / 100
}

function roundLatency(l: LatencySummary): LatencySummary {
  return { mean: round(l.mean), max: round(l.max), p50: round(l.p50), p95: round(l.p95), p99: round(l.p99) }
}

/**
 * The viewer page ships in the package's assets folder: three levels up from
 * src/net/http (tsx), four from dist/src/net/http (built).
 */
async function loadPage(): Promise<Buffer | Error> {
  const candidates = ['../../../assets/viewer.html', '../../../../assets/viewer.html'].map((p) =>
    fileURLToPath(new URL(p, import.meta.url)),
  )
  for (const path of candidates) {
    try {
      return await readFile(path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return err as Error
    }
  }
  return new Error(`not found at ${candidates.join(' or ')}`)
}
