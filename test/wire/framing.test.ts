// prefix / unprefix: round trips under any chunking, corruption, limits,
// end of input, peer boundaries, and the exact error messages.

import test from 'ava'
import { testProp, fc } from '@fast-check/ava'
import { once } from 'node:events'
import { Readable, Writable, type Transform } from 'node:stream'
import { crc32 } from 'node:zlib'
import { FramePipeError, FrameTooLargeError, UnexpectedEofError, type ErrorCode } from '../../src/core/errors.js'
import { FRAME_FORMATS, now, sniffFormat, type Boundary, type Frame } from '../../src/core/frame.js'
import {
  checkSendLength,
  encodeHeader,
  FIXED_HEADER_FORMATS,
  HEADER_BYTES,
  type FixedHeaderFormat,
  type HeaderFormat,
} from '../../src/wire/headers.js'
import { pipeline } from '../../src/core/pipeline.js'
import { nullSink } from '../../src/sinks/null.js'
import { stageInfo } from '../../src/core/stage.js'
import { prefix } from '../../src/transforms/prefix.js'
import { unprefix, type UnprefixOptions } from '../../src/transforms/unprefix.js'
import { fromItems, rechunk, run, withTimeout } from '../helpers/index.js'

const TIMEOUT = 5000

// The fixed-size formats; ascii (variable length, payload rules) has its own tests in the ascii section.
interface Variant {
  header: HeaderFormat
  checksum: boolean
}
const VARIANTS: Array<Variant & { header: FixedHeaderFormat }> = [
  ...FIXED_HEADER_FORMATS.map((header) => ({ header, checksum: false })),
  { header: 'native', checksum: true },
]
const label = (v: Variant) => v.header + (v.checksum ? '+crc' : '')

const frameArb = fc.record({
  data: fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
  format: fc.constantFrom(...FRAME_FORMATS),
  width: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  height: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  channels: fc.integer({ min: 0, max: 255 }),
  seq: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  timestamp: fc.double({ noNaN: true }),
})

function frame(data: Buffer | string, init: Partial<Omit<Frame, 'data'>> = {}): Frame {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data
  return { data: bytes, format: 'unknown', width: 0, height: 0, channels: 0, seq: 0, timestamp: 1_700_000_000_000.5, ...init }
}

async function prefixPackets(frames: readonly Frame[], v: Variant): Promise<Buffer[][]> {
  return withTimeout(run<Buffer[]>(fromItems(frames), prefix(v)), TIMEOUT, 'prefix')
}

async function encode(frames: readonly Frame[], v: Variant): Promise<Buffer> {
  return Buffer.concat((await prefixPackets(frames, v)).flat())
}

// These tests are about the wire: native timestamps come back as sent (maxClockSkew=0).
async function decode(chunks: readonly unknown[], options: UnprefixOptions): Promise<Frame[]> {
  return withTimeout(run<Frame>(fromItems(chunks), unprefix({ maxClockSkew: 0, ...options })), TIMEOUT, 'unprefix')
}

async function decodeError(chunks: readonly unknown[], options: UnprefixOptions): Promise<FramePipeError> {
  const err = await decode(chunks, options).then(
    (frames) => new Error(`expected an error, got ${frames.length} frames`),
    (e: unknown) => e,
  )
  if (!(err instanceof FramePipeError)) throw err
  return err
}

/** What unprefix must give back for `frames` sent with `header`. */
function expected(frames: readonly Frame[], header: HeaderFormat): object[] {
  return frames.map((f, i) =>
    header === 'native'
      ? { ...f, data: f.data.toString('hex') }
      : { data: f.data.toString('hex'), format: sniffFormat(f.data), width: 0, height: 0, channels: 0, seq: i },
  )
}

function comparable(frames: readonly Frame[], header: HeaderFormat): object[] {
  return frames.map((f) =>
    header === 'native'
      ? { ...f, data: f.data.toString('hex') }
      : { data: f.data.toString('hex'), format: f.format, width: f.width, height: f.height, channels: f.channels, seq: f.seq },
  )
}

function counters(stream: Transform) {
  return stageInfo(stream)!.counters
}

