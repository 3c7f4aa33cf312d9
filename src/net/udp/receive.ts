// What the three UDP receivers (native, chunked, whole) share: the shape of a
// completed image, the counters they keep and how they report problems.
// Receivers are plain objects fed one datagram at a time with the clock as an
// argument, so tests drive them without sockets or timers.

import type { FrameMeta } from '../../wire/headers.js'
import { formatAddress } from '../socket.js'
import type { Counters } from '../../core/stage.js'

/** Default of maxPendingBytes: what the images in reassembly may announce in all, over every sender. */
export const DEFAULT_PENDING_BYTES = 64 * 2 ** 20

export interface Peer {
  address: string
  port: number
}

export interface Completed {
  data: Buffer
  /** Native frames carry their metadata; seed images have none. */
  meta: FrameMeta | undefined
  /** Where the datagram that completed the image came from: replies and acks go there. */
  peer: Peer
  /** Native: the ack datagram for this frame. */
  ack: Buffer | undefined
}

export interface Receiver {
  /** Take one datagram; returns an image when this datagram completed a good one. */
  push(datagram: Buffer, peer: Peer, now: number): Completed | undefined
  /** Drop (and count) images whose datagrams stopped arriving `timeout` ms ago. */
  expire(now: number): void
  /** Drop (and count) every image still in progress: the end of the stream. */
  flush(): void
}

/**
 * Frames dropped go to `drops`, each also under its reason: `incomplete`
 * (datagrams stopped for `timeout`, a chunk was lost, or the stream ended),
 * `evicted` (too many images in reassembly), `skipped` (native: a newer frame
 * was settled first), `corrupt` (seeds: not a complete JPEG). Datagrams that
 * could not be used go to `garbage`, repeats to `duplicates`, datagrams of
 * frames already settled to `late`.
 */
export type ReceiveCounter = 'incomplete' | 'evicted' | 'skipped' | 'corrupt' | 'garbage' | 'duplicates' | 'late'

export interface ReceiverHooks {
  counters: Counters
  /** A one-line problem report (the stage throttles and emits it as a 'warning'). */
  warn(message: string): void
}

export function count(counters: Counters, name: ReceiveCounter, n = 1): void {
  counters[name] = (counters[name] ?? 0) + n
}

/** `127.0.0.1:53712`: the key of a sender's state and the name in messages. */
export function peerKey(peer: Peer): string {
  return formatAddress(peer.address, peer.port)
}

export function initCounters(counters: Counters, names: readonly ReceiveCounter[]): void {
  for (const name of names) counters[name] = 0
}
