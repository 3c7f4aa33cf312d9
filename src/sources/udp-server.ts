// The udp-server source: its options, spec and factory. The engine is src/net/udp/receiver.ts.

import { SEED_REPLY } from '../net/udp/seed.js'
import { UDP_PROTOS, type UdpProto } from '../net/udp/socket.js'
import { hostOption, portOption } from '../net/options.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { checkUdpToken } from '../net/security.js'
import type { AddressInfo } from 'node:net'
import type { MessageEvent } from '../net/udp/messages.js'
import { SEED_VERIFY, UdpServerSource, type SeedVerify } from '../net/udp/receiver.js'
import { DEFAULT_PENDING_BYTES } from '../net/udp/receive.js'
import { DEFAULT_CLOCK_SKEW } from '../core/frame.js'

export interface UdpServerSourceOptions {
  /** Address to bind; 0.0.0.0 accepts other machines (default 127.0.0.1) */
  host?: string
  /** UDP port to bind; 0 picks a free one (see the listening event) (default 9999) */
  port?: number
  /** native: frame-pipe datagrams, reassembled by frame id, acked; whole: seed 000a, one datagram = one JPEG; chunked: seed 000b/c, 8-byte LE length then 1024-byte datagrams (default native) */
  proto?: UdpProto
  /** whole/chunked: sent to the sender of each image once it is handed downstream (the seeds' flow control); '' sends nothing (default get message!!!) */
  reply?: string
  /** Seed 000c's JSON port: log each datagram as a 'message' event and answer 'get the msg'; 0 = off (default 0) */
  msgPort?: number
  /** Largest image accepted (whole: also bounded by one datagram, 65507); bigger announcements are ignored and counted in garbage (bytes; default 64MiB) */
  maxFrameBytes?: number
  /** An image whose datagrams stop arriving for this long is dropped (counted in drops and incomplete); at most 16 images are in reassembly, the oldest is dropped beyond (milliseconds; default 1s) */
  timeout?: number
  /** Take only datagrams signed with this token (at least 16 characters; @FILE or env:NAME): others are dropped and counted in forged; acks are signed too. proto=native only (seed 000's wires cannot carry a signature) (the secret, @FILE or env:NAME; default (none)) */
  token?: string
  /** Bytes the images in reassembly may announce in all, over every sender (each image takes its announced size, touched as its datagrams arrive; payloads are copied, no datagram is kept); the oldest are dropped to make room (counted in evicted), an announcement bigger than this alone is ignored (garbage) (bytes; default 64MiB) */
  maxPendingBytes?: number
  /** whole/chunked: an image is delivered only when it is a complete JPEG (else dropped and counted in corrupt). markers: SOI to EOI, every segment inside, restart markers in turn; entropy: also every Huffman code of every block of a baseline JPEG read against the image's tables, the blocks' count and DC range (catches most chunks lost, repeated or swapped in the middle of the image, which markers cannot see; about 2 ms per 40 KB 640x480 JPEG); auto: entropy for chunked, markers for whole (one datagram, one image) (default auto) */
  verify?: SeedVerify
  /** native: a sender's timestamp further than this from our clock (or not a number) is replaced by the arrival time and counted in badTimestamps; 0 = take timestamps as sent (milliseconds; default 3600s) */
  maxClockSkew?: number
}

/** Events of udp-server (see core/events.ts); its warnings are log lines (throttled), not errors. */
export interface UdpServerEvents {
  listening: AddressInfo | null
  message: MessageEvent
  warning: string
}

export const spec = defineStage<UdpServerSourceOptions, UdpServerSource>({
  name: 'udp-server',
  kind: 'source',
  input: null,
  output: 'frames',
  description: 'Receive frames over UDP (native datagrams, or seed 000 whole/chunked JPEGs); a transport with its own framing',
  options: {
    host: hostOption('Address to bind; 0.0.0.0 accepts other machines'),
    port: portOption(9999, 'UDP port to bind; 0 picks a free one (see the listening event)'),
    proto: {
      type: 'enum',
      values: UDP_PROTOS,
      default: 'native',
      doc: 'native: frame-pipe datagrams, reassembled by frame id, acked; whole: seed 000a, one datagram = one JPEG; chunked: seed 000b/c, 8-byte LE length then 1024-byte datagrams',
    },
    reply: {
      type: 'string',
      default: SEED_REPLY,
      doc: "whole/chunked: sent to the sender of each image once it is handed downstream (the seeds' flow control); '' sends nothing",
    },
    msgPort: {
      type: 'int',
      min: 0,
      max: 65535,
      default: 0,
      doc: "Seed 000c's JSON port: log each datagram as a 'message' event and answer 'get the msg'; 0 = off",
    },
    maxFrameBytes: {
      type: 'size',
      min: 1,
      default: 64 * 2 ** 20,
      doc: 'Largest image accepted (whole: also bounded by one datagram, 65507); bigger announcements are ignored and counted in garbage',
    },
    timeout: {
      type: 'duration',
      min: 1,
      default: 1000,
      doc: 'An image whose datagrams stop arriving for this long is dropped (counted in drops and incomplete); at most 16 images are in reassembly, the oldest is dropped beyond',
    },
    token: {
      type: 'secret',
      default: '',
      doc: "Take only datagrams signed with this token (at least 16 characters; @FILE or env:NAME): others are dropped and counted in forged; acks are signed too. proto=native only (seed 000's wires cannot carry a signature)",
    },
    maxPendingBytes: {
      type: 'size',
      min: 1,
      default: DEFAULT_PENDING_BYTES,
      doc: 'Bytes the images in reassembly may announce in all, over every sender (each image takes its announced size, touched as its datagrams arrive; payloads are copied, no datagram is kept); the oldest are dropped to make room (counted in evicted), an announcement bigger than this alone is ignored (garbage)',
    },
    verify: {
      type: 'enum',
      values: SEED_VERIFY,
      default: 'auto',
      doc: "whole/chunked: an image is delivered only when it is a complete JPEG (else dropped and counted in corrupt). markers: SOI to EOI, every segment inside, restart markers in turn; entropy: also every Huffman code of every block of a baseline JPEG read against the image's tables, the blocks' count and DC range (catches most chunks lost, repeated or swapped in the middle of the image, which markers cannot see; about 2 ms per 40 KB 640x480 JPEG); auto: entropy for chunked, markers for whole (one datagram, one image)",
    },
    maxClockSkew: {
      type: 'duration',
      min: 0,
      default: DEFAULT_CLOCK_SKEW,
      doc: "native: a sender's timestamp further than this from our clock (or not a number) is replaced by the arrival time and counted in badTimestamps; 0 = take timestamps as sent",
    },
  },
  faults:
    'a transport of datagrams: a bad datagram costs itself (garbage), a bad image itself (corrupt, incomplete), never the pipeline; memory is bounded by maxFrameBytes, maxPendingBytes and 16 images in reassembly; warnings are rate-limited; frames carry their sender (a sink drops, and counts, one it cannot take). Failing to bind ends the pipeline',
  create(o, ctx) {
    checkUdpToken(ctx.name, o.proto, o.token)
    return new UdpServerSource(o, ctx)
  },
})

export const udpServer = stageFactory<UdpServerSourceOptions, UdpServerSource, UdpServerEvents>(spec)