function u32be(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

function nativeHeader(f: Frame, checksum = false): Buffer {
  const h = encodeHeader('native', f, checksum, 'test')
  if (h instanceof FramePipeError) throw h
  return h
}

// ---------------------------------------------------------------- round trips

for (const v of VARIANTS) {
  testProp(
    `round trip (${label(v)}): unprefix(prefix(x)) = x under any chunking`,
    [fc.array(frameArb, { maxLength: 8 }), fc.nat(), fc.integer({ min: 1, max: 100 })],
    async (t, frames, seed, maxPiece) => {
      const packets = await prefixPackets(frames, v)
      const bytes = Buffer.concat(packets.flat())
      const want = expected(frames, v.header)
      const chunkings: Array<[string, unknown[]]> = [
        ['seeded pieces', rechunk(bytes, seed, maxPiece)],
        ['1-byte pieces', rechunk(bytes, seed, 1)],
        ['whole stream', bytes.length ? [bytes] : []],
        ['prefix packets', packets],
      ]
      for (const [name, chunks] of chunkings) {
        const before = now()
        const got = await decode(chunks, { header: v.header })
        t.deepEqual(comparable(got, v.header), want, name)
        if (v.header !== 'native') {
          const after = now()
          t.true(
            got.every((f) => f.timestamp >= before && f.timestamp <= after),
            'timestamp = arrival time',
          )
        }
      }
    },
  )
}

test('prefix pushes one [header, payload] packet per frame and never copies the payload', async (t) => {
  const f = frame('hello frame-pipe')
  for (const v of VARIANTS) {
    const stage = prefix(v)
    const packets = await withTimeout(run<Buffer[]>(fromItems([f, f]), stage), TIMEOUT)
    t.is(packets.length, 2)
    for (const p of packets) {
      t.true(Array.isArray(p))
      t.is(p.length, 2)
      t.is(p[0]!.length, HEADER_BYTES[v.header])
      t.is(p[1], f.data)
    }
    t.not(packets[0]![0], packets[1]![0], 'a fresh header per frame')
    t.like(counters(stage), { frames: 2, bytes: 2 * (HEADER_BYTES[v.header] + 16) })
  }
})

test('the headers of every format for a 16-byte payload', async (t) => {
  const f = frame('hello frame-pipe', { seq: 7, timestamp: 1_700_000_000_000.5, width: 2, height: 2, format: 'raw', channels: 4 })
  const head = async (v: Variant) => (await prefixPackets([f], v))[0]![0]!.toString('hex')
  t.is(await head({ header: 'u32be', checksum: false }), '00000010')
  t.is(await head({ header: 'u32le', checksum: false }), '10000000')
  t.is(await head({ header: 'ii', checksum: false }), '1000000010000000')
  t.is(await head({ header: 'i64le', checksum: false }), '1000000000000000')
  t.is(await head({ header: 'u32be', checksum: true }), '00000010', 'checksum is ignored by other formats')
  const crc = crc32(f.data).toString(16).padStart(8, '0')
  t.is(
    await head({ header: 'native', checksum: false }),
    '46524d50' +
      '01' +
      '00' +
      '0028' +
      '00000010' +
      '00000007' +
      '4278bcfe56800800' +
      '00000002' +
      '00000002' +
      '01' +
      '04' +
      '0000' +
      '00000000',
  )
  t.is(
    await head({ header: 'native', checksum: true }),
    '46524d50' + '01' + '01' + '0028' + '00000010' + '00000007' + '4278bcfe56800800' + '00000002' + '00000002' + '01' + '04' + '0000' + crc,
  )
})

test('an empty payload is a frame', async (t) => {
  for (const v of VARIANTS) {
    const bytes = await encode([frame(Buffer.alloc(0)), frame('x')], v)
    const got = await decode([bytes], { header: v.header })
    t.deepEqual(
      got.map((f) => f.data.toString()),
      ['', 'x'],
      label(v),
    )
  }
  // Emitted as soon as its header is complete, without waiting for more input.
  const u = unprefix()
  u.write(u32be(0))
  const [f] = (await withTimeout(once(u, 'data'), TIMEOUT)) as [Frame]
  t.is(f.data.length, 0)
  u.destroy()
})

test('native sequence numbers wrap at 2^32', async (t) => {
  const bytes = await encode([frame('a', { seq: 2 ** 32 }), frame('b', { seq: -1 })], { header: 'native', checksum: false })
  t.deepEqual(
    (await decode([bytes], { header: 'native' })).map((f) => f.seq),
    [0, 2 ** 32 - 1],
  )
})

test('a body inside one chunk is a zero-copy view; a body across chunks is read into one pooled buffer, given back on release', async (t) => {
  const payload = Buffer.alloc(10_000, 0xab)
  const bytes = Buffer.concat([u32be(payload.length), payload])
  const [whole] = await decode([bytes], {})
  t.is(whole!.data.buffer, bytes.buffer)
  t.is(whole!.release, undefined, "a view into the chunk is nobody's to give back")
  const [split] = await decode(rechunk(bytes, 1, 1460), {})
  t.true(split!.data.equals(payload))
  t.is(split!.data.byteOffset, 0)
  // Its length and an eighth of headroom, for the next frames of about the same size: one allocation, never per chunk.
  t.is(split!.data.buffer.byteLength, payload.length + payload.length / 8)
  t.is(typeof split!.release, 'function')
})

test('1 MB fed 1 byte at a time parses in linear time', async (t) => {
  const length = 2 ** 20
  const bytes = Buffer.alloc(4 + length)
  bytes.writeUInt32BE(length)
  for (let i = 4; i < bytes.length; i++) bytes[i] = i & 0xff
  const u = unprefix()
  const frames: Frame[] = []
  u.on('data', (f: Frame) => frames.push(f))
  const done = once(u, 'end')
  const feed = async () => {
    for (let i = 0; i < bytes.length; i++) {
      if (!u.write(bytes.subarray(i, i + 1))) await once(u, 'drain')
    }
    u.end()
    await done
  }
  // A quadratic parser copies ~5e11 bytes here and would hit this limit.
  await withTimeout(feed(), 30_000, '1 MB in 1-byte chunks')
  t.is(frames.length, 1)
  t.true(frames[0]!.data.equals(bytes.subarray(4)))
})

test('unprefix takes Uint8Array chunks and Buffer[] packets', async (t) => {
  const bytes = await encode([frame('one'), frame('two')], { header: 'u32le', checksum: false })
  const u8 = new Uint8Array(bytes.length + 4).subarray(2, 2 + bytes.length)
  u8.set(bytes)
  const got = await decode([u8.subarray(0, 5), [Buffer.from(u8.subarray(5, 9)), u8.subarray(9)]], { header: 'u32le' })
  t.deepEqual(
    got.map((f) => f.data.toString()),
    ['one', 'two'],
  )
})

test('counters: frames and payload bytes', async (t) => {
  const bytes = await encode([frame('abc'), frame(''), frame('hello')], { header: 'u32be', checksum: false })
  const u = unprefix()
  await withTimeout(run(fromItems([bytes]), u), TIMEOUT)
  t.deepEqual({ ...counters(u) }, { frames: 3, bytes: 8, drops: 0 })
})

// ---------------------------------------------------------------- corruption

const EXPECTED_CODES: ErrorCode[] = ['ERR_FRAME_TOO_LARGE', 'ERR_UNEXPECTED_EOF', 'ERR_BAD_HEADER', 'ERR_CHECKSUM']
const mutationArb = fc.record({
  kind: fc.constantFrom('flip', 'insert', 'delete'),
  at: fc.nat(),
  value: fc.integer({ min: 1, max: 255 }),
})

function mutate(bytes: Buffer, mutations: ReadonlyArray<{ kind: string; at: number; value: number }>): Buffer {
  let out = Buffer.from(bytes)
  for (const m of mutations) {
    if (m.kind === 'insert') {
      const at = m.at % (out.length + 1)
      out = Buffer.concat([out.subarray(0, at), Buffer.from([m.value]), out.subarray(at)])
    } else if (out.length > 0) {
      const at = m.at % out.length
      if (m.kind === 'flip') out[at]! ^= m.value
      else out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)])
    }
  }
  return out
}

