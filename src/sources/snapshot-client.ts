// The snapshot-client source: its options, spec and factory. The engine is src/protocols/snapshot/client.ts.

import { serverHostOption, serverPortOption } from '../net/options.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { SnapshotClient } from '../protocols/snapshot/client.js'
import { clientSecurity, clientSecurityOptions, type ClientSecurityOptions } from '../net/security.js'
import type { ConnectionEvent } from '../net/socket.js'

export { requestSnapshot, type RequestSnapshotOptions } from '../protocols/snapshot/client.js'

export interface SnapshotClientOptions extends Partial<ClientSecurityOptions> {
  /** Server to connect to (default 127.0.0.1) */
  host?: string
  /** Server port (default 6811) */
  port?: number
  /** One request per period (absolute schedule), only while downstream wants frames; 0 = as fast as downstream takes them (milliseconds; default 1s) */
  every?: number
  /** Frames to get, then end cleanly; 0 = until stopped (default 0) */
  count?: number
  /** Connecting, and each reply, must take less than this; else one clear error (milliseconds; default 2s) */
  timeout?: number
  /** Largest frame accepted; a reply announcing more is an error (bytes; default 64MiB) */
  maxFrameBytes?: number
}

/** Events of snapshot-client (see core/events.ts). */
export interface SnapshotClientEvents {
  connect: ConnectionEvent
}

export const spec = defineStage<SnapshotClientOptions, SnapshotClient>({
  name: 'snapshot-client',
  kind: 'source',
  input: null,
  output: 'frames',
  description:
    "Ask a snapshot-server for its newest frame once per period ('G' → native header + payload); a transport with its own framing",
  options: {
    host: serverHostOption(),
    port: serverPortOption(6811),
    every: {
      type: 'duration',
      min: 0,
      default: 1000,
      doc: 'One request per period (absolute schedule), only while downstream wants frames; 0 = as fast as downstream takes them',
    },
    count: { type: 'int', min: 0, default: 0, doc: 'Frames to get, then end cleanly; 0 = until stopped' },
    timeout: { type: 'duration', min: 1, default: 2000, doc: 'Connecting, and each reply, must take less than this; else one clear error' },
    maxFrameBytes: { type: 'size', min: 1, default: 64 * 2 ** 20, doc: 'Largest frame accepted; a reply announcing more is an error' },
    ...clientSecurityOptions(),
  },
  faults:
    'one server is the whole stream: a bad reply, an unasked-for frame, a frame over maxFrameBytes or no reply within timeout is an error (exit 1); there is no reconnect. Timestamps more than 1 h from our clock are replaced by the arrival time (badTimestamps); frames carry the server as their peer, so a sink drops (and counts) one it cannot take',
  create(o, ctx) {
    return new SnapshotClient({ ...o, security: clientSecurity(o, o.host, ctx.name) }, ctx)
  },
})

export const snapshotClient = stageFactory<SnapshotClientOptions, SnapshotClient, SnapshotClientEvents>(spec)
