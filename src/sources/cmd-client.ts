// The cmd-client source: its options, spec and factory. The engine is src/protocols/cmd/client.ts.

import { serverHostOption, serverPortOption } from '../net/options.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { CMD_CLIENT_MODES, CmdClient, type CmdClientMode } from '../protocols/cmd/client.js'
import { clientSecurity } from '../net/security.js'
import { clientTlsOptions, type ClientTlsOptions } from '../net/tls.js'
import type { FramePipeError } from '../core/errors.js'
import type { ConnectionEvent } from '../net/socket.js'

export { CMD_CLIENT_MODES, type CmdClientMode }

export interface CmdClientOptions extends Partial<ClientTlsOptions> {
  /** Server to connect to (default 127.0.0.1) */
  host?: string
  /** Server port (default 6810) */
  port?: number
  /** stream: send '3' and read every frame (at the end 'q', then '2'); snapshot: each period send '0', read one image, send '1' (default stream) */
  mode?: CmdClientMode
  /** snapshot: one image per period (absolute schedule; 0 = as fast as downstream takes them) (milliseconds; default 1s) */
  every?: number
  /** Frames to deliver, then end cleanly; 0 = until stopped or the server closes (default 0) */
  count?: number
  /** No image (stream: no byte while downstream is reading; snapshot: no whole image after '0') within this long is an error (milliseconds; default 5s) */
  timeout?: number
  /** Least time between two commands, each in its own write: the original server reads two that arrive together as one unknown command (milliseconds; default 100ms) */
  cmdGap?: number
  /** Largest image accepted; a bigger length (such as the text the original server writes into the stream) is an error (bytes; default 64MiB) */
  maxFrameBytes?: number
  /** Give up connecting after this long (milliseconds; default 5s) */
  connectTimeout?: number
}

/** Events of cmd-client (see core/events.ts). */
export interface CmdClientEvents {
  connect: ConnectionEvent
  disconnect: ConnectionEvent
  warning: FramePipeError
}

export const spec = defineStage<CmdClientOptions, CmdClient>({
  name: 'cmd-client',
  kind: 'source',
  input: null,
  output: 'frames',
  description:
    "Get frames from a server driven by one-character commands (seed 003's camera server, or cmd-server); a transport with its own framing",
  options: {
    host: serverHostOption(),
    port: serverPortOption(6810),
    mode: {
      type: 'enum',
      values: CMD_CLIENT_MODES,
      default: 'stream',
      doc: "stream: send '3' and read every frame (at the end 'q', then '2'); snapshot: each period send '0', read one image, send '1'",
    },
    every: {
      type: 'duration',
      min: 0,
      default: 1000,
      doc: 'snapshot: one image per period (absolute schedule; 0 = as fast as downstream takes them)',
    },
    count: { type: 'int', min: 0, default: 0, doc: 'Frames to deliver, then end cleanly; 0 = until stopped or the server closes' },
    timeout: {
      type: 'duration',
      min: 1,
      default: 5000,
      doc: "No image (stream: no byte while downstream is reading; snapshot: no whole image after '0') within this long is an error",
    },
    cmdGap: {
      type: 'duration',
      min: 0,
      default: 100,
      doc: 'Least time between two commands, each in its own write: the original server reads two that arrive together as one unknown command',
    },
    maxFrameBytes: {
      type: 'size',
      min: 1,
      default: 64 * 2 ** 20,
      doc: 'Largest image accepted; a bigger length (such as the text the original server writes into the stream) is an error',
    },
    connectTimeout: { type: 'duration', min: 1, default: 5000, doc: 'Give up connecting after this long' },
    ...clientTlsOptions(),
  },
  faults:
    'one server is the whole stream: a bad length (such as the text seed 003 writes into its image stream) or an image over maxFrameBytes is an error (exit 1), as is its silence beyond timeout; there is no reconnect. Frames carry the server as their peer, so a sink drops (and counts) one it cannot take',
  create(o, ctx) {
    return new CmdClient({ ...o, security: clientSecurity(o, o.host, ctx.name) }, ctx)
  },
})

export const cmdClient = stageFactory<CmdClientOptions, CmdClient, CmdClientEvents>(spec)