testProp(
  'corrupted streams give frames or a typed error, never a hang or a large allocation',
  [
    fc.constantFrom(...VARIANTS),
    fc.array(frameArb, { maxLength: 5 }),
    fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
    fc.nat(),
    fc.integer({ min: 1, max: 64 }),
  ],
  async (t, v, frames, mutations, seed, maxPiece) => {
    const bytes = mutate(await encode(frames, v), mutations)
    const maxFrameBytes = 1024
    try {
      const got = await decode(rechunk(bytes, seed, maxPiece), { header: v.header, maxFrameBytes })
      t.true(got.every((f) => f.data.length <= maxFrameBytes))
      const consumed = got.reduce((n, f) => n + HEADER_BYTES[v.header] + f.data.length, 0)
      t.true(consumed <= bytes.length, 'frames cannot hold more bytes than came in')
    } catch (err) {
      t.true(err instanceof FramePipeError, String(err))
      t.true(EXPECTED_CODES.includes((err as FramePipeError).code), (err as FramePipeError).code)
    }
  },
)

testProp(
  'native CRC-32 detects any flipped payload byte',
  [fc.array(frameArb, { minLength: 1, maxLength: 5 }), fc.nat(), fc.nat(), fc.integer({ min: 1, max: 255 }), fc.nat()],
  async (t, frames, pick, at, xor, seed) => {
    const nonEmpty = frames.map((_, i) => i).filter((i) => frames[i]!.data.length > 0)
    fc.pre(nonEmpty.length > 0)
    const victim = nonEmpty[pick % nonEmpty.length]!
    let offset = 0
    for (let i = 0; i < victim; i++) offset += 40 + frames[i]!.data.length
    const bytes = await encode(frames, { header: 'native', checksum: true })
    bytes[offset + 40 + (at % frames[victim]!.data.length)]! ^= xor
    const err = await decodeError(rechunk(bytes, seed, 50), { header: 'native' })
    t.is(err.code, 'ERR_CHECKSUM')
    t.true(err.message.startsWith(`unprefix: CRC-32 mismatch in frame seq ${frames[victim]!.seq} (`), err.message)
  },
)

test('native CRC mismatch names seq, expected and actual', async (t) => {
  const f = frame('hello frame-pipe', { seq: 9 })
  const bytes = await encode([f], { header: 'native', checksum: true })
  bytes[40]! ^= 0x20 // 'h' of 'hello' -> 'H'
  const err = await decodeError([bytes], { header: 'native' })
  const hex = (b: Buffer) => '0x' + crc32(b).toString(16).padStart(8, '0')
  t.is(
    err.message,
    `unprefix: CRC-32 mismatch in frame seq 9 (16 bytes): expected ${hex(f.data)}, actual ${hex(Buffer.from('Hello frame-pipe'))}`,
  )
})

test('native without the CRC flag ignores the CRC field', async (t) => {
  const f = frame('abc')
  const h = nativeHeader(f)
  h.writeUInt32BE(0xdeadbeef, 36)
  t.deepEqual(
    (await decode([h, f.data], { header: 'native' })).map((x) => x.data.toString()),
    ['abc'],
  )
})

// ---------------------------------------------------------------- limits

const oversize: Record<FixedHeaderFormat, (n: number) => Buffer> = {
  u32be: (n) => u32be(n),
  u32le: (n) => {
    const b = Buffer.alloc(4)
    b.writeUInt32LE(n)
    return b
  },
  ii: (n) => {
    const b = Buffer.alloc(8)
    b.writeInt32LE(n, 0)
    b.writeInt32LE(n, 4)
    return b
  },
  i64le: (n) => {
    const b = Buffer.alloc(8)
    b.writeBigInt64LE(BigInt(n))
    return b
  },
  native: (n) => {
    const h = nativeHeader(frame(''))
    h.writeUInt32BE(n, 8)
    return h
  },
}

test('an oversize header is rejected on the header alone', async (t) => {
  for (const header of FIXED_HEADER_FORMATS) {
    const u = unprefix({ header, maxFrameBytes: 1000 })
    const failed = once(u, 'error')
    u.write(oversize[header](1001)) // and nothing more: no body, no end
    const [err] = (await withTimeout(failed, 2000, `${header} oversize`)) as [FrameTooLargeError]
    t.is(err.code, 'ERR_FRAME_TOO_LARGE', header)
    t.true(err instanceof FrameTooLargeError)
    t.is(err.size, 1001)
    t.is(err.limit, 1000)
    t.is(err.message, 'unprefix: header announces a frame of 1001 bytes, more than maxFrameBytes (1000)')
  }
})

test('four bytes cannot allocate 4 GiB: the default limit is 64 MiB', async (t) => {
  const err = await decodeError([u32be(0xffffffff)], {})
  t.is(err.message, 'unprefix: header announces a frame of 4294967295 bytes, more than maxFrameBytes (67108864)')
  const big = await decodeError([oversize.i64le(2 ** 53 - 1)], { header: 'i64le' })
  t.is(big.message, 'unprefix: header announces a frame of 9007199254740991 bytes, more than maxFrameBytes (67108864)')
  const huge = await decodeError([oversize.i64le(2 ** 62)], { header: 'i64le' })
  t.is(huge.code, 'ERR_FRAME_TOO_LARGE')
})

