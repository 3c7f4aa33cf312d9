// The snapshot-server sink: its options, spec and factory. The engine is src/protocols/snapshot/server.ts.

import { hostOption, idleTimeoutOption, lingerOption, maxClientsOption, portOption, sendTimeoutOption } from '../net/options.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { SnapshotServer } from '../protocols/snapshot/server.js'
import { serverSecurity, serverSecurityOptions, type ServerSecurityOptions } from '../net/security.js'
import type { ServerEvents, WarningEvents } from '../net/events.js'

export interface SnapshotServerOptions extends Partial<ServerSecurityOptions> {
  /** Address to listen on; 0.0.0.0 accepts other machines (default 127.0.0.1) */
  host?: string
  /** Port to listen on; 0 picks a free one (see the listening event) (default 6811) */
  port?: number
  /** Add a CRC-32 of the payload to each reply, checked by the client (default false) */
  checksum?: boolean
  /** Clients served at once; more connections are closed and logged (default 64) */
  maxClients?: number
  /** At the end, how long to wait for replies to reach their clients before closing (milliseconds; default 2s) */
  linger?: number
  /** A client whose connection takes nothing for this long (it does not read) is cut off and counted in stalled, freeing its slot; 0 = never (milliseconds; default 10s) */
  sendTimeout?: number
  /** A client with no request outstanding that has sent nothing for this long (from connecting on) is closed and counted in idle; 0 = never (milliseconds; default 60s) */
  idleTimeout?: number
}

/** Events of snapshot-server (see core/events.ts). */
export type SnapshotServerEvents = ServerEvents & WarningEvents

export const spec = defineStage<SnapshotServerOptions, SnapshotServer>({
  name: 'snapshot-server',
  kind: 'sink',
  input: 'frames',
  output: 'frames',
  description:
    "Keep the newest frame and send it to each client that asks (one byte 'G' per request, reply: native header + payload); a transport with its own framing",
  passes: 'each Frame, unchanged, once it is the newest',
  options: {
    host: hostOption(),
    port: portOption(6811),
    checksum: { type: 'boolean', default: false, doc: 'Add a CRC-32 of the payload to each reply, checked by the client' },
    maxClients: maxClientsOption(),
    linger: lingerOption('At the end, how long to wait for replies to reach their clients before closing'),
    ...serverSecurityOptions(),
    sendTimeout: sendTimeoutOption(),
    idleTimeout: idleTimeoutOption(
      'A client with no request outstanding that has sent nothing for this long (from connecting on) is closed and counted in idle; 0 = never',
    ),
  },
  faults:
    "a byte other than 'G' (or CR/LF), or more than 64 unanswered requests, closes that client's connection (rate-limited warnings); a client that takes nothing for sendTimeout, or asks nothing for idleTimeout, is closed; connections over maxClients are closed; no client can stop the others or the pipeline. Failing to listen ends the pipeline",
  create(o, ctx) {
    return new SnapshotServer({ ...o, security: serverSecurity(o, ctx.name) }, ctx)
  },
})

export const snapshotServer = stageFactory<SnapshotServerOptions, SnapshotServer, SnapshotServerEvents>(spec)
