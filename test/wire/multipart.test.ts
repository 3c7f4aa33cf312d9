// The multipart/x-mixed-replace parser behind the `http` source: exact parts
// under any chunking and the framing quirks of real cameras, resync after
// corruption, and limits enforced before memory is set aside.

import test from 'ava'
import { testProp, fc } from '@fast-check/ava'
import { boundaryFromContentType, MultipartParser, type PartHeaders } from '../../src/wire/multipart-parser.js'
import { rechunk } from '../helpers/index.js'

// ---------------------------------------------------------------- encoder

interface PartSpec {
  body: Buffer
  /** Send Content-Length. */
  length: boolean
  /** No header block at all: the JPEG follows the boundary line (only for JPEG-like bodies without length). */
  bare: boolean
  /** Line ends of this part's boundary line and headers: LF alone instead of CRLF. */
  lf: boolean
  /** Line end between this body and the next boundary; false: the boundary follows the body directly. */
  eolAfter: boolean
  /** Extra blank lines before the next boundary (only after a part with length). */
  blankAfter: number
}

interface StreamSpec {
  name: string
  /** The Content-Type's boundary parameter starts with `--` too. */
  paramDashes: boolean
  /** With paramDashes: boundary lines are `--` + parameter (RFC) rather than the parameter itself (camera quirk). */
  rfcLines: boolean
  /** The parser gets no boundary and must find it. */
  sniff: boolean
  preamble: string
  parts: PartSpec[]
}

function param(s: StreamSpec): string | null {
  if (s.sniff) return null
  return s.paramDashes ? '--' + s.name : s.name
}

function delimiterLine(s: StreamSpec): string {
  return s.paramDashes && s.rfcLines ? '----' + s.name : '--' + s.name
}

function encode(s: StreamSpec): Buffer {
  const out: Buffer[] = [Buffer.from(s.preamble, 'latin1')]
  const delim = delimiterLine(s)
  s.parts.forEach((p, i) => {
    const eol = p.lf ? '\n' : '\r\n'
    let head = delim + eol
    if (!p.bare) {
      head += `Content-Type: image/jpeg${eol}`
      if (p.length) head += `Content-Length: ${p.body.length}${eol}`
      head += `X-Timestamp: ${i}.5${eol}${eol}`
    }
    out.push(Buffer.from(head, 'latin1'), p.body)
    if (p.eolAfter) out.push(Buffer.from(eol, 'latin1'))
    out.push(Buffer.from('\r\n'.repeat(p.blankAfter), 'latin1'))
  })
  out.push(Buffer.from(`${delim}--\r\n`, 'latin1'))
  return Buffer.concat(out)
}

interface Parsed {
  bodies: Buffer[]
  headers: PartHeaders[]
  error: Error | undefined
  parser: MultipartParser
  maxBuffered: number
}

function parse(chunks: readonly Buffer[], boundary: string | null, maxFrameBytes = 1 << 20, maxHeaderBytes?: number): Parsed {
  const bodies: Buffer[] = []
  const headers: PartHeaders[] = []
  const parser = new MultipartParser({
    boundary,
    maxFrameBytes,
    maxHeaderBytes,
    stage: 'test',
    onPart(body, h) {
      // Views must stay valid: copy to catch any later reuse of the memory.
      bodies.push(Buffer.from(body))
      headers.push(h)
    },
  })
  let error: Error | undefined
  let maxBuffered = 0
  for (const chunk of chunks) {
    error = parser.feed(chunk)
    maxBuffered = Math.max(maxBuffered, parser.buffered)
    if (error) break
  }
  return { bodies, headers, error, parser, maxBuffered }
}

const hex = (bufs: readonly Buffer[]): string[] => bufs.map((b) => b.toString('hex'))

// ---------------------------------------------------------------- generators

const jpegLike = fc
  .uint8Array({ maxLength: 600 })
  .map((a) => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.from(a), Buffer.from([0xff, 0xd9])]))
const binary = fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a))
const big = fc.integer({ min: 1000, max: 40_000 }).map((n) => Buffer.alloc(n, n & 0xff))