test('a frame exactly at maxFrameBytes passes', async (t) => {
  const got = await decode([u32be(5), Buffer.from('12345')], { maxFrameBytes: 5 })
  t.is(got[0]!.data.toString(), '12345')
})

test('prefix refuses lengths the header cannot hold', (t) => {
  t.is(checkSendLength('ii', 2 ** 31 - 1, 'prefix'), undefined)
  t.is(checkSendLength('u32be', 2 ** 32 - 1, 'prefix'), undefined)
  const ii = checkSendLength('ii', 2 ** 31, 'prefix')
  t.is(ii?.code, 'ERR_BAD_FRAME')
  t.is(ii?.message, 'prefix: frame of 2147483648 bytes is too large for the ii header (at most 2147483647)')
  for (const header of ['u32be', 'u32le', 'native'] as const) {
    t.is(
      checkSendLength(header, 2 ** 32, 'prefix')?.message,
      `prefix: frame of 4294967296 bytes is too large for the ${header} header (at most 4294967295)`,
    )
  }
})

// ---------------------------------------------------------------- end of input

testProp(
  'EOF inside the last frame reports exactly what is missing',
  [fc.constantFrom(...VARIANTS), fc.array(frameArb, { minLength: 1, maxLength: 4 }), fc.nat(), fc.nat()],
  async (t, v, frames, cutAt, seed) => {
    const bytes = await encode(frames, v)
    const headerSize = HEADER_BYTES[v.header]
    const last = headerSize + frames[frames.length - 1]!.data.length
    const start = bytes.length - last
    const cut = start + 1 + (cutAt % (last - 1 || 1))
    fc.pre(cut < bytes.length)
    const u = unprefix({ header: v.header })
    const err = await withTimeout(run(fromItems(rechunk(bytes.subarray(0, cut), seed, 40)), u), TIMEOUT).then(
      () => undefined,
      (e: unknown) => e,
    )
    t.true(err instanceof UnexpectedEofError, String(err))
    const inHeader = cut - start < headerSize
    const missing = inHeader ? headerSize - (cut - start) : bytes.length - cut
    const what = inHeader ? `a ${v.header} header` : 'a frame body'
    t.is((err as UnexpectedEofError).missing, missing)
    t.is((err as Error).message, `unprefix: stream ended in the middle of ${what}: ${missing} byte${missing === 1 ? '' : 's'} missing`)
    t.is(counters(u).frames, frames.length - 1, 'the frames before the cut came through')
  },
)

test('EOF messages', async (t) => {
  const bytes = Buffer.concat([u32be(16), Buffer.from('hello frame-pipe')])
  const body = await decodeError([bytes.subarray(0, 8)], {})
  t.is(body.code, 'ERR_UNEXPECTED_EOF')
  t.is(body.message, 'unprefix: stream ended in the middle of a frame body: 12 bytes missing')
  const head = await decodeError([bytes.subarray(0, 3)], {})
  t.is(head.message, 'unprefix: stream ended in the middle of a u32be header: 1 byte missing')
  const h = nativeHeader(frame('ab'))
  h.writeUInt16BE(48, 6)
  const ext = await decodeError([h, Buffer.alloc(3)], { header: 'native' })
  t.is(ext.message, 'unprefix: stream ended in the middle of a native header: 5 bytes missing')
  t.deepEqual(await decode([], {}), [], 'an empty stream is no frames and no error')
})

// ---------------------------------------------------------------- bad headers

test('ii with unequal or negative lengths is rejected', async (t) => {
  const h = Buffer.alloc(8)
  h.writeInt32LE(5, 0)
  h.writeInt32LE(7, 4)
  const unequal = await decodeError([h, Buffer.alloc(7)], { header: 'ii' })
  t.is(unequal.code, 'ERR_BAD_HEADER')
  t.is(unequal.message, 'unprefix: ii header holds two different lengths (5 and 7); they must be equal')
  const negative = await decodeError([Buffer.alloc(8, 0xff)], { header: 'ii' })
  t.is(negative.message, 'unprefix: ii header announces a negative length (-1)')
})

test('i64le with a negative length is rejected', async (t) => {
  const err = await decodeError([oversize.i64le(-2)], { header: 'i64le' })
  t.is(err.code, 'ERR_BAD_HEADER')
  t.is(err.message, 'unprefix: i64le header announces a negative length (-2)')
})

test('native: wrong magic, version 2 and H < 40 are rejected', async (t) => {
  const good = nativeHeader(frame('ab'))
  const magic = Buffer.from(good)
  magic.write('\x00\x11\x22\x33', 0, 'latin1')
  const e1 = await decodeError([magic, Buffer.from('ab')], { header: 'native' })
  t.is(e1.code, 'ERR_BAD_HEADER')
  t.is(e1.message, 'unprefix: native header starts with 00 11 22 33, not the magic 46 52 4d 50 ("FRMP")')
  const v2 = Buffer.from(good)
  v2[4] = 2
  const e2 = await decodeError([v2, Buffer.from('ab')], { header: 'native' })
  t.is(e2.code, 'ERR_BAD_HEADER')
  t.is(e2.message, 'unprefix: native header version 2 is not supported (this reader reads version 1)')
  const short = Buffer.from(good)
  short.writeUInt16BE(39, 6)
  const e3 = await decodeError([short, Buffer.from('ab')], { header: 'native' })
  t.is(e3.message, 'unprefix: native header length 39 is less than the 40 bytes of version 1')
})

