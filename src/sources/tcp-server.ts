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
      doc: 'Clients held (unread, in arrival order) while another is being served; more connections are closed and logged',
    },
    ...serverSecurityOptions(),
  },
  create(o, ctx) {
    return new TcpServerSource({ ...o, security: serverSecurity(o, ctx.name) }, ctx)
  },
})

export const tcpServer = stageFactory<TcpServerSourceOptions, TcpServerSource, ServerEvents>(spec)