const partArb = fc.record({
  body: fc.oneof({ weight: 3, arbitrary: jpegLike }, { weight: 2, arbitrary: binary }, { weight: 1, arbitrary: big }),
  length: fc.boolean(),
  bare: fc.boolean(),
  lf: fc.boolean(),
  eolAfter: fc.boolean(),
  blankAfter: fc.integer({ min: 0, max: 2 }),
})

const nameArb = fc.oneof(
  fc.constantFrom('boundarydonotcross', 'myboundary', 'ipcamera', 'frame-pipe-boundary', 'BoundaryString'),
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9'()+_,.:=?-]{5,40}$/),
)

/** Make a part unambiguous for the framing it gets: the quirks that are ambiguous by nature are only used where a reader can tell. */
function normalise(p: PartSpec, rfcDashes: boolean): PartSpec {
  const isJpeg = p.body.length >= 2 && p.body[0] === 0xff && p.body[p.body.length - 1] === 0xd9
  const q = { ...p }
  if (q.length) {
    q.bare = false
    return q
  }
  if (!isJpeg) {
    q.bare = false
    q.eolAfter = true
    // LF alone after a body that ends in CR reads as CRLF.
    if (q.lf && q.body[q.body.length - 1] === 0x0d) q.lf = false
  }
  // Without a length, blank lines before the next boundary are part of the body.
  q.blankAfter = 0
  // `----name` straight after a body: were two of those dashes the body's? Only a line end tells.
  if (rfcDashes) q.eolAfter = true
  return q
}

const streamArb = fc
  .record({
    name: nameArb,
    paramDashes: fc.boolean(),
    rfcLines: fc.boolean(),
    sniff: fc.boolean(),
    preamble: fc.constantFrom('', '\r\n', '\n\r\n', 'This is a preamble.\r\n'),
    parts: fc.array(partArb, { minLength: 1, maxLength: 8 }),
  })
  .map((s): StreamSpec => ({ ...s, parts: s.parts.map((p) => normalise(p, s.paramDashes && s.rfcLines)) }))

/** No body may contain the delimiter (a real camera's boundary never occurs in its JPEGs). */
function clean(s: StreamSpec): boolean {
  const d = Buffer.from('--' + s.name, 'latin1')
  return s.parts.every((p) => p.length || !p.body.includes(d))
}

const pieceArb = fc.constantFrom(1, 2, 7, 64, 1460, 65536, 1 << 30)

// ---------------------------------------------------------------- properties

testProp(
  'parts come out byte for byte under any chunking and framing quirk',
  [streamArb, fc.nat(), pieceArb],
  (t, s, seed, piece) => {
    fc.pre(clean(s))
    const r = parse(rechunk(encode(s), seed, piece), param(s))
    t.is(r.error, undefined)
    t.deepEqual(hex(r.bodies), hex(s.parts.map((p) => p.body)))
    t.is(r.parser.corrupt, 0)
    s.parts.forEach((p, i) => {
      if (!p.bare) t.is(r.headers[i]!.get('x-timestamp'), `${i}.5`)
    })
    t.is(r.parser.end(), undefined)
    t.is(r.parser.truncated, 0)
  },
  { numRuns: 300 },
)

const garbageArb = fc.uint8Array({ minLength: 1, maxLength: 300 }).map((a) => Buffer.from(a))

testProp(
  'garbage between parts is skipped and counted; every part survives',
  [fc.array(fc.tuple(binary, fc.option(garbageArb, { nil: undefined })), { minLength: 1, maxLength: 8 }), nameArb, fc.nat(), pieceArb],
  (t, items, name, seed, piece) => {
    const delim = Buffer.from('--' + name, 'latin1')
    fc.pre(items.every(([, g]) => !g || !g.includes(delim)))
    const out: Buffer[] = []
    let expectedCorrupt = 0
    for (const [body, garbage] of items) {
      out.push(
        Buffer.from(`--${name}\r\nContent-Type: image/jpeg\r\nContent-Length: ${body.length}\r\n\r\n`, 'latin1'),
        body,
        Buffer.from('\r\n'),
      )
      if (garbage) {
        out.push(garbage, Buffer.from('\r\n'))
        if (garbage.some((c) => c !== 0x0d && c !== 0x0a && c !== 0x20 && c !== 0x09 && c !== 0x2d)) expectedCorrupt++
      }
    }
    out.push(Buffer.from(`--${name}--\r\n`, 'latin1'))
    const r = parse(rechunk(Buffer.concat(out), seed, piece), name)
    t.is(r.error, undefined)
    t.deepEqual(hex(r.bodies), hex(items.map(([b]) => b)))
    t.is(r.parser.corrupt, expectedCorrupt)
  },
  { numRuns: 200 },
)

