// The tcp-server source: its options, spec and factory. The engine is src/net/tcp/server-source.ts.

import { hostOption, portOption } from '../net/options.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { TcpServerSource } from '../net/tcp/server-source.js'
import { serverSecurity, serverSecurityOptions, type ServerSecurityOptions } from '../net/security.js'
import type { ServerEvents } from '../net/events.js'

export interface TcpServerSourceOptions extends Partial<ServerSecurityOptions> {
  /** Address to listen on; 0.0.0.0 accepts other machines (default 127.0.0.1) */
  host?: string
  /** Port to listen on; 0 picks a free one (see the listening event) (default 9000) */
  port?: number
  /** End the stream when the first client disconnects (scripts, tests) (default false) */
  once?: boolean
  /** Clients held while another is being served (each has its first chunk read ahead, the rest held back by TCP); those that have sent something are served first, in arrival order; more connections are closed and logged (default 16) */
  maxWaiting?: number
  /** While others wait, the client being served that has sent nothing for this long is cut off, and so is a waiting client that has sent nothing (counted in timeouts); a client alone may stay quiet; time downstream holds the reading back does not count; 0 = never (milliseconds; default 10s) */
  idleTimeout?: number
}

export const spec = defineStage<TcpServerSourceOptions, TcpServerSource>({
  name: 'tcp-server',
  kind: 'source',
  input: null,
  output: 'bytes',
  description: 'Accept TCP clients and read their bytes, one client at a time',
  options: {
    host: hostOption(),
    port: portOption(9000),
    once: { type: 'boolean', default: false, doc: 'End the stream when the first client disconnects (scripts, tests)' },
    maxWaiting: {
      type: 'int',
      min: 0,
      default: 16,
      doc: 'Clients held while another is being served (each has its first chunk read ahead, the rest held back by TCP); those that have sent something are served first, in arrival order; more connections are closed and logged',
    },
    idleTimeout: {
      type: 'duration',
      min: 0,
      default: 10_000,
      doc: 'While others wait, the client being served that has sent nothing for this long is cut off, and so is a waiting client that has sent nothing (counted in timeouts); a client alone may stay quiet; time downstream holds the reading back does not count; 0 = never',
    },
    ...serverSecurityOptions(),
  },
  faults:
    "one client at a time, each marked by a start and an end Boundary: a stage that finds the client's bytes bad (unprefix) hangs up on that client alone and the next one is served; a silent client loses its turn after idleTimeout when others wait; beyond maxWaiting, connections are closed (rate-limited log lines). Failing to listen ends the pipeline",
  create(o, ctx) {
    return new TcpServerSource({ ...o, security: serverSecurity(o, ctx.name) }, ctx)
  },
})

export const tcpServer = stageFactory<TcpServerSourceOptions, TcpServerSource, ServerEvents>(spec)
