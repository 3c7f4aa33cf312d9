// The reg-server sink: its options, spec and factory. The engine is src/protocols/reg/server.ts.

import { hostOption, maxClientsOption, portOption } from '../net/options.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { RegServerSink } from '../protocols/reg/server.js'
import type { ServerEvents, WarningEvents } from '../net/events.js'

export interface RegServerOptions {
  /** Address for the TCP registrations and the UDP socket; 0.0.0.0 accepts other machines (the original binds 0.0.0.0) (default 127.0.0.1) */
  host?: string
  /** TCP registration port; 0 picks a free one (see the listening event) (default 9999) */
  port?: number
  /** Append join/exit lines to this file in the original's format (`<datetime> 客户端('ip', port) 接入`/`退出`); '' = no log (default '') */
  log?: string
  /** A client that has not replied this long after a frame is sent the newest frame again (counted in resends); a lost frame or reply never stalls it (milliseconds; default 1s) */
  ackTimeout?: number
  /** Timeouts in a row after which a silent client is dropped (counted in lost, logged as exit) (default 5) */
  retries?: number
  /** Clients served at once; more registrations are refused with a warning (default 64) */
  maxClients?: number
  /** true: a client that replies is sent the newest frame, skipping those in between (counted in drops), so a slow client never slows the source or the others; false: each frame is held (backpressure) until every client has been sent it, so the slowest client paces the source and none skips a frame (default true) */
  skip?: boolean
  /** Hold the first frame (backpressure) until this many clients have registered; 0: frames with no client are discarded (default 0) */
  wait?: number
  /** Registration digits not followed by whitespace are complete once nothing more arrived for this long (a port split over several reads is joined) (milliseconds; default 30ms) */
  quiet?: number
  /** A connection that has not sent a port number within this long is closed with a warning (milliseconds; default 5s) */
  registerTimeout?: number
}

/** Events of reg-server (see core/events.ts). */
export type RegServerEvents = ServerEvents & WarningEvents

export const spec = defineStage<RegServerOptions, RegServerSink>({
  name: 'reg-server',
  kind: 'sink',
  input: 'frames',
  output: 'frames',
  description:
    'Serve frames to clients that register a UDP port over TCP, one datagram per frame, each acknowledged (seed 004; a transport with its own framing)',
  passes: 'each Frame once it is the newest frame offered to the clients (frames over 65507 bytes are skipped, not passed on)',
  options: {
    host: hostOption('Address for the TCP registrations and the UDP socket; 0.0.0.0 accepts other machines (the original binds 0.0.0.0)'),
    port: portOption(9999, 'TCP registration port; 0 picks a free one (see the listening event)'),
    log: {
      type: 'string',
      default: '',
      doc: "Append join/exit lines to this file in the original's format (`<datetime> 客户端('ip', port) 接入`/`退出`); '' = no log",
    },
    ackTimeout: {
      type: 'duration',
      min: 1,
      default: 1000,
      doc: 'A client that has not replied this long after a frame is sent the newest frame again (counted in resends); a lost frame or reply never stalls it',
    },
    retries: {
      type: 'int',
      min: 0,
      default: 5,
      doc: 'Timeouts in a row after which a silent client is dropped (counted in lost, logged as exit)',
    },
    maxClients: maxClientsOption('Clients served at once; more registrations are refused with a warning'),
    skip: {
      type: 'boolean',
      default: true,
      doc:
        'true: a client that replies is sent the newest frame, skipping those in between (counted in drops), so a slow client never slows the source or the others; ' +
        'false: each frame is held (backpressure) until every client has been sent it, so the slowest client paces the source and none skips a frame',
    },
    wait: {
      type: 'int',
      min: 0,
      default: 0,
      doc: 'Hold the first frame (backpressure) until this many clients have registered; 0: frames with no client are discarded',
    },
    quiet: {
      type: 'duration',
      min: 0,
      default: 30,
      doc: 'Registration digits not followed by whitespace are complete once nothing more arrived for this long (a port split over several reads is joined)',
    },
    registerTimeout: {
      type: 'duration',
      min: 1,
      default: 5000,
      doc: 'A connection that has not sent a port number within this long is closed with a warning',
    },
  },
  faults:
    "a registration that is not a port number, or none within registerTimeout, closes that connection (rate-limited warnings, counted in refused); a client that does not reply is sent the frame again and dropped after `retries` timeouts (lost); replies are routed by their source address, so one client's `end` never stops another; registrations over maxClients are refused. Failing to listen or to write the log ends the pipeline",
  create(o, ctx) {
    return new RegServerSink(o, ctx)
  },
})

export const regServer = stageFactory<RegServerOptions, RegServerSink, RegServerEvents>(spec)
