// Signed native datagrams (udp-client / udp-server token=): every datagram
// carries a 16-byte tag, HMAC-SHA256 truncated to 128 bits, over everything in
// it but the tag: header and payload. A receiver with the token drops (and
// counts in `forged`) every datagram whose tag is missing or wrong, so nobody
// without the token can inject frames or cut them with forged chunks; a
// sender with the token likewise ignores acks that are not signed.
//
//   data: bytes 0..51 as ever, byte 46 (reserved before) has bit 0 set, the
//         header length (bytes 6..7) is 68, the tag is bytes 52..67, the
//         payload follows. A receiver without a token reads it as before (it
//         skips a header longer than 52 bytes) and says once that it is signed.
//   ack:  bytes 0..15 as ever, header length 32, the tag is bytes 16..31.
// The key is HMAC-SHA256(token, "frame-pipe udp v1"), not the token itself,
// so the token is used for nothing else than the TCP check would use it for.
// Datagrams carry no session: a recording could be replayed as a new stream
// (within a stream, frame ids already settled are dropped as late).

import { createHmac, timingSafeEqual } from 'node:crypto'
import { ACK_BYTES, DATA_HEADER_BYTES, TYPE_ACK, TYPE_DATA, UDP_MAGIC, UDP_VERSION } from './native.js'

export const TAG_BYTES = 16
export const SIGNED_DATA_HEADER_BYTES = DATA_HEADER_BYTES + TAG_BYTES
export const SIGNED_ACK_BYTES = ACK_BYTES + TAG_BYTES
/** Byte 46 of a data header: flags. */
export const FLAGS_OFFSET = 46
export const FLAG_SIGNED = 0x01

export function udpKey(token: string): Buffer {
  return createHmac('sha256', token).update('frame-pipe udp v1').digest()
}

/** Sign a data datagram in place: `header` is SIGNED_DATA_HEADER_BYTES long and complete but for the tag. */
export function signData(header: Buffer, payload: Buffer, key: Buffer): void {
  header[FLAGS_OFFSET] = header[FLAGS_OFFSET]! | FLAG_SIGNED
  createHmac('sha256', key)
    .update(header.subarray(0, DATA_HEADER_BYTES))
    .update(payload)
    .digest()
    .copy(header, DATA_HEADER_BYTES, 0, TAG_BYTES)
}

/** A signed copy of a 16-byte ack. */
export function signAck(ack: Buffer, key: Buffer): Buffer {
  const out = Buffer.alloc(SIGNED_ACK_BYTES)
  ack.copy(out, 0, 0, ACK_BYTES)
  out.writeUInt16BE(SIGNED_ACK_BYTES, 6)
  createHmac('sha256', key).update(out.subarray(0, ACK_BYTES)).digest().copy(out, ACK_BYTES, 0, TAG_BYTES)
  return out
}

/** 'ok'; 'unsigned': no tag (a sender without token=, or not frame-pipe); 'forged': a tag that does not match. */
export type Verdict = 'ok' | 'unsigned' | 'forged'

export function verifyDatagram(d: Buffer, key: Buffer): Verdict {
  if (d.length < 8 || d.readUInt32BE(0) !== UDP_MAGIC || d[4] !== UDP_VERSION) return 'unsigned'
  const type = d[5]
  const headerLength = d.readUInt16BE(6)
  let signedPart: number
  if (type === TYPE_DATA) {
    if (d.length < SIGNED_DATA_HEADER_BYTES || !(d[FLAGS_OFFSET]! & FLAG_SIGNED) || headerLength < SIGNED_DATA_HEADER_BYTES)
      return 'unsigned'
    signedPart = DATA_HEADER_BYTES
  } else if (type === TYPE_ACK) {
    if (d.length < SIGNED_ACK_BYTES || headerLength < SIGNED_ACK_BYTES) return 'unsigned'
    signedPart = ACK_BYTES
  } else {
    return 'unsigned'
  }
  const tag = createHmac('sha256', key)
    .update(d.subarray(0, signedPart))
    .update(d.subarray(signedPart + TAG_BYTES))
    .digest()
  // Constant time: a compare that stops at the first wrong byte would let a forger find a tag byte by byte.
  return timingSafeEqual(tag.subarray(0, TAG_BYTES), d.subarray(signedPart, signedPart + TAG_BYTES)) ? 'ok' : 'forged'
}

/** A data datagram that carries a tag (for a receiver without token=, which takes it unchecked). */
export function isSignedData(d: Buffer): boolean {
  return (
    d.length >= SIGNED_DATA_HEADER_BYTES && d.readUInt32BE(0) === UDP_MAGIC && d[5] === TYPE_DATA && (d[FLAGS_OFFSET]! & FLAG_SIGNED) !== 0
  )
}
