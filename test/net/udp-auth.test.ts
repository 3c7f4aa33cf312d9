// Signed native UDP datagrams (udp-client / udp-server token=, src/net/udp/auth.ts):
// frames pass between ends with the same token; datagrams without the tag, with
// a tag made by another token, or altered on the way are dropped and counted in
// `forged`, and forged acks are ignored by the sender; the layout is pinned.

import test from 'ava'
import { makeFrame, type Frame } from '../../src/core/frame.js'
import { encodeFrame, DATA_HEADER_BYTES } from '../../src/net/udp/native.js'
import { FLAG_SIGNED, FLAGS_OFFSET, SIGNED_DATA_HEADER_BYTES, signData, TAG_BYTES, udpKey, verifyDatagram } from '../../src/net/udp/auth.js'
import { createHmac } from 'node:crypto'
import { prng } from '../helpers/index.js'
import { counters, rawSocket, send, startServer, syntheticJpeg, until } from '../helpers/udp.js'

const TOKEN = 'udp-token-long-enough-0123456789'

function jpegs(n: number, size = 5000): Frame[] {
  const rand = prng(7)
  return Array.from({ length: n }, (_, i) => makeFrame(syntheticJpeg(size, i, rand), { seq: i, width: 64, height: 48, channels: 3 }))
}

/** Every datagram of a frame as one Buffer, signed with `token` when given. */
function datagrams(frame: Frame, token?: string, mtu = 1400): Buffer[] {
  const parts = encodeFrame(frame, 99, 0, mtu, 'test', token ? SIGNED_DATA_HEADER_BYTES : undefined) as Buffer[][]
  return parts.map(([header, payload]) => {
    if (token) signData(header!, payload!, udpKey(token))
    return Buffer.concat([header!, payload!])
  })
}

test('the signed layout: flag bit in byte 46, header length 68, a 16-byte HMAC-SHA256 tag at 52 over the rest', (t) => {
  const [d] = datagrams(jpegs(1, 500)[0]!, TOKEN)
  t.is(d!.readUInt16BE(6), SIGNED_DATA_HEADER_BYTES)
  t.is(d![FLAGS_OFFSET]! & FLAG_SIGNED, FLAG_SIGNED)
  const key = createHmac('sha256', TOKEN).update('frame-pipe udp v1').digest()
  const tag = createHmac('sha256', key)
    .update(d!.subarray(0, DATA_HEADER_BYTES))
    .update(d!.subarray(SIGNED_DATA_HEADER_BYTES))
    .digest()
    .subarray(0, TAG_BYTES)
  t.deepEqual(d!.subarray(DATA_HEADER_BYTES, SIGNED_DATA_HEADER_BYTES), tag)
  t.is(verifyDatagram(d!, udpKey(TOKEN)), 'ok')
  t.is(verifyDatagram(d!, udpKey('another-token-of-some-length')), 'forged')
  const altered = Buffer.from(d!)
  altered[altered.length - 1]! ^= 1
  t.is(verifyDatagram(altered, udpKey(TOKEN)), 'forged', 'a payload byte changed')
  t.is(verifyDatagram(datagrams(jpegs(1, 500)[0]!)[0]!, udpKey(TOKEN)), 'unsigned')
})

test('udp-client and udp-server with the same token: every frame arrives, acks are signed, nothing is counted forged', async (t) => {
  const server = await startServer(t, { token: TOKEN })
  const frames = jpegs(6, 4000)
  const run = await send(frames, { port: server.port, token: TOKEN, whenFull: 'wait' })
  await until(() => server.frames.length === 6, 5000, 'six frames')
  t.deepEqual(
    server.frames.map((f) => f.data),
    frames.map((f) => f.data),
  )
  t.is(run.counters.acked, 6, 'every ack passed the sender’s check')
  t.is(run.counters.forged, 0)
})

test('a sender without the token, with another token, or a forger: every datagram dropped and counted in forged', async (t) => {
  const server = await startServer(t, { token: TOKEN })
  const c = () => counters(server.server)
  // No token: unsigned.
  const plain = await send(jpegs(2, 3000), { port: server.port, ack: 'none' })
  t.is(plain.counters.frames, 2)
  await until(() => c().forged >= 6, 5000, 'unsigned datagrams counted')
  // Another token: forged.
  await send(jpegs(2, 3000), { port: server.port, ack: 'none', token: 'another-token-of-some-length' })
  await until(() => c().forged >= 12, 5000, 'wrongly signed datagrams counted')
  // A forger who copied a real datagram and changed its payload.
  const raw = await rawSocket(t)
  const real = datagrams(jpegs(1, 500)[0]!, TOKEN)[0]!
  const altered = Buffer.from(real)
  altered[altered.length - 1]! ^= 0xff
  await raw.send(altered, server.port)
  await until(() => c().forged >= 13, 5000, 'the altered datagram counted')
  t.is(server.frames.length, 0, 'not one frame got through')
  t.true(server.warnings.some((w) => /not signed \(does the sender have token=\?\)/.test(w)))
  // The real datagram itself still passes.
  await raw.send(real, server.port)
  await until(() => server.frames.length === 1, 5000, 'the genuine datagram')
})

test('a receiver without a token takes signed datagrams, and says so once; a signed sender ignores its unsigned acks', async (t) => {
  const server = await startServer(t, {})
  const run = await send(jpegs(3, 3000), { port: server.port, token: TOKEN, ackTimeout: 300, whenFull: 'wait' })
  await until(() => server.frames.length === 3, 5000, 'three frames')
  t.is(server.warnings.filter((w) => /signs its datagrams \(token=\), but this receiver has no token=/.test(w)).length, 1)
  t.is(run.counters.acked, 0)
  t.is(run.counters.forged, 3, 'three unsigned acks ignored')
  t.is(run.counters.unacked, 3)
  t.true(run.warnings.some((w) => /ignored an unsigned or forged ack/.test(w)))
})