const LIMIT = 4096
const tailBody = (i: number): Buffer => Buffer.alloc(2100, 0x41 + i)

testProp(
  'random corruption: no throw, memory bounded, and the parser is back in step for the parts that follow',
  [
    streamArb,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 12 }),
    fc.option(fc.tuple(fc.nat(), fc.uint8Array({ maxLength: 64 })), { nil: undefined }),
    fc.nat(),
    pieceArb,
  ],
  (t, s, flips, splice, seed, piece) => {
    const spec = { ...s, sniff: false, parts: s.parts.map((p) => ({ ...p, body: p.body.subarray(0, 1500) })) }
    const stream = encode(spec)
    const corrupted = Buffer.from(stream.subarray(0, stream.length - 4 - delimiterLine(spec).length))
    for (const [at, value] of flips) corrupted[at % corrupted.length] = value
    let bytes = corrupted
    if (splice) {
      const at = splice[0] % bytes.length
      bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(splice[1]), bytes.subarray(at)])
    }
    const delim = delimiterLine(spec)
    const tail = [0, 1, 2].map((i) =>
      Buffer.concat([Buffer.from(`\r\n${delim}\r\nContent-Type: image/jpeg\r\nContent-Length: 2100\r\n\r\n`, 'latin1'), tailBody(i)]),
    )
    const all = Buffer.concat([bytes, ...tail, Buffer.from(`\r\n${delim}--\r\n`, 'latin1')])
    const chunks = rechunk(all, seed, piece)
    const r = parse(chunks, param(spec), LIMIT, 1024)
    const biggestChunk = Math.max(...chunks.map((c) => c.length))
    t.true(r.maxBuffered <= LIMIT + 2 * delim.length + 16 + Math.min(biggestChunk, 16 * 1024), `buffered ${r.maxBuffered}`)
    t.true(r.bodies.every((b) => b.length <= LIMIT))
    if (r.error) {
      t.is((r.error as { code?: string }).code, 'ERR_FRAME_TOO_LARGE')
      return
    }
    t.true(r.bodies.length > 0)
    t.is(r.bodies[r.bodies.length - 1]!.toString('hex'), tailBody(2).toString('hex'))
  },
  { numRuns: 400 },
)

testProp(
  'a Content-Length over the limit is an error as soon as the headers end, before any body byte',
  [fc.integer({ min: 101, max: 2 ** 40 }), fc.nat(), pieceArb],
  (t, length, seed, piece) => {
    const head = Buffer.from(`--b0undary\r\nContent-Type: image/jpeg\r\nContent-Length: ${length}\r\n\r\n`, 'latin1')
    const r = parse(rechunk(head, seed, piece), 'b0undary', 100)
    t.is((r.error as { code?: string } | undefined)?.code, 'ERR_FRAME_TOO_LARGE')
    t.regex(r.error!.message, new RegExp(`${length} bytes, more than maxFrameBytes \\(100\\)`))
    // Only the header bytes were ever held.
    t.true(r.maxBuffered <= head.length)
    t.is(r.bodies.length, 0)
  },
)

testProp(
  'a part without Content-Length that outgrows the limit is an error; what is held stays bounded',
  [fc.integer({ min: 1, max: 5000 }), fc.nat(), pieceArb],
  (t, limit, seed, piece) => {
    const bytes = Buffer.concat([Buffer.from('--b0undary\r\nContent-Type: image/jpeg\r\n\r\n'), Buffer.alloc(limit * 3 + 100, 0x55)])
    const chunks = rechunk(bytes, seed, piece)
    const r = parse(chunks, 'b0undary', limit)
    t.is((r.error as { code?: string } | undefined)?.code, 'ERR_FRAME_TOO_LARGE')
    t.true(r.maxBuffered <= limit + 64 + Math.min(piece, 16 * 1024), `held ${r.maxBuffered} with limit ${limit}`)
  },
)

// ---------------------------------------------------------------- examples

