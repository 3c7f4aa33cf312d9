// frame-pipe's own UDP framing: every datagram carries a 52-byte header with
// the frame's id, the chunk's place, the frame's metadata and its CRC-32, so a
// receiver can reassemble by id whatever the network loses, repeats or
// reorders, check the result, and acks name the frame they acknowledge.
// Big-endian, like the native TCP header.

import { crc32 } from 'node:zlib'
import { FRAME_FORMATS, type Frame } from '../../core/frame.js'
import { FramePipeError } from '../../core/errors.js'
import { NATIVE_FORMAT_CODES, type FrameMeta } from '../../wire/headers.js'

export const UDP_MAGIC = 0x46505544 // "FPUD"
export const UDP_VERSION = 1
export const TYPE_DATA = 1
export const TYPE_ACK = 2
export const DATA_HEADER_BYTES = 52
/**
 * Longest data header read (later versions may add fields, which this reader
 * skips). A longer one is refused: padded headers would let a sender make
 * every tiny chunk cost a whole datagram of memory.
 */
export const MAX_DATA_HEADER_BYTES = 256
export const ACK_BYTES = 16
/** The largest UDP payload over IPv4. */
export const MAX_DATAGRAM = 65_507
/** Chunk index and count are 16-bit. */
export const MAX_CHUNKS = 0xffff

export interface DataHeader {
  stream: number
  id: number
  index: number
  count: number
  total: number
  /** Bytes before the payload (52 in version 1; more is skipped). */
  headerLength: number
  /** CRC-32 of the whole frame. */
  crc: number
  meta: FrameMeta
}

export type Parsed =
  { kind: 'data'; header: DataHeader; payload: Buffer } | { kind: 'ack'; stream: number; id: number } | { kind: 'bad'; reason: string }

/** Bytes of one frame each datagram of `mtu` bytes carries (headers of `headerBytes`: longer when signed, see ./auth.ts). */
export function chunkPayload(mtu: number, headerBytes = DATA_HEADER_BYTES): number {
  return mtu - headerBytes
}

/**
 * The datagrams of one frame, each a [header, payload view] pair for a
 * vectored send: the payload is never copied. Errors name what does not fit.
 * `headerBytes` > 52 leaves room after the header for a signature (./auth.ts).
 */
export function encodeFrame(
  frame: Frame,
  stream: number,
  id: number,
  mtu: number,
  stage: string,
  headerBytes = DATA_HEADER_BYTES,
): Buffer[][] | FramePipeError {
  const bad = (what: string) => new FramePipeError('ERR_BAD_FRAME', `frame seq ${frame.seq} ${what}`, { stage })
  const per = chunkPayload(mtu, headerBytes)
  const total = frame.data.length
  const count = Math.max(1, Math.ceil(total / per))
  if (total > 0xffffffff) return bad(`is ${total} bytes; the native UDP header holds at most 4294967295`)
  if (count > MAX_CHUNKS) return bad(`is ${total} bytes: ${count} datagrams of mtu ${mtu}, more than ${MAX_CHUNKS}; raise mtu`)
  const code = NATIVE_FORMAT_CODES.indexOf(frame.format)
  if (code < 0) return bad(`has format '${frame.format}'; the native header knows ${FRAME_FORMATS.join(', ')}`)
  if (!fits(frame.width) || !fits(frame.height))
    return bad(`has size ${frame.width}x${frame.height}; the native header holds 0..4294967295`)
  if (!Number.isInteger(frame.channels) || frame.channels < 0 || frame.channels > 255)
    return bad(`has ${frame.channels} channels; the native header holds 0..255`)
  // Every datagram carries the same header but for the index: fill one template, copy it per chunk.
  const template = Buffer.alloc(headerBytes)
  template.writeUInt32BE(UDP_MAGIC, 0)
  template.writeUInt8(UDP_VERSION, 4)
  template.writeUInt8(TYPE_DATA, 5)
  template.writeUInt16BE(headerBytes, 6)
  template.writeUInt32BE(stream >>> 0, 8)
  template.writeUInt32BE(id >>> 0, 12)
  template.writeUInt16BE(0, 16)
  template.writeUInt16BE(count, 18)
  template.writeUInt32BE(total, 20)
  template.writeDoubleBE(frame.timestamp, 24)
  template.writeUInt32BE(frame.seq >>> 0, 32)
  template.writeUInt32BE(frame.width, 36)
  template.writeUInt32BE(frame.height, 40)
  template.writeUInt8(code, 44)
  template.writeUInt8(frame.channels, 45)
  template.writeUInt16BE(0, 46)
  template.writeUInt32BE(crc32(frame.data), 48)
  const out: Buffer[][] = []
  for (let i = 0; i < count; i++) {
    const header = i === 0 ? template : Buffer.from(template)
    header.writeUInt16BE(i, 16)
    out.push([header, frame.data.subarray(i * per, (i + 1) * per)])
  }
  return out
}

