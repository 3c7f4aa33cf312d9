// The reg-client source: its options, spec and factory. The engine is src/protocols/reg/client.ts.

import { serverHostOption, serverPortOption } from '../net/options.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { RegClientSource } from '../protocols/reg/client.js'
import type { ConnectionEvents, WarningEvents } from '../net/events.js'

export interface RegClientOptions {
  /** Server to register with (default 127.0.0.1) */
  host?: string
  /** Server TCP registration port (default 9999) */
  port?: number
  /** UDP port to receive frames on (bound on the address the TCP connection uses, before registering); 0 = any free port (default 0) */
  udpPort?: number
  /** No frame this long after a reply: send the reply again (counted in resends); when `retries` resends go unanswered too, fail with ERR_NETWORK (or end cleanly if the server has closed the registration connection) (milliseconds; default 2s) */
  timeout?: number
  /** Timeouts in a row tolerated before giving up (default 3) */
  retries?: number
  /** A datagram byte-identical to the previous frame is a repeat (a resend after a lost reply, or a duplicated datagram): answered but not delivered, counted in repeats; false: deliver it (a source that really sends identical frames) (default true) */
  dedupe?: boolean
  /** Give up connecting to the server after this long (milliseconds; default 5s) */
  connectTimeout?: number
}

/** Events of reg-client (see core/events.ts). */
export type RegClientEvents = ConnectionEvents & WarningEvents

export const spec = defineStage<RegClientOptions, RegClientSource>({
  name: 'reg-client',
  kind: 'source',
  input: null,
  output: 'frames',
  description:
    'Register a UDP port with a seed-004 server over TCP and receive one frame per datagram, answering each with continue (a transport with its own framing)',
  options: {
    host: serverHostOption('Server to register with'),
    port: serverPortOption(9999, 'Server TCP registration port'),
    udpPort: {
      type: 'int',
      min: 0,
      max: 65535,
      default: 0,
      doc: 'UDP port to receive frames on (bound on the address the TCP connection uses, before registering); 0 = any free port',
    },
    timeout: {
      type: 'duration',
      min: 1,
      default: 2000,
      doc: 'No frame this long after a reply: send the reply again (counted in resends); when `retries` resends go unanswered too, fail with ERR_NETWORK (or end cleanly if the server has closed the registration connection)',
    },
    retries: { type: 'int', min: 0, default: 3, doc: 'Timeouts in a row tolerated before giving up' },
    dedupe: {
      type: 'boolean',
      default: true,
      doc: 'A datagram byte-identical to the previous frame is a repeat (a resend after a lost reply, or a duplicated datagram): answered but not delivered, counted in repeats; false: deliver it (a source that really sends identical frames)',
    },
    connectTimeout: { type: 'duration', min: 1, default: 5000, doc: 'Give up connecting to the server after this long' },
  },
  faults:
    "datagrams from addresses other than the server's are ignored (strays), ones that are not images are dropped (rate-limited warnings); a silent server is sent `continue` again, then after `retries` timeouts it is an error (exit 1), or a clean end once it has closed the registration. Frames carry their sender as their peer",
  create(o, ctx) {
    return new RegClientSource(o, ctx)
  },
})

export const regClient = stageFactory<RegClientOptions, RegClientSource, RegClientEvents>(spec)