test('mjpg-streamer layout: boundary in the response head, each frame followed by the next boundary', (t) => {
  const frames = [Buffer.from([0xff, 0xd8, 1, 0xff, 0xd9]), Buffer.from([0xff, 0xd8, 2, 2, 0xff, 0xd9])]
  const wire = Buffer.concat(
    frames.flatMap((f) => [
      Buffer.from(`Content-Type: image/jpeg\r\nContent-Length: ${f.length}\r\nX-Timestamp: 1700000000.123456\r\n\r\n`),
      f,
      Buffer.from('\r\n--boundarydonotcross\r\n'),
    ]),
  )
  const r = parse([Buffer.from('--boundarydonotcross\r\n'), wire], 'boundarydonotcross')
  t.deepEqual(hex(r.bodies), hex(frames))
  t.is(r.headers[0]!.get('x-timestamp'), '1700000000.123456')
  // The stream stopped after a boundary line: nothing is cut short.
  t.is(r.parser.end(), undefined)
})

test('a part with an unreadable Content-Length is read up to the boundary instead', (t) => {
  const wire = Buffer.from('--xyzzy\r\nContent-Length: lots\r\n\r\nhello\r\n--xyzzy\r\nContent-Length: 2\r\n\r\nhi\r\n--xyzzy--\r\n')
  const r = parse([wire], 'xyzzy')
  t.deepEqual(r.bodies.map(String), ['hello', 'hi'])
})

test('a part that lies in one chunk is a view on it; one that spans chunks is one new buffer', (t) => {
  const chunk = Buffer.from('--b\r\nContent-Length: 3\r\n\r\nabc\r\n--b\r\n\r\nxyz\r\n--b--')
  const views: Buffer[] = []
  const p = new MultipartParser({ boundary: 'b', maxFrameBytes: 100, onPart: (b) => views.push(b) })
  t.is(p.feed(chunk), undefined)
  t.deepEqual(views.map(String), ['abc', 'xyz'])
  for (const v of views) t.is(v.buffer, chunk.buffer)
  const spans: Buffer[] = []
  const q = new MultipartParser({ boundary: 'b', maxFrameBytes: 100, onPart: (b) => spans.push(b) })
  for (const c of rechunk(chunk, 1, 2)) t.is(q.feed(c), undefined)
  t.deepEqual(spans.map(String), ['abc', 'xyz'])
})

test('the boundary parameter: quoted, bare, with other parameters, or missing', (t) => {
  t.is(boundaryFromContentType('multipart/x-mixed-replace; boundary=frame'), 'frame')
  t.is(boundaryFromContentType('multipart/x-mixed-replace;boundary=--myboundary'), '--myboundary')
  t.is(boundaryFromContentType('multipart/x-mixed-replace; charset=x; boundary="my boundary"; foo=1'), 'my boundary')
  t.is(boundaryFromContentType('multipart/x-mixed-replace'), null)
  t.is(boundaryFromContentType(undefined), null)
})

test('without a boundary anywhere, the sniffer gives up with a clear error instead of reading forever', (t) => {
  const r = parse(rechunk(Buffer.alloc(200_000, 0x61), 3, 4096), null)
  t.is((r.error as { code?: string } | undefined)?.code, 'ERR_BAD_HEADER')
  t.regex(r.error!.message, /no multipart boundary/)
})

test('end() in the middle of a part drops it and counts it', (t) => {
  const r = parse([Buffer.from('--b\r\nContent-Length: 10\r\n\r\nabc')], 'b')
  t.is(r.bodies.length, 0)
  t.like(r.parser.end(), { code: 'ERR_UNEXPECTED_EOF', dropped: 3, message: 'test: stream ended in the middle of a part: 3 bytes dropped' })
  t.is(r.parser.truncated, 1)
})

test('a trickle of 1-byte chunks into a part without length is packed, not kept as a million views', (t) => {
  const body = Buffer.alloc(200_000, 7)
  const wire = Buffer.concat([Buffer.from('--b0undary\r\n\r\n'), body, Buffer.from('\r\n--b0undary--\r\n')])
  const r = parse(rechunk(wire, 9, 1), 'b0undary')
  t.is(r.error, undefined)
  t.is(r.bodies.length, 1)
  t.true(r.bodies[0]!.equals(body))
})