testProp(
  'native: bytes after the 40 of v1 (H > 40) are skipped, reserved flag bits ignored',
  [
    fc.array(fc.tuple(frameArb, fc.uint8Array({ maxLength: 100 }), fc.integer({ min: 0, max: 127 })), { maxLength: 5 }),
    fc.boolean(),
    fc.nat(),
  ],
  async (t, items, checksum, seed) => {
    const parts: Buffer[] = []
    for (const [f, extra, reservedFlags] of items) {
      const h = nativeHeader(f, checksum)
      h.writeUInt16BE(40 + extra.length, 6)
      h[5] = h[5]! | (reservedFlags << 1)
      parts.push(h, Buffer.from(extra), f.data)
    }
    const got = await decode(rechunk(Buffer.concat(parts), seed, 30), { header: 'native' })
    t.deepEqual(
      comparable(got, 'native'),
      expected(
        items.map(([f]) => f),
        'native',
      ),
    )
  },
)

test('native: an unknown format code decodes as unknown', async (t) => {
  const h = nativeHeader(frame('ab'))
  h[32] = 99
  t.is((await decode([h, Buffer.from('ab')], { header: 'native' }))[0]!.format, 'unknown')
})

// ---------------------------------------------------------------- boundaries

function boundary(peer: string): Boundary {
  return { boundary: true, peer, reason: 'end' }
}

test('a Boundary mid-frame drops that frame, counts it, warns, and the next frame parses', async (t) => {
  const one = Buffer.concat([u32be(16), Buffer.from('hello frame-pipe')])
  const two = Buffer.concat([u32be(3), Buffer.from('two')])
  const u = unprefix()
  const warnings: FramePipeError[] = []
  u.on('warning', (w: FramePipeError) => warnings.push(w))
  const got = await withTimeout(run<Frame>(fromItems([one.subarray(0, 10), boundary('127.0.0.1:5000'), two]), u), TIMEOUT)
  t.deepEqual(
    got.map((f) => f.data.toString()),
    ['two'],
  )
  t.is(counters(u).drops, 1)
  t.is(warnings.length, 1)
  t.true(warnings[0] instanceof FramePipeError)
  t.is(warnings[0]!.message, 'unprefix: peer 127.0.0.1:5000 left mid-frame, 10 of 20 bytes dropped')
})

test('a Boundary mid-header drops the partial header', async (t) => {
  const u = unprefix({ header: 'ii' })
  const warnings: Error[] = []
  u.on('warning', (w: Error) => warnings.push(w))
  const two = Buffer.alloc(11)
  two.writeInt32LE(3, 0)
  two.writeInt32LE(3, 4)
  two.write('two', 8)
  const got = await withTimeout(run<Frame>(fromItems([Buffer.from([9, 9, 9]), boundary('a'), two]), u), TIMEOUT)
  t.deepEqual(
    got.map((f) => f.data.toString()),
    ['two'],
  )
  t.is(counters(u).drops, 1)
  t.deepEqual(
    warnings.map((w) => w.message),
    ['unprefix: peer a left mid-frame, 3 of 8 header bytes dropped'],
  )
})

test('a Boundary between frames is only a reset', async (t) => {
  const one = Buffer.concat([u32be(1), Buffer.from('1')])
  const u = unprefix()
  const warnings: Error[] = []
  u.on('warning', (w: Error) => warnings.push(w))
  const got = await withTimeout(run<Frame>(fromItems([one, boundary('a'), boundary('b'), one]), u), TIMEOUT)
  t.is(got.length, 2)
  t.is(counters(u).drops, 0)
  t.deepEqual(warnings, [])
})

// ---------------------------------------------------------------- wrong input

test('a Buffer into prefix is ERR_BAD_FRAME', async (t) => {
  const err = await withTimeout(run(fromItems([Buffer.from('bytes')]), prefix()), TIMEOUT).then(
    () => undefined,
    (e: unknown) => e,
  )
  t.true(err instanceof FramePipeError)
  t.is((err as FramePipeError).code, 'ERR_BAD_FRAME')
  t.is((err as Error).message, 'prefix: expected a Frame but received a Buffer of 5 bytes; a byte stream needs no prefix')
})

test('a Frame into unprefix is ERR_BAD_FRAME', async (t) => {
  const err = await decodeError([frame('x', { seq: 3 })], {})
  t.is(err.code, 'ERR_BAD_FRAME')
  t.is(
    err.message,
    'unprefix: expected bytes (Buffer, Buffer[] or Boundary) but received a Frame (seq 3, 1 bytes); frames need no unprefix',
  )
  const inPacket = await decodeError([[Buffer.from('ab'), 'text']], {})
  t.is(inPacket.message, "unprefix: expected bytes (Buffer, Buffer[] or Boundary) but received 'text' of type string inside a packet")
})

test('prefix refuses frames the native header cannot describe', async (t) => {
  const err = await withTimeout(run(fromItems([frame('x', { seq: 3, width: -1 })]), prefix({ header: 'native' })), TIMEOUT).then(
    () => undefined,
    (e: unknown) => e,
  )
  t.is((err as FramePipeError).code, 'ERR_BAD_FRAME')
  t.is((err as Error).message, 'prefix: frame seq 3 has width -1; the native header holds an integer 0..4294967295')
})

test('options are validated', (t) => {
  t.throws(() => unprefix({ maxFrameBytes: 0 }), {
    code: 'ERR_INVALID_OPTION',
    message: 'unprefix: expected integer >= 1 bytes for maxFrameBytes but received 0 of type number',
  })
  t.throws(() => prefix({ header: 'u32' as HeaderFormat }), {
    code: 'ERR_INVALID_OPTION',
    message:
      "prefix: expected one of u32be, u32le, ii, i64le, native, ascii (did you mean 'u32be'?) for header but received 'u32' of type string",
  })
})

