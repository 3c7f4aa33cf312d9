// The tcp-client source: its options, spec and factory. The engine is src/net/tcp/client-source.ts.

import { serverHostOption, serverPortOption } from '../net/options.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { TcpClientSource } from '../net/tcp/client-source.js'
import { clientSecurity, clientSecurityOptions, type ClientSecurityOptions } from '../net/security.js'
import type { ConnectionEvents } from '../net/events.js'

export interface TcpClientSourceOptions extends Partial<ClientSecurityOptions> {
  /** Server to connect to (default 127.0.0.1) */
  host?: string
  /** Server port (required) */
  port: number
  /** Retry a failed or lost connection (backoff from retryMin to retryMax), a Boundary marking each cut; off: a failed connection is an error and the server closing ends the stream (default false) */
  reconnect?: boolean
  /** First delay before a retry; doubles on each failure (milliseconds; default 100ms) */
  retryMin?: number
  /** Longest delay between retries (milliseconds; default 5s) */
  retryMax?: number
  /** Give up a connection attempt after this long (milliseconds; default 5s) */
  connectTimeout?: number
  /** Text (UTF-8) sent once right after each connection is made, e.g. greeting="hello Apple Cai!" as seed 001's client; nothing else is ever sent (default '') */
  greeting?: string
}

export const spec = defineStage<TcpClientSourceOptions, TcpClientSource>({
  name: 'tcp-client',
  kind: 'source',
  input: null,
  output: 'bytes',
  description: 'Connect to a TCP server and read the bytes it sends',
  options: {
    host: serverHostOption(),
    port: serverPortOption(),
    reconnect: {
      type: 'boolean',
      default: false,
      doc: 'Retry a failed or lost connection (backoff from retryMin to retryMax), a Boundary marking each cut; off: a failed connection is an error and the server closing ends the stream',
    },
    retryMin: { type: 'duration', min: 1, default: 100, doc: 'First delay before a retry; doubles on each failure' },
    retryMax: { type: 'duration', min: 1, default: 5000, doc: 'Longest delay between retries' },
    connectTimeout: { type: 'duration', min: 1, default: 5000, doc: 'Give up a connection attempt after this long' },
    greeting: {
      type: 'string',
      default: '',
      doc: 'Text (UTF-8) sent once right after each connection is made, e.g. greeting="hello Apple Cai!" as seed 001\'s client; nothing else is ever sent',
    },
    ...clientSecurityOptions(),
  },
  faults:
    'reconnect=true: each connection is marked by a start and an end Boundary, so a stage that finds its bytes bad (unprefix) hangs up and the source reconnects with backoff (growing while each connection is cut for a fault); reconnect=false: the server is the stream, a fault in its bytes ends the pipeline (exit 1)',
  create(o, ctx) {
    return new TcpClientSource({ ...o, security: clientSecurity(o, o.host, ctx.name) }, ctx)
  },
})

export const tcpClient = stageFactory<TcpClientSourceOptions, TcpClientSource, ConnectionEvents>(spec)
