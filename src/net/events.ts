// The events network stages share, as events maps for their factories (see
// core/events.ts): servers announce their address and their clients, client
// stages their connections.

import type { AddressInfo } from 'node:net'
import type { FramePipeError } from '../core/errors.js'
import type { ClientEvent, ConnectionEvent } from './socket.js'

/** A server stage: 'listening' once bound, 'client' as peers join and leave (a refused one leaves with its reason). */
export interface ServerEvents {
  listening: AddressInfo
  client: ClientEvent
}

/** A client stage: its connection coming and going, and each retry with its delay. */
export interface ConnectionEvents {
  connect: ConnectionEvent
  disconnect: ConnectionEvent
  retry: ConnectionEvent
}

/** Trouble that does not end the stage (a bad frame skipped, a peer refused). */
export interface WarningEvents {
  warning: FramePipeError
}