// ---------------------------------------------------------------- through2 inside Node's pipeline
// prefix and null are through2 (readable-stream 4) transforms: check they
// behave as Node streams do inside stream/promises' pipeline.

/** Frames seq 0.. pulled one at a time, endless unless `count`; `bad(seq)` puts a Buffer in that place. */
function frameSource(opts: { count?: number; bad?: (seq: number) => boolean } = {}): Readable & { produced: number } {
  const source = new Readable({
    objectMode: true,
    highWaterMark: 1,
    read() {
      const seq = source.produced
      if (opts.count !== undefined && seq >= opts.count) return void this.push(null)
      source.produced++
      this.push(opts.bad?.(seq) ? Buffer.from('not a frame') : frame(Buffer.alloc(100), { seq }))
    },
  }) as Readable & { produced: number }
  source.produced = 0
  return source
}

test('prefix and null keep their small highWaterMarks on both sides', (t) => {
  const p = prefix()
  const n = nullSink()
  t.deepEqual([p.writableHighWaterMark, p.readableHighWaterMark, p.writableObjectMode, p.readableObjectMode], [4, 4, true, true])
  t.deepEqual([n.writableHighWaterMark, n.readableHighWaterMark, n.writableObjectMode, n.readableObjectMode], [2, 2, true, true])
})

test('a bad record mid-stream rejects the pipeline and destroys source, prefix and null (no hang)', async (t) => {
  const source = frameSource({ bad: (seq) => seq === 10 })
  const p = prefix()
  const n = nullSink()
  const err = await t.throwsAsync(withTimeout(pipeline(source, p, n), TIMEOUT, 'failing pipeline'))
  t.like(err, {
    code: 'ERR_BAD_FRAME',
    message: 'prefix: expected a Frame but received a Buffer of 11 bytes; a byte stream needs no prefix',
  })
  t.true(source.destroyed)
  t.true(p.destroyed)
  t.true(n.destroyed)
  t.like(counters(n), { frames: 10, bytes: 10 * (4 + 100) })
})

test('a failing consumer after null tears prefix, null and the endless source down', async (t) => {
  const source = frameSource()
  const p = prefix()
  const n = nullSink()
  let seen = 0
  const out = new Writable({
    objectMode: true,
    write(_packet, _enc, cb) {
      cb(++seen === 5 ? new Error('consumer refused packet 5') : null)
    },
  })
  const err = await t.throwsAsync(withTimeout(pipeline(source, p, n, out), TIMEOUT, 'failing pipeline'))
  t.is(err!.message, 'consumer refused packet 5')
  t.true(source.destroyed)
  t.true(p.destroyed)
  t.true(n.destroyed)
})

test('backpressure: a slow reader after null holds the source back through prefix and null', async (t) => {
  const source = frameSource({ count: 60 })
  let consumed = 0
  let maxAhead = 0
  const out = new Writable({
    objectMode: true,
    highWaterMark: 1,
    write(_packet, _enc, cb) {
      consumed++
      maxAhead = Math.max(maxAhead, source.produced - consumed)
      setTimeout(cb, 2)
    },
  })
  await withTimeout(pipeline(source, prefix(), nullSink(), out), 20_000, 'slow consumer pipeline')
  t.is(consumed, 60)
  // prefix holds up to 4 + 4 records, null 2 + 2, the source and the reader one each.
  t.true(maxAhead <= 14, `the source ran ${maxAhead} frames ahead`)
})

// ---------------------------------------------------------------- ascii (seed 002)

/** Payloads ascii can carry: not empty, not starting with a digit. */
const asciiPayloadArb = fc.uint8Array({ minLength: 1, maxLength: 300 }).map((u) => {
  const b = Buffer.from(u)
  if (b[0]! >= 0x30 && b[0]! <= 0x39) b[0] = 0xff
  return b
})

testProp(
  'round trip (ascii): unprefix(prefix(x)) = x under any chunking, digits and payload in any piece',
  [fc.array(asciiPayloadArb, { maxLength: 8 }), fc.nat(), fc.integer({ min: 1, max: 100 })],
  async (t, payloads, seed, maxPiece) => {
    const frames = payloads.map((p, seq) => frame(p, { seq }))
    const packets = await prefixPackets(frames, { header: 'ascii', checksum: false })
    const bytes = Buffer.concat(packets.flat())
    for (const chunks of [rechunk(bytes, seed, maxPiece), rechunk(bytes, seed, 1), bytes.length ? [bytes] : [], packets]) {
      const got = await decode(chunks, { header: 'ascii' })
      t.deepEqual(
        got.map((f) => f.data.toString('hex')),
        payloads.map((p) => p.toString('hex')),
      )
      t.deepEqual(
        got.map((f) => f.seq),
        payloads.map((_, i) => i),
      )
    }
  },
)

test('ascii: the header is the length in decimal digits, nothing else', async (t) => {
  const packets = await prefixPackets([frame('hello frame-pipe'), frame(Buffer.alloc(41235, 0xff))], { header: 'ascii', checksum: false })
  t.is(packets[0]![0]!.toString('latin1'), '16')
  t.is(packets[1]![0]!.toString('hex'), '3431323335', '"41235" as on the seed 002 wire')
  t.is(packets[1]![1]!.length, 41235)
})

test('ascii: prefix refuses an empty payload and one that starts with a digit', async (t) => {
  const empty = await t.throwsAsync(prefixPackets([frame(Buffer.alloc(0), { seq: 4 })], { header: 'ascii', checksum: false }))
  t.like(empty, {
    code: 'ERR_BAD_FRAME',
    message: "prefix: frame seq 4 is empty; the ascii header cannot carry an empty frame (the next frame's digits would join its length)",
  })
  const digit = await t.throwsAsync(prefixPackets([frame('7 dwarfs', { seq: 5 })], { header: 'ascii', checksum: false }))
  t.like(digit, {
    code: 'ERR_BAD_FRAME',
    message:
      "prefix: frame seq 5 starts with the digit '7'; the ascii header needs payloads that do not start with a digit (JPEG, PNG and WebP never do)",
  })
})

