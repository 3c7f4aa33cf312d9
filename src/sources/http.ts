// The http source: its options, spec and factory. The engine is src/net/http/client.ts.

import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { HttpSource } from '../net/http/client.js'
import { InvalidOptionError } from '../core/errors.js'
import { clientTls, clientTlsOptions, type ClientTlsOptions } from '../net/tls.js'
import type { ConnectionEvents, WarningEvents } from '../net/events.js'

export interface HttpSourceOptions extends Partial<Omit<ClientTlsOptions, 'tls'>> {
  /** http:// or https:// URL of a multipart/x-mixed-replace stream (e.g. …/stream.mjpg) or of a single image; user:password@ in it is sent as basic auth (but shows in ps: prefer auth=), and never printed (required) */
  url: string
  /** HTTP basic auth as 'user:password' (@FILE or env:NAME); sent only to the URL's own origin (the secret, @FILE or env:NAME; default (none)) */
  auth?: string
  /** Send 'Authorization: Bearer <token>' (@FILE or env:NAME); sent only to the URL's own origin (the secret, @FILE or env:NAME; default (none)) */
  token?: string
  /** Retry a failed or lost connection with backoff from retryMin to retryMax (4xx answers other than 408/429 stay errors); off: a failure is an error and the server ending the stream ends it (default true) */
  reconnect?: boolean
  /** First delay before a retry; doubles on each failure (milliseconds; default 250ms) */
  retryMin?: number
  /** Longest delay between retries (milliseconds; default 5s) */
  retryMax?: number
  /** Give up on a connection that has sent nothing for this long (connecting included) (milliseconds; default 10s) */
  timeout?: number
  /** Largest frame accepted; a bigger Content-Length, or a part that grows past it before its boundary, is an error raised before memory is set aside (bytes; default 16MiB) */
  maxFrameBytes?: number
  /** For a URL that answers with one image (a snapshot): fetch it again this often; 0: fetch it once and end (milliseconds; default 0s) */
  every?: number
}

/** Events of the http source (see core/events.ts). */
export type HttpSourceEvents = ConnectionEvents & WarningEvents

export const spec = defineStage<HttpSourceOptions, HttpSource>({
  name: 'http',
  kind: 'source',
  input: null,
  output: 'frames',
  description: 'Read JPEG frames from an MJPEG stream (or a snapshot URL) over HTTP',
  options: {
    url: {
      type: 'string',
      required: true,
      doc: 'http:// or https:// URL of a multipart/x-mixed-replace stream (e.g. …/stream.mjpg) or of a single image; user:password@ in it is sent as basic auth (but shows in ps: prefer auth=), and never printed',
    },
    auth: {
      type: 'secret',
      default: '',
      doc: "HTTP basic auth as 'user:password' (@FILE or env:NAME); sent only to the URL's own origin",
    },
    token: {
      type: 'secret',
      default: '',
      doc: "Send 'Authorization: Bearer <token>' (@FILE or env:NAME); sent only to the URL's own origin",
    },
    reconnect: {
      type: 'boolean',
      default: true,
      doc: 'Retry a failed or lost connection with backoff from retryMin to retryMax (4xx answers other than 408/429 stay errors); off: a failure is an error and the server ending the stream ends it',
    },
    retryMin: { type: 'duration', min: 1, default: 250, doc: 'First delay before a retry; doubles on each failure' },
    retryMax: { type: 'duration', min: 1, default: 5000, doc: 'Longest delay between retries' },
    timeout: {
      type: 'duration',
      min: 1,
      default: 10_000,
      doc: 'Give up on a connection that has sent nothing for this long (connecting included)',
    },
    maxFrameBytes: {
      type: 'size',
      min: 1,
      default: 16 * 2 ** 20,
      doc: 'Largest frame accepted; a bigger Content-Length, or a part that grows past it before its boundary, is an error raised before memory is set aside',
    },
    every: {
      type: 'duration',
      min: 0,
      default: 0,
      doc: 'For a URL that answers with one image (a snapshot): fetch it again this often; 0: fetch it once and end',
    },
    ...clientTlsOptions(false),
  },
  faults:
    'a part over maxFrameBytes or a broken multipart stream ends that connection (counted in badPeers) and, with reconnect, it is retried with backoff; without reconnect it is an error. Redirects are followed to http and https only, never from https down to http, at most 5 in a row, credentials to their own origin only; another redirect is an error. Timestamps (X-Timestamp) more than 1 h from our clock are replaced by the arrival time',
  create(o, ctx) {
    const https = /^https:/i.test(o.url)
    if (!https) {
      const given = (['ca', 'cert', 'key', 'keyPassphrase', 'servername'] as const).find((k) => o[k] !== '')
      if (given) throw new InvalidOptionError(ctx.name, given, `${given}= is for https:// URLs, and url= is not one`)
    }
    let host = ''
    try {
      host = new URL(o.url).hostname.replace(/^\[|\]$/g, '')
    } catch {
      // A bad URL: the engine says so.
    }
    return new HttpSource({ ...o, tls: https ? clientTls(o, host, ctx.name, true) : null }, ctx)
  },
})

export const httpSource = stageFactory<HttpSourceOptions, HttpSource, HttpSourceEvents>(spec)
