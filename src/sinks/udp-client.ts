// The udp-client sink: its options, spec and factory. The engine is src/net/udp/sender.ts.

import { MAX_DATAGRAM } from '../net/udp/native.js'
import { UDP_PROTOS, type UdpProto } from '../net/udp/socket.js'
import { serverHostOption, serverPortOption } from '../net/options.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { checkMessage, UdpClientSink } from '../net/udp/sender.js'
import { checkUdpToken } from '../net/security.js'
import { SIGNED_DATA_HEADER_BYTES } from '../net/udp/auth.js'
import { InvalidOptionError } from '../core/errors.js'

export interface UdpClientSinkOptions {
  /** Receiver to send to (default 127.0.0.1) */
  host?: string
  /** Receiver UDP port (default 9999) */
  port?: number
  /** native: frame-pipe datagrams of mtu bytes with frame id and metadata; whole: seed 000a, one datagram per JPEG (at most 65507 bytes, bigger frames are dropped and counted in oversize); chunked: seed 000b/c (default native) */
  proto?: UdpProto
  /** reply: a frame holds a window slot until acknowledged (native: the receiver's ack; whole/chunked: any reply datagram, like the seeds' recv); none: send without waiting (default reply) */
  ack?: 'reply' | 'none'
  /** Frames sent and not yet acknowledged at most (ack=reply); use 1 with whole/chunked, whose replies name no frame (default 1) */
  window?: number
  /** Window full: skip = the newest frame waits for the next free slot and replaces the one waiting (counted in drops), for live sources; wait = hold the pipeline back (files, tests) (default skip) */
  whenFull?: 'skip' | 'wait'
  /** A frame unanswered this long frees its slot (counted in unacked) (milliseconds; default 1s) */
  ackTimeout?: number
  /** native: largest datagram, header included (52 bytes); whole/chunked ignore it (chunks are 1024, the header 8) (bytes; default 1400) */
  mtu?: number
  /** Seed 000c client 2: also send `message` to this port every msgInterval and read the 'get the msg' replies; 0 = off (default 0) */
  msgPort?: number
  /** JSON text sent to msgPort (client 2 sends json.dumps([0,0,0,1])) (default [0, 0, 0, 1]) */
  message?: string
  /** Pause after each message before waiting for its reply (at most ackTimeout) (milliseconds; default 10ms) */
  msgInterval?: number
  /** Sign every datagram with an HMAC of this token (at least 16 characters; @FILE or env:NAME), and take only acks signed with it; the receiver needs the same token=; proto=native only (seed 000's wires cannot carry a signature) (the secret, @FILE or env:NAME; default (none)) */
  token?: string
}

/** Events of udp-client (see core/events.ts): throttled warning lines, and each reply from the receiver. */
export interface UdpClientEvents {
  warning: string
  reply: string
}

export const spec = defineStage<UdpClientSinkOptions, UdpClientSink>({
  name: 'udp-client',
  kind: 'sink',
  input: 'frames',
  output: 'frames',
  description: 'Send frames over UDP (native datagrams, or seed 000 whole/chunked JPEGs), paced by acks; a transport with its own framing',
  passes: 'each frame once its last datagram is out',
  options: {
    host: serverHostOption('Receiver to send to'),
    port: serverPortOption(9999, 'Receiver UDP port'),
    proto: {
      type: 'enum',
      values: UDP_PROTOS,
      default: 'native',
      doc: 'native: frame-pipe datagrams of mtu bytes with frame id and metadata; whole: seed 000a, one datagram per JPEG (at most 65507 bytes, bigger frames are dropped and counted in oversize); chunked: seed 000b/c',
    },
    ack: {
      type: 'enum',
      values: ['reply', 'none'],
      default: 'reply',
      doc: "reply: a frame holds a window slot until acknowledged (native: the receiver's ack; whole/chunked: any reply datagram, like the seeds' recv); none: send without waiting",
    },
    window: {
      type: 'int',
      min: 1,
      default: 1,
      doc: 'Frames sent and not yet acknowledged at most (ack=reply); use 1 with whole/chunked, whose replies name no frame',
    },
    whenFull: {
      type: 'enum',
      values: ['skip', 'wait'],
      default: 'skip',
      doc: 'Window full: skip = the newest frame waits for the next free slot and replaces the one waiting (counted in drops), for live sources; wait = hold the pipeline back (files, tests)',
    },
    ackTimeout: { type: 'duration', min: 1, default: 1000, doc: 'A frame unanswered this long frees its slot (counted in unacked)' },
    mtu: {
      type: 'size',
      min: 64,
      max: MAX_DATAGRAM,
      default: 1400,
      doc: 'native: largest datagram, header included (52 bytes); whole/chunked ignore it (chunks are 1024, the header 8)',
    },
    msgPort: {
      type: 'int',
      min: 0,
      max: 65535,
      default: 0,
      doc: "Seed 000c client 2: also send `message` to this port every msgInterval and read the 'get the msg' replies; 0 = off",
    },
    message: { type: 'string', default: '[0, 0, 0, 1]', doc: 'JSON text sent to msgPort (client 2 sends json.dumps([0,0,0,1]))' },
    msgInterval: {
      type: 'duration',
      min: 0,
      default: 10,
      doc: 'Pause after each message before waiting for its reply (at most ackTimeout)',
    },
    token: {
      type: 'secret',
      default: '',
      doc: "Sign every datagram with an HMAC of this token (at least 16 characters; @FILE or env:NAME), and take only acks signed with it; the receiver needs the same token=; proto=native only (seed 000's wires cannot carry a signature)",
    },
  },
  create(o, ctx) {
    // Checked before the stream exists: a constructed stream would open its sockets.
    checkMessage(o.message, ctx.name)
    checkUdpToken(ctx.name, o.proto, o.token)
    if (o.token !== '' && o.mtu <= SIGNED_DATA_HEADER_BYTES)
      throw new InvalidOptionError(
        ctx.name,
        'mtu',
        `mtu=${o.mtu} leaves no room for a payload after a signed header (${SIGNED_DATA_HEADER_BYTES} bytes)`,
      )
    return new UdpClientSink(o, ctx)
  },
})

export const udpClient = stageFactory<UdpClientSinkOptions, UdpClientSink, UdpClientEvents>(spec)