test('ascii: digits and image in the same read are split at the first non-digit byte', async (t) => {
  const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9])
  const got = await decode([Buffer.concat([Buffer.from('9'), jpeg, Buffer.from('009'), jpeg])], { header: 'ascii' })
  t.deepEqual(
    got.map((f) => [f.format, f.data.toString('hex')]),
    [
      ['jpeg', jpeg.toString('hex')],
      ['jpeg', jpeg.toString('hex')],
    ],
  )
})

test('ascii: garbage, too many digits, oversize and EOF are clear errors', async (t) => {
  const noDigit = await decodeError([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0])], { header: 'ascii' })
  t.is(noDigit.code, 'ERR_BAD_HEADER')
  t.is(noDigit.message, 'unprefix: ascii header must start with a decimal digit, found ff d8 ff e0')
  const long = await decodeError(rechunk(Buffer.from('12345678901x'), 3, 1), { header: 'ascii' })
  t.is(long.code, 'ERR_BAD_HEADER')
  t.is(long.message, 'unprefix: ascii header has more than 10 digits (12345678901…)')
  const big = await decodeError([Buffer.from('1001'), Buffer.from([0xff])], { header: 'ascii', maxFrameBytes: 1000 })
  t.true(big instanceof FrameTooLargeError)
  t.is(big.message, 'unprefix: header announces a frame of 1001 bytes, more than maxFrameBytes (1000)')
  const afterDigits = await decodeError([Buffer.from('41235')], { header: 'ascii' })
  t.is(afterDigits.message, 'unprefix: stream ended in the middle of a frame body: 41235 bytes missing')
  const midBody = await decodeError([Buffer.from('10'), Buffer.from([0xff, 0xd8, 0xff])], { header: 'ascii' })
  t.is((midBody as UnexpectedEofError).missing, 7)
  t.deepEqual(await decode([], { header: 'ascii' }), [])
})

test('ascii: a Boundary mid-digits drops them and the next peer parses', async (t) => {
  const u = unprefix({ header: 'ascii' })
  const warnings: Error[] = []
  u.on('warning', (w: Error) => warnings.push(w))
  const got = await withTimeout(run<Frame>(fromItems([Buffer.from('41'), boundary('a'), Buffer.from('3xyz')]), u), TIMEOUT)
  t.deepEqual(
    got.map((f) => f.data.toString()),
    ['xyz'],
  )
  t.is(counters(u).drops, 1)
  t.deepEqual(
    warnings.map((w) => w.message),
    ['unprefix: peer a left mid-frame, 2 header digits dropped'],
  )
})

// ---------------------------------------------------------------- header=auto

const JPEG_START = Buffer.from([0xff, 0xd8, 0xff])
const PNG_START = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
/** A payload that starts like a JPEG, PNG or WebP file and goes on with random bytes. */
const imageLikeArb = fc
  .tuple(fc.constantFrom('jpeg', 'jpeg', 'png', 'webp'), fc.uint8Array({ maxLength: 300 }), fc.nat())
  .map(([kind, rest, size]) => {
    if (kind === 'png') return Buffer.concat([PNG_START, rest])
    if (kind === 'webp') {
      const riff = Buffer.from('RIFF\0\0\0\0WEBP', 'latin1')
      riff.writeUInt32LE(size, 4)
      return Buffer.concat([riff, rest])
    }
    return Buffer.concat([JPEG_START, rest])
  })

async function decodeAuto(chunks: readonly unknown[], options: UnprefixOptions = {}): Promise<{ frames: Frame[]; infos: string[] }> {
  const u = unprefix({ maxClockSkew: 0, ...options, header: 'auto' })
  const infos: string[] = []
  u.on('info', (e: { message: string }) => infos.push(e.message))
  const frames = await withTimeout(run<Frame>(fromItems(chunks), u), TIMEOUT, 'unprefix auto')
  return { frames, infos }
}

const withoutTimestamp = (frames: readonly Frame[], header: HeaderFormat) =>
  frames.map(({ timestamp, data, ...rest }) => ({ ...rest, data: data.toString('hex'), ...(header === 'native' ? { timestamp } : {}) }))

testProp(
  'auto finds the same frames as the explicit header, for every format, under any chunking',
  [
    fc.constantFrom<HeaderFormat>('u32be', 'u32le', 'ii', 'i64le', 'native', 'ascii'),
    fc.array(imageLikeArb, { minLength: 1, maxLength: 6 }),
    fc.nat(),
    fc.integer({ min: 1, max: 64 }),
  ],
  async (t, header, payloads, seed, maxPiece) => {
    const frames = payloads.map((p, seq) => frame(p, { seq, format: sniffFormat(p) }))
    const bytes = Buffer.concat((await prefixPackets(frames, { header, checksum: false })).flat())
    const want = withoutTimestamp(await decode([bytes], { header }), header)
    for (const chunks of [rechunk(bytes, seed, maxPiece), rechunk(bytes, seed, 1), [bytes]]) {
      const { frames: got, infos } = await decodeAuto(chunks)
      t.deepEqual(withoutTimestamp(got, header), want)
      t.deepEqual(infos, [`header=auto detected header=${header}`])
    }
  },
)

