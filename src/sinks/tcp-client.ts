// The tcp-client sink: its options, spec and factory. The engine is src/net/tcp/client-sink.ts.

import { lingerOption, serverHostOption, serverPortOption } from '../net/options.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { TcpClientSink } from '../net/tcp/client-sink.js'
import { clientSecurity, clientSecurityOptions, type ClientSecurityOptions } from '../net/security.js'
import type { ConnectionEvents } from '../net/events.js'

export interface TcpClientSinkOptions extends Partial<ClientSecurityOptions> {
  /** Server to connect to (default 127.0.0.1) */
  host?: string
  /** Server port (required) */
  port: number
  /** When the server goes away, reconnect (backoff from retryMin to retryMax); a packet cut by the loss is dropped, never resumed (default true) */
  reconnect?: boolean
  /** Retry the first connection too, instead of failing when no server is there (default false) */
  waitForServer?: boolean
  /** Packets kept while disconnected or while the server is slow; what happens when it is full is whenFull (default 8) */
  maxQueue?: number
  /** Queue full: wait holds the source back (a live camera then drops its own oldest frames); drop discards the oldest queued packet (counted in drops) and never slows the source (default wait) */
  whenFull?: 'wait' | 'drop'
  /** First delay before a retry; doubles on each failure (milliseconds; default 100ms) */
  retryMin?: number
  /** Longest delay between retries (milliseconds; default 5s) */
  retryMax?: number
  /** Give up a connection attempt after this long (milliseconds; default 5s) */
  connectTimeout?: number
  /** At the end, how long to wait for the queue to reach the server before closing (milliseconds; default 2s) */
  linger?: number
  /** Wait this long between a packet's header and its payload (seed 002's receiver tells them apart only by this pause: pause=1s); while pausing the next packet is held back (backpressure on the source), never dropped (milliseconds; default 0s) */
  pause?: number
}

export const spec = defineStage<TcpClientSinkOptions, TcpClientSink>({
  name: 'tcp-client',
  kind: 'sink',
  input: 'bytes',
  output: 'bytes',
  description: 'Connect to a TCP server and send it the byte stream',
  passes: 'each packet once it is queued for the server',
  options: {
    host: serverHostOption(),
    port: serverPortOption(),
    reconnect: {
      type: 'boolean',
      default: true,
      doc: 'When the server goes away, reconnect (backoff from retryMin to retryMax); a packet cut by the loss is dropped, never resumed',
    },
    waitForServer: { type: 'boolean', default: false, doc: 'Retry the first connection too, instead of failing when no server is there' },
    maxQueue: {
      type: 'int',
      min: 1,
      default: 8,
      doc: 'Packets kept while disconnected or while the server is slow; what happens when it is full is whenFull',
    },
    whenFull: {
      type: 'enum',
      values: ['wait', 'drop'],
      default: 'wait',
      doc: 'Queue full: wait holds the source back (a live camera then drops its own oldest frames); drop discards the oldest queued packet (counted in drops) and never slows the source',
    },
    retryMin: { type: 'duration', min: 1, default: 100, doc: 'First delay before a retry; doubles on each failure' },
    retryMax: { type: 'duration', min: 1, default: 5000, doc: 'Longest delay between retries' },
    connectTimeout: { type: 'duration', min: 1, default: 5000, doc: 'Give up a connection attempt after this long' },
    linger: lingerOption('At the end, how long to wait for the queue to reach the server before closing'),
    pause: {
      type: 'duration',
      min: 0,
      default: 0,
      doc:
        "Wait this long between a packet's header and its payload (seed 002's receiver tells them apart only by this pause: pause=1s); " +
        'while pausing the next packet is held back (backpressure on the source), never dropped',
    },
    ...clientSecurityOptions(),
  },
  create(o, ctx) {
    return new TcpClientSink({ ...o, security: clientSecurity(o, o.host, ctx.name) }, ctx)
  },
})

export const tcpClient = stageFactory<TcpClientSinkOptions, TcpClientSink, ConnectionEvents>(spec)
