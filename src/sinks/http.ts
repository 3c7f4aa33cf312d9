// The http sink: its options, spec and factory. The engine is src/net/http/viewer.ts.

import { hostOption, lingerOption, portOption, sendTimeoutOption } from '../net/options.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { HttpSink } from '../net/http/viewer.js'
import { serverTls, serverTlsOptions, type ServerTlsOptions } from '../net/tls.js'
import type { ClientEvent } from '../net/socket.js'
import type { HttpListening } from '../net/http/viewer.js'

export type { HttpListening, ViewerStats } from '../net/http/viewer.js'

export interface HttpSinkOptions extends Partial<ServerTlsOptions> {
  /** Address to listen on; 0.0.0.0 accepts other machines (default 127.0.0.1) */
  host?: string
  /** Port to listen on; 0 picks a free one (see the listening event and url()) (default 8080) */
  port?: number
  /** Require HTTP basic auth on every route but public=, given as 'user:password' (@FILE or env:NAME keep it off the command line); '' = open. Serve https (cert=) beyond this machine: basic auth is cleartext (the secret, @FILE or env:NAME; default (none)) */
  auth?: string
  /** Require 'Authorization: Bearer <token>' on every route but public= (for programs: curl -H, ffmpeg -headers, the http source's token=); with auth= either passes (the secret, @FILE or env:NAME; default (none)) */
  token?: string
  /** Comma-separated paths served without credentials when auth= or token= guards the rest, e.g. public=/stats (default '') */
  public?: string
  /** Host names (comma-separated) accepted in the Host header besides IP addresses, localhost, the bound name and the certificate's names; others get 403 (against DNS rebinding); '*' = any (default '') */
  allowedHosts?: string
  /** Frames queued per viewer; when a slow viewer's queue is full its oldest frame is dropped (counted in drops), so it always gets the newest (default 2) */
  maxQueue?: number
  /** Streams served at once; more get 503 and are logged (default 64) */
  maxViewers?: number
  /** With no viewer, hold the next frame (backpressure) so the source pauses; the first viewer releases it. Pair with camera idle= to stop the camera between viewers (default false) */
  lazy?: boolean
  /** At the end, how long viewers get to receive their queued frames before their connections close (milliseconds; default 2s) */
  linger?: number
  /** HTTPS: a client must finish the TLS handshake within this long after connecting, else it is turned away (logged) (milliseconds; default 5s) */
  handshakeTimeout?: number
  /** Connections open at once, streams, page loads and idle ones alike; more are closed at once and logged (so idle connections cannot use up the process’s file descriptors) (default 128) */
  maxConnections?: number
  /** Connections open at once from one remote address; more are closed at once and logged (default 32) */
  maxPerAddress?: number
  /** A connection must send a whole request head within this long of connecting (or of its previous request); else 408 and closed (milliseconds; default 10s) */
  headerTimeout?: number
  /** A kept-alive connection with no request for this long is closed (milliseconds; default 5s) */
  idleTimeout?: number
  /** A viewer of /stream.mjpg whose connection takes nothing for this long (it does not read) is cut off and counted in stalled, freeing its place under maxViewers; 0 = never (milliseconds; default 10s) */
  sendTimeout?: number
}

/** Events of the http sink (see core/events.ts): 'listening' carries the viewer's URL. */
export interface HttpSinkEvents {
  listening: HttpListening
  client: ClientEvent
}

export const spec = defineStage<HttpSinkOptions, HttpSink>({
  name: 'http',
  kind: 'sink',
  input: 'frames',
  output: 'frames',
  description: 'Serve JPEG frames over HTTP: a live viewer page, MJPEG stream, snapshot and stats',
  passes: 'each frame once it is queued to every viewer',
  options: {
    host: hostOption(),
    port: portOption(8080, 'Port to listen on; 0 picks a free one (see the listening event and url())'),
    auth: {
      type: 'secret',
      default: '',
      doc: "Require HTTP basic auth on every route but public=, given as 'user:password' (@FILE or env:NAME keep it off the command line); '' = open. Serve https (cert=) beyond this machine: basic auth is cleartext",
    },
    token: {
      type: 'secret',
      default: '',
      doc: "Require 'Authorization: Bearer <token>' on every route but public= (for programs: curl -H, ffmpeg -headers, the http source's token=); with auth= either passes",
    },
    public: {
      type: 'string',
      default: '',
      doc: 'Comma-separated paths served without credentials when auth= or token= guards the rest, e.g. public=/stats',
    },
    allowedHosts: {
      type: 'string',
      default: '',
      doc: "Host names (comma-separated) accepted in the Host header besides IP addresses, localhost, the bound name and the certificate's names; others get 403 (against DNS rebinding); '*' = any",
    },
    maxQueue: {
      type: 'int',
      min: 1,
      default: 2,
      doc: "Frames queued per viewer; when a slow viewer's queue is full its oldest frame is dropped (counted in drops), so it always gets the newest",
    },
    maxViewers: { type: 'int', min: 1, default: 64, doc: 'Streams served at once; more get 503 and are logged' },
    lazy: {
      type: 'boolean',
      default: false,
      doc: 'With no viewer, hold the next frame (backpressure) so the source pauses; the first viewer releases it. Pair with camera idle= to stop the camera between viewers',
    },
    linger: lingerOption('At the end, how long viewers get to receive their queued frames before their connections close'),
    ...serverTlsOptions(),
    handshakeTimeout: {
      type: 'duration',
      min: 1,
      default: 5000,
      doc: 'HTTPS: a client must finish the TLS handshake within this long after connecting, else it is turned away (logged)',
    },
    maxConnections: {
      type: 'int',
      min: 1,
      default: 128,
      doc: 'Connections open at once, streams, page loads and idle ones alike; more are closed at once and logged (so idle connections cannot use up the process’s file descriptors)',
    },
    maxPerAddress: {
      type: 'int',
      min: 1,
      default: 32,
      doc: 'Connections open at once from one remote address; more are closed at once and logged',
    },
    headerTimeout: {
      type: 'duration',
      min: 1,
      default: 10_000,
      doc: 'A connection must send a whole request head within this long of connecting (or of its previous request); else 408 and closed',
    },
    idleTimeout: {
      type: 'duration',
      min: 1,
      default: 5000,
      doc: 'A kept-alive connection with no request for this long is closed',
    },
    sendTimeout: sendTimeoutOption(
      'A viewer of /stream.mjpg whose connection takes nothing for this long (it does not read) is cut off and counted in stalled, freeing its place under maxViewers; 0 = never',
    ),
  },
  faults:
    'each viewer has its own queue: a slow one skips to the newest frame, one that takes nothing for sendTimeout is cut off (stalled); connections are capped in all (maxConnections) and per address (maxPerAddress), slow or idle ones are closed (headerTimeout, idleTimeout); bad requests get 4xx. A frame from a network peer that is not a JPEG is dropped and counted in rejected; one made in this process is an error (insert jpeg). Failing to listen ends the pipeline',
  create(o, ctx) {
    return new HttpSink({ ...o, tls: serverTls(o, ctx.name) }, ctx)
  },
})

export const httpSink = stageFactory<HttpSinkOptions, HttpSink, HttpSinkEvents>(spec)
