// The tcp-server sink: its options, spec and factory. The engine is src/net/tcp/server-sink.ts.

import { hostOption, lingerOption, maxClientsOption, portOption, sendTimeoutOption } from '../net/options.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { TcpServerSink } from '../net/tcp/server-sink.js'
import { serverSecurity, serverSecurityOptions, type ServerSecurityOptions } from '../net/security.js'
import type { ServerEvents } from '../net/events.js'

export interface TcpServerSinkOptions extends Partial<ServerSecurityOptions> {
  /** Address to listen on; 0.0.0.0 accepts other machines (default 127.0.0.1) */
  host?: string
  /** Port to listen on; 0 picks a free one (see the listening event) (default 9000) */
  port?: number
  /** Packets queued per client; when a slow client's queue is full its oldest packet is dropped (counted in drops) (default 8) */
  maxQueue?: number
  /** Clients served at once; more connections are closed and logged (default 64) */
  maxClients?: number
  /** Hold the first packet (backpressure) until this many clients are connected; 0: packets with no client are discarded (default 0) */
  wait?: number
  /** At the end, how long to wait for clients to receive their queues before closing (milliseconds; default 2s) */
  linger?: number
  /** A client whose connection takes nothing for this long (it does not read) is cut off and counted in stalled, freeing its slot; 0 = never (milliseconds; default 10s) */
  sendTimeout?: number
}

export const spec = defineStage<TcpServerSinkOptions, TcpServerSink>({
  name: 'tcp-server',
  kind: 'sink',
  input: 'bytes',
  output: 'bytes',
  description: 'Serve the byte stream to every TCP client that connects',
  passes: 'each packet once it is queued to every client',
  options: {
    host: hostOption(),
    port: portOption(9000),
    maxQueue: {
      type: 'int',
      min: 1,
      default: 8,
      doc: "Packets queued per client; when a slow client's queue is full its oldest packet is dropped (counted in drops)",
    },
    maxClients: maxClientsOption(),
    wait: {
      type: 'int',
      min: 0,
      default: 0,
      doc: 'Hold the first packet (backpressure) until this many clients are connected; 0: packets with no client are discarded',
    },
    linger: lingerOption('At the end, how long to wait for clients to receive their queues before closing'),
    ...serverSecurityOptions(),
    sendTimeout: sendTimeoutOption(),
  },
  faults:
    'each client has its own queue: a slow one loses its oldest packets, one that takes nothing for sendTimeout is cut off (stalled), never slowing the source or the others; connections over maxClients are closed (rate-limited log lines); what clients send is read and discarded. Failing to listen ends the pipeline',
  create(o, ctx) {
    return new TcpServerSink({ ...o, security: serverSecurity(o, ctx.name) }, ctx)
  },
})

export const tcpServer = stageFactory<TcpServerSinkOptions, TcpServerSink, ServerEvents>(spec)