testProp(
  'auto refuses streams whose payloads are not images (except native), listing what fits',
  // At least 8 payload bytes: fewer can end the stream before every reading has been tested (then it is ERR_UNEXPECTED_EOF).
  [
    fc.constantFrom<FixedHeaderFormat>('u32be', 'u32le', 'ii', 'i64le'),
    fc.array(fc.uint8Array({ minLength: 8, maxLength: 200 }), { minLength: 1, maxLength: 4 }),
    fc.nat(),
  ],
  async (t, header, raw, seed) => {
    // First bytes that no image signature starts with.
    const payloads = raw.map((u) => {
      const b = Buffer.from(u)
      if ([0xff, 0x89, 0x52].includes(b[0]!)) b[0] = 0x00
      return b
    })
    const bytes = await encode(
      payloads.map((p) => frame(p)),
      { header, checksum: false },
    )
    const err = await t.throwsAsync(decodeAuto(rechunk(bytes, seed, 20)))
    t.true(err instanceof FramePipeError)
    t.is((err as FramePipeError).code, 'ERR_BAD_HEADER')
    t.regex(err!.message, /^unprefix: header=auto cannot (recognise|choose) .*; give header= explicitly$/)
  },
)

test('auto: the error lists the formats whose length fits', async (t) => {
  const ii = Buffer.alloc(8)
  ii.writeInt32LE(5, 0)
  ii.writeInt32LE(5, 4)
  const err = await t.throwsAsync(decodeAuto([Buffer.concat([ii, Buffer.from('abcde')])]))
  t.is(
    err!.message,
    'unprefix: header=auto cannot recognise the first 9 bytes (05 00 00 00 05 00 00 00 61): they fit the length header of u32le, ii, but no JPEG, PNG or WebP signature starts the payload, so auto cannot choose; give header= explicitly',
  )
  const http = await t.throwsAsync(decodeAuto([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]))
  t.is(
    http!.message,
    'unprefix: header=auto cannot recognise the first 8 bytes (47 45 54 20 2f 20 48 54): they fit none of native, u32be, u32le, ii, i64le, ascii; give header= explicitly',
  )
})

test('auto: u32be and u32le both fit a length of 256 until the next frame (or the end) tells them apart', async (t) => {
  const payload = Buffer.concat([JPEG_START, Buffer.alloc(253, 7)])
  for (const header of ['u32be', 'u32le'] as const) {
    const two = await encode([frame(payload), frame(payload)], { header, checksum: false })
    const a = await decodeAuto(rechunk(two, 1, 7))
    t.deepEqual(a.infos, [`header=auto detected header=${header}`])
    t.is(a.frames.length, 2)
    const one = await encode([frame(payload)], { header, checksum: false })
    const b = await decodeAuto([one])
    t.deepEqual(b.infos, [`header=auto detected header=${header}`], 'a single frame: the one reading that ends exactly at the end')
    t.true(b.frames[0]!.data.equals(payload))
  }
})

test('auto looks again after each Boundary: one peer speaks ii, the next ascii', async (t) => {
  const jpeg = Buffer.concat([JPEG_START, Buffer.from('one jpeg')])
  const ii = await encode([frame(jpeg)], { header: 'ii', checksum: false })
  const ascii = await encode([frame(jpeg), frame(jpeg)], { header: 'ascii', checksum: false })
  const { frames, infos } = await decodeAuto([...rechunk(ii, 2, 3), boundary('a'), ...rechunk(ascii, 3, 2)])
  t.is(frames.length, 3)
  t.true(frames.every((f) => f.data.equals(jpeg)))
  t.deepEqual(infos, ['header=auto detected header=ii', 'header=auto detected header=ascii'])
})

test('auto: a peer that leaves before its format is known costs a drop and a warning; too few bytes at the end is an error', async (t) => {
  const u = unprefix({ header: 'auto' })
  const warnings: Error[] = []
  u.on('warning', (w: Error) => warnings.push(w))
  const jpeg = Buffer.concat([JPEG_START, Buffer.from('x')])
  const good = await encode([frame(jpeg)], { header: 'u32be', checksum: false })
  const got = await withTimeout(run<Frame>(fromItems([Buffer.from([0, 0]), boundary('a'), good]), u), TIMEOUT)
  t.is(got.length, 1)
  t.is(counters(u).drops, 1)
  t.deepEqual(
    warnings.map((w) => w.message),
    ['unprefix: peer a left mid-frame, 2 bytes dropped before header=auto could recognise their format'],
  )
  const short = await t.throwsAsync(decodeAuto([Buffer.from([0, 0, 0])]))
  t.like(short, {
    code: 'ERR_UNEXPECTED_EOF',
    message: 'unprefix: stream ended after 3 bytes, too few for header=auto to recognise the header format',
  })
})

test('auto: a detected stream then fails like the explicit header (oversize, EOF)', async (t) => {
  const jpeg = Buffer.concat([JPEG_START, Buffer.alloc(50)])
  const bytes = await encode([frame(jpeg), frame(Buffer.concat([JPEG_START, Buffer.alloc(2000)]))], { header: 'u32be', checksum: false })
  const big = await t.throwsAsync(decodeAuto([bytes], { maxFrameBytes: 100 }))
  t.like(big, { code: 'ERR_FRAME_TOO_LARGE', message: 'unprefix: header announces a frame of 2003 bytes, more than maxFrameBytes (100)' })
  const cut = await t.throwsAsync(decodeAuto([bytes.subarray(0, bytes.length - 10)]))
  t.like(cut, { code: 'ERR_UNEXPECTED_EOF', message: 'unprefix: stream ended in the middle of a frame body: 10 bytes missing' })
})

test('a header of printable text says so (seed 003 writes "Unknown command" into its image stream)', async (t) => {
  const err = await decodeError([Buffer.from('Unknown command')], {})
  t.is(err.code, 'ERR_FRAME_TOO_LARGE')
  t.is(
    err.message,
    'unprefix: header announces a frame of 1433299822 bytes, more than maxFrameBytes (67108864); the header bytes are the text "Unkn": the peer wrote text into the byte stream',
  )
})
