// The cmd-server sink: its options, spec and factory. The engine is src/protocols/cmd/server.ts.

import { FIXED_HEADER_FORMATS, type FixedHeaderFormat } from '../wire/headers.js'
import { hostOption, lingerOption, maxClientsOption, portOption } from '../net/options.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { CmdServer } from '../protocols/cmd/server.js'
import { serverSecurity, serverTlsOnlyOptions, type ServerTlsOnlyOptions } from '../net/security.js'
import type { ServerEvents, WarningEvents } from '../net/events.js'
import type { FpsEvent as CmdFpsEvent } from '../protocols/cmd/server.js'

export type { FpsEvent } from '../protocols/cmd/server.js'

export interface CmdServerOptions extends Partial<ServerTlsOnlyOptions> {
  host?: string
  port?: number
  header?: FixedHeaderFormat
  maxQueue?: number
  maxClients?: number
  linger?: number
}

/** Events of cmd-server (see core/events.ts): 'info' is a client's FPS report. */
export type CmdServerEvents = ServerEvents & WarningEvents & { info: CmdFpsEvent }

export const spec = defineStage<CmdServerOptions, CmdServer>({
  name: 'cmd-server',
  kind: 'sink',
  input: 'frames',
  output: 'frames',
  description:
    'Serve frames to clients that ask with one-character commands (seed 003: 0 one image, 1 confirm, 2 close, 3 stream, q stop); a transport with its own framing',
  passes: 'each Frame, unchanged, once it is the newest and queued to the streaming clients',
  options: {
    host: hostOption(),
    port: portOption(6810),
    header: {
      type: 'enum',
      values: FIXED_HEADER_FORMATS,
      default: 'u32be',
      doc: "Length header before each image: u32be is what seed 003's client reads",
    },
    maxQueue: {
      type: 'int',
      min: 1,
      default: 8,
      doc: "Images queued per client; when a slow streaming client's queue is full its oldest image is dropped (counted in drops)",
    },
    maxClients: maxClientsOption(),
    linger: lingerOption("At the end (and after a '2'), how long to wait for clients to take what is queued and close"),
    ...serverTlsOnlyOptions(),
  },
  create(o, ctx) {
    return new CmdServer({ ...o, security: serverSecurity(o, ctx.name) }, ctx)
  },
})

export const cmdServer = stageFactory<CmdServerOptions, CmdServer, CmdServerEvents>(spec)
