// The tcp-server source: its options, spec and factory. The engine is src/net/tcp/server-source.ts.

import { hostOption, portOption } from '../net/options.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { TcpServerSource } from '../net/tcp/server-source.js'
import { serverSecurity, serverSecurityOptions, type ServerSecurityOptions } from '../net/security.js'
import type { ServerEvents } from '../net/events.js'

export interface TcpServerSourceOptions extends Partial<ServerSecurityOptions> {
  host?: string
  port?: number
  once?: boolean
  maxWaiting?: number
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
