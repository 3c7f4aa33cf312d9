// The cmd-server sink: its options, spec and factory. The engine is src/protocols/cmd/server.ts.

import { FIXED_HEADER_FORMATS, type FixedHeaderFormat } from '../wire/headers.js'
import { hostOption, idleTimeoutOption, lingerOption, maxClientsOption, portOption, sendTimeoutOption } from '../net/options.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { CmdServer } from '../protocols/cmd/server.js'
import { serverSecurity, serverTlsOnlyOptions, type ServerTlsOnlyOptions } from '../net/security.js'
import type { ServerEvents, WarningEvents } from '../net/events.js'
import type { FpsEvent as CmdFpsEvent } from '../protocols/cmd/server.js'

export type { FpsEvent } from '../protocols/cmd/server.js'

export interface CmdServerOptions extends Partial<ServerTlsOnlyOptions> {
  /** Address to listen on; 0.0.0.0 accepts other machines (default 127.0.0.1) */
  host?: string
  /** Port to listen on; 0 picks a free one (see the listening event) (default 6810) */
  port?: number
  /** Length header before each image: u32be is what seed 003's client reads (default u32be) */
  header?: FixedHeaderFormat
  /** Images queued per client; when a slow streaming client's queue is full its oldest image is dropped (counted in drops) (default 8) */
  maxQueue?: number
  /** Clients served at once; more connections are closed and logged (default 64) */
  maxClients?: number
  /** At the end (and after a '2'), how long to wait for clients to take what is queued and close (milliseconds; default 2s) */
  linger?: number
  /** A client whose connection takes nothing for this long (it does not read) is cut off and counted in stalled, freeing its slot; 0 = never (milliseconds; default 10s) */
  sendTimeout?: number
  /** A client that is not streaming and has asked for no image, and has sent nothing for this long (from connecting on), is closed and counted in idle; 0 = never (milliseconds; default 60s) */
  idleTimeout?: number
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
    sendTimeout: sendTimeoutOption(),
    idleTimeout: idleTimeoutOption(
      'A client that is not streaming and has asked for no image, and has sent nothing for this long (from connecting on), is closed and counted in idle; 0 = never',
    ),
  },
  faults:
    'what a client sends is read one command byte at a time: unknown bytes are ignored (rate-limited warnings); a client that takes nothing for sendTimeout, or says nothing for idleTimeout while nothing is owed to it, is closed; connections over maxClients are closed (rate-limited log lines); no client can stop the others or the pipeline. Failing to listen ends the pipeline',
  create(o, ctx) {
    return new CmdServer({ ...o, security: serverSecurity(o, ctx.name) }, ctx)
  },
})

export const cmdServer = stageFactory<CmdServerOptions, CmdServer, CmdServerEvents>(spec)