function fits(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff
}

export function encodeAck(stream: number, id: number): Buffer {
  const b = Buffer.allocUnsafe(ACK_BYTES)
  b.writeUInt32BE(UDP_MAGIC, 0)
  b.writeUInt8(UDP_VERSION, 4)
  b.writeUInt8(TYPE_ACK, 5)
  b.writeUInt16BE(ACK_BYTES, 6)
  b.writeUInt32BE(stream >>> 0, 8)
  b.writeUInt32BE(id >>> 0, 12)
  return b
}

/** Read one datagram; anything that is not a well-formed version-1 datagram is 'bad' with the reason. */
export function parseDatagram(d: Buffer): Parsed {
  if (d.length < 8 || d.readUInt32BE(0) !== UDP_MAGIC) {
    return { kind: 'bad', reason: `datagram of ${d.length} bytes without the FPUD magic` }
  }
  const version = d[4]!
  if (version !== UDP_VERSION) return { kind: 'bad', reason: `datagram of version ${version}; this reader reads version ${UDP_VERSION}` }
  const type = d[5]!
  const headerLength = d.readUInt16BE(6)
  if (type === TYPE_ACK) {
    if (d.length < ACK_BYTES || headerLength < ACK_BYTES)
      return { kind: 'bad', reason: `ack of ${d.length} bytes, shorter than ${ACK_BYTES}` }
    return { kind: 'ack', stream: d.readUInt32BE(8), id: d.readUInt32BE(12) }
  }
  if (type !== TYPE_DATA) return { kind: 'bad', reason: `datagram of unknown type ${type}` }
  if (headerLength < DATA_HEADER_BYTES || headerLength > MAX_DATA_HEADER_BYTES || d.length < headerLength) {
    return {
      kind: 'bad',
      reason: `data datagram of ${d.length} bytes announcing a ${headerLength}-byte header (${DATA_HEADER_BYTES}..${MAX_DATA_HEADER_BYTES})`,
    }
  }
  const index = d.readUInt16BE(16)
  const count = d.readUInt16BE(18)
  if (count === 0 || index >= count) return { kind: 'bad', reason: `chunk index ${index} of count ${count}` }
  return {
    kind: 'data',
    header: {
      stream: d.readUInt32BE(8),
      id: d.readUInt32BE(12),
      index,
      count,
      total: d.readUInt32BE(20),
      headerLength,
      crc: d.readUInt32BE(48),
      meta: {
        timestamp: d.readDoubleBE(24),
        seq: d.readUInt32BE(32),
        width: d.readUInt32BE(36),
        height: d.readUInt32BE(40),
        format: NATIVE_FORMAT_CODES[d[44]!] ?? 'unknown',
        channels: d[45]!,
      },
    },
    payload: d.subarray(headerLength),
  }
}

/** Is `a` after `b` in 32-bit serial-number order (RFC 1982)? Frame ids wrap. */
export function isAfter(a: number, b: number): boolean {
  const d = (a - b) >>> 0
  return d !== 0 && d < 2 ** 31
}

/** How far `a` is after `b`, modulo 2^32. */
export function distance(a: number, b: number): number {
  return (a - b) >>> 0
}
