// MJPEG parser: real JPEGs (baseline, progressive, grey, restart markers, an
// EXIF thumbnail in APP1) back to back survive any chunking; garbage and
// corruption never hang, throw or hold more than maxFrameBytes, and the
// parser finds the next image; jpegSize reads the right SOF.

import test, { type ExecutionContext } from 'ava'
import { testProp, fc } from '@fast-check/ava'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import sharp from 'sharp'
import { FfmpegProcess, findFfmpeg } from '../../src/media/ffmpeg.js'
import { jpegSize, type JpegInfo } from '../../src/wire/jpeg.js'
import { MjpegParser } from '../../src/wire/mjpeg-parser.js'
import { prng, rechunk, tempDir } from '../helpers/index.js'

interface Parsed {
  frames: Buffer[]
  infos: JpegInfo[]
  drops: number
  skipped: number
  lost: number
  maxHeld: number
}

/** Run `chunks` through a parser; frames are copied out (they may be views on the chunks). */
function parse(chunks: readonly Buffer[], maxFrameBytes = 64 * 2 ** 20): Parsed {
  const frames: Buffer[] = []
  const infos: JpegInfo[] = []
  const parser = new MjpegParser({
    maxFrameBytes,
    onFrame: (data, info) => {
      frames.push(Buffer.from(data))
      infos.push(info)
    },
  })
  let maxHeld = 0
  for (const c of chunks) {
    parser.feed(c)
    maxHeld = Math.max(maxHeld, parser.heldBytes)
  }
  parser.end()
  return { frames, infos, drops: parser.drops, skipped: parser.skippedBytes, lost: parser.lostBytes, maxHeld }
}

/**
 * Frames equal, compared cheaply: a failing deepEqual on hundreds of KB of
 * hex makes ava's diff (run again at every shrinking step) take minutes.
 */
function sameFrames(t: ExecutionContext, actual: readonly Buffer[], expected: readonly Buffer[], what = 'frames'): void {
  const describe = (bufs: readonly Buffer[]) =>
    bufs.map((b) => `${b.length}:${b.subarray(0, 4).toString('hex')}…${b.subarray(-2).toString('hex')}`)
  const same = actual.length === expected.length && actual.every((b, i) => b.equals(expected[i]!))
  t.true(same, `${what} differ: got [${describe(actual).join(', ')}], expected [${describe(expected).join(', ')}]`)
}

async function noise(width: number, height: number, seed: number): Promise<Buffer> {
  const rand = prng(seed)
  const px = Buffer.alloc(width * height * 3)
  for (let i = 0; i < px.length; i++) px[i] = Math.floor(rand() * 256)
  return px
}

/** An EXIF APP1 segment whose IFD1 carries `thumb` as the thumbnail (JPEGInterchangeFormat), as cameras write it. */
function exifApp1(thumb: Buffer): Buffer {
  const entry = (tag: number, type: number, value: number): Buffer => {
    const e = Buffer.alloc(12)
    e.writeUInt16LE(tag, 0)
    e.writeUInt16LE(type, 2)
    e.writeUInt32LE(1, 4)
    if (type === 3) e.writeUInt16LE(value, 8)
    else e.writeUInt32LE(value, 8)
    return e
  }
  const ifd = (entries: Buffer[], next: number): Buffer => {
    const count = Buffer.alloc(2)
    count.writeUInt16LE(entries.length)
    const n = Buffer.alloc(4)
    n.writeUInt32LE(next)
    return Buffer.concat([count, ...entries, n])
  }
  const tiffHeader = Buffer.from([0x49, 0x49, 0x2a, 0x00, 8, 0, 0, 0])
  const ifd0Size = 2 + 12 + 4
  const ifd1At = 8 + ifd0Size
  const ifd1Size = 2 + 3 * 12 + 4
  const thumbAt = ifd1At + ifd1Size
  const ifd0 = ifd([entry(0x0112, 3, 1)], ifd1At) // Orientation = 1
  const ifd1 = ifd([entry(0x0103, 3, 6), entry(0x0201, 4, thumbAt), entry(0x0202, 4, thumb.length)], 0)
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiffHeader, ifd0, ifd1, thumb])
  const head = Buffer.from([0xff, 0xe1, 0, 0])
  head.writeUInt16BE(body.length + 2, 2)
  return Buffer.concat([head, body])
}

/** A segment (COM by default) whose payload holds `payload`. */
function segment(payload: Buffer, marker = 0xfe): Buffer {
  const head = Buffer.from([0xff, marker, 0, 0])
  head.writeUInt16BE(payload.length + 2, 2)
  return Buffer.concat([head, payload])
}

/** Insert segments right after SOI. */
function withSegments(jpeg: Buffer, ...segments: Buffer[]): Buffer {
  return Buffer.concat([jpeg.subarray(0, 2), ...segments, jpeg.subarray(2)])
}

interface Fixtures {
  /** Baseline JPEGs: noise (much FF00 stuffing), a flat picture, grey, tiny. */
  baseline: Buffer[]
  progressive: Buffer
  /** A JPEG whose APP1 holds an EXIF thumbnail (a whole JPEG: FFD8…FFD9) and a COM with a bare FFD9. */
  exif: Buffer
  thumb: Buffer
  /** JPEGs with a DRI segment and RST0-7 markers in the scan (ffmpeg's MJPEG encoder with slices), when ffmpeg is present. */
  restart: Buffer[]
}

let fx: Fixtures

/**
 * Three JPEGs with a DRI segment and RSTn markers, from ffmpeg's MJPEG encoder with slice threading
 * (ffmpeg 4.1 and 5.x). One file per image (image2), so no splitting rule of ours decides where they end.
 */
async function restartJpegs(ffmpeg: string): Promise<Buffer[]> {
  const { dir, cleanup } = await tempDir('frame-pipe-mjpeg-')
  try {
    const proc = new FfmpegProcess({
      path: ffmpeg,
      args: [
        '-hide_banner',
        '-loglevel',
        'error',
        '-f',
        'lavfi',
        '-i',
        'testsrc=size=160x120:rate=10',
        '-frames:v',
        '3',
        '-c:v',
        'mjpeg',
        '-q:v',
        '3',
        '-threads',
        '4',
        '-thread_type',
        'slice',
        '-slices',
        '4',
        '-f',
        'image2',
        join(dir, 'rst-%d.jpg'),
      ],
    })
    const failure = proc.failure(await proc.exited)
    if (failure) throw new Error(failure)
    return await Promise.all([1, 2, 3].map((n) => readFile(join(dir, `rst-${n}.jpg`))))
  } finally {
    await cleanup()
  }
}
const ffmpegTool = await findFfmpeg().catch((err: Error) => {
  console.warn(`mjpeg-parser.test.ts runs without JPEGs with restart markers: ${err.message}`)
  return undefined
})
const ffTest = ffmpegTool ? test : test.skip

test.before(async () => {
  const baseline = [
    await sharp(await noise(96, 64, 1), { raw: { width: 96, height: 64, channels: 3 } })
      .jpeg({ quality: 90 })
      .toBuffer(),
    await sharp({ create: { width: 120, height: 80, channels: 3, background: { r: 200, g: 30, b: 90 } } })
      .jpeg({ quality: 60 })
      .toBuffer(),
    await sharp(await noise(40, 30, 2), { raw: { width: 40, height: 30, channels: 3 } })
      .greyscale()
      .jpeg({ quality: 75 })
      .toBuffer(),
    await sharp({ create: { width: 8, height: 8, channels: 3, background: 'white' } })
      .jpeg()
      .toBuffer(),
  ]
  const progressive = await sharp(await noise(64, 48, 3), { raw: { width: 64, height: 48, channels: 3 } })
    .jpeg({ quality: 80, progressive: true })
    .toBuffer()
  const thumb = await sharp(await noise(16, 12, 4), { raw: { width: 16, height: 12, channels: 3 } })
    .jpeg({ quality: 50 })
    .toBuffer()
  const exif = withSegments(baseline[0]!, exifApp1(thumb), segment(Buffer.from([0x41, 0xff, 0xd9, 0xff, 0xd8, 0x42])))
  const restart = ffmpegTool ? await restartJpegs(ffmpegTool.path) : []
  fx = { baseline, progressive, exif, thumb, restart }
})

const allFixtures = (): Buffer[] => [...fx.baseline, fx.progressive, fx.exif, ...fx.restart]

ffTest('the restart-marker fixtures have a DRI segment and RSTn markers, and decode', async (t) => {
  t.is(fx.restart.length, 3)
  for (const j of fx.restart) {
    t.true(j.includes(Buffer.from([0xff, 0xdd])), 'DRI segment')
    t.true(
      [0, 1, 2].every((n) => j.includes(Buffer.from([0xff, 0xd0 + n]))),
      'RST0, RST1 and RST2 in the scan',
    )
    await t.notThrowsAsync(sharp(j).raw().toBuffer(), 'a real, decodable JPEG')
  }
})

test('the other fixtures are what they claim: an EXIF thumbnail, FFD9 inside APP1 and COM, stuffed FF00', async (t) => {
  // The EXIF JPEG decodes, sharp sees its EXIF, and the thumbnail ends with an FFD9 long before the image does.
  const meta = await sharp(fx.exif).metadata()
  t.true(Buffer.isBuffer(meta.exif) && meta.exif.includes(fx.thumb))
  await t.notThrowsAsync(sharp(fx.exif).raw().toBuffer())
  const firstEoi = fx.exif.indexOf(Buffer.from([0xff, 0xd9]))
  t.true(firstEoi > 0 && firstEoi < fx.exif.length - 2)
  // Stuffed FF00 in the noise image's scan.
  t.true(fx.baseline[0]!.includes(Buffer.from([0xff, 0x00])))
})

test('a naive FFD9 search cuts the EXIF JPEG apart; the parser keeps it whole', (t) => {
  const naive = fx.exif.toString('latin1').split('\xff\xd9').length - 1
  t.true(naive >= 3, `naive split finds ${naive} ends`)
  const out = parse([fx.exif, fx.exif])
  sameFrames(t, out.frames, [fx.exif, fx.exif])
  t.is(out.drops, 0)
})

testProp(
  'back-to-back JPEGs come out identical under any chunking, 1-byte pieces included',
  [fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), fc.nat(), fc.constantFrom(1, 2, 7, 64, 1460, 65536, 1 << 30)],
  (t, picks, seed, maxPiece) => {
    const pool = allFixtures()
    const images = picks.map((i) => pool[i % pool.length]!)
    const out = parse(rechunk(Buffer.concat(images), seed, maxPiece))
    sameFrames(t, out.frames, images)
    t.deepEqual(
      out.infos,
      images.map((j) => jpegSize(j)),
    )
    t.is(out.drops, 0)
    t.is(out.skipped, 0)
  },
  { numRuns: 60 },
)

testProp(
  'bytes between images that hold no SOI are skipped and counted exactly',
  [
    fc.array(fc.tuple(fc.nat(), fc.uint8Array({ maxLength: 40 })), { minLength: 1, maxLength: 5 }),
    fc.uint8Array({ maxLength: 40 }),
    fc.nat(),
    fc.integer({ min: 1, max: 300 }),
  ],
  (t, items, tail, seed, maxPiece) => {
    const pool = allFixtures()
    // Garbage without FF cannot hold an SOI; a lone FF at the very end of a gap is tried with the next byte too.
    const clean = (u: Uint8Array) => Buffer.from(u.map((b) => (b === 0xff ? 0xfe : b)))
    const images = items.map(([i]) => pool[i % pool.length]!)
    const gaps = items.map(([, g]) => clean(g))
    const bytes = Buffer.concat([...items.flatMap((_, k) => [gaps[k]!, images[k]!]), clean(tail)])
    const out = parse(rechunk(bytes, seed, maxPiece))
    sameFrames(t, out.frames, images)
    t.is(out.skipped, gaps.reduce((n, g) => n + g.length, 0) + tail.length)
    t.is(out.drops, 0)
  },
  { numRuns: 80 },
)

interface Mutation {
  kind: 'flip' | 'insert' | 'delete' | 'truncate'
  at: number
  byte: number
  len: number
}
const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('flip', 'insert', 'delete', 'truncate'),
  at: fc.nat(),
  byte: fc.constantFrom(0x00, 0xff, 0xd8, 0xd9, 0xda, 0xe1, 0xc0, 0x12),
  len: fc.integer({ min: 1, max: 300 }),
})

function mutate(bytes: Buffer, mutations: readonly Mutation[]): { bytes: Buffer; first: number } {
  let b = bytes
  let first = b.length
  for (const m of mutations) {
    if (b.length === 0) break
    const at = m.at % b.length
    first = Math.min(first, at)
    if (m.kind === 'flip') {
      b = Buffer.from(b)
      b[at] = m.byte
    } else if (m.kind === 'insert') {
      b = Buffer.concat([b.subarray(0, at), Buffer.alloc((m.len % 8) + 1, m.byte), b.subarray(at)])
    } else if (m.kind === 'delete') {
      b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)])
    } else {
      b = b.subarray(0, at)
    }
  }
  return { bytes: b, first }
}

testProp(
  'corruption: never a throw, a hang or more than maxFrameBytes held; every byte accounted for; the same result under any chunking',
  [
    fc.array(fc.nat(), { minLength: 1, maxLength: 6 }),
    fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
    fc.nat(),
    fc.integer({ min: 1, max: 2000 }),
  ],
  (t, picks, mutations, seed, maxPiece) => {
    const pool = allFixtures()
    const images = picks.map((i) => pool[i % pool.length]!)
    const { bytes, first } = mutate(Buffer.concat(images), mutations)
    const whole = parse([bytes])
    const pieces = parse(rechunk(bytes, seed, maxPiece))
    const ones = parse(rechunk(bytes, seed, 1))
    for (const other of [pieces, ones]) {
      sameFrames(t, other.frames, whole.frames)
      t.deepEqual([other.drops, other.skipped, other.lost], [whole.drops, whole.skipped, whole.lost])
    }
    for (const f of whole.frames) {
      t.true(f[0] === 0xff && f[1] === 0xd8 && f[f.length - 2] === 0xff && f[f.length - 1] === 0xd9, 'SOI … EOI')
    }
    const emitted = whole.frames.reduce((n, f) => n + f.length, 0)
    t.is(emitted + whole.skipped + whole.lost, bytes.length, 'emitted + skipped + dropped = input')
    // Images wholly before the first damaged byte come out intact, in order.
    let end = 0
    const intact: Buffer[] = []
    for (const img of images) {
      end += img.length
      if (end <= first) intact.push(img)
    }
    sameFrames(t, whole.frames.slice(0, intact.length), intact)
  },
  { numRuns: 150 },
)

testProp(
  'a limit on held bytes: with a small maxFrameBytes, nothing over it is held or emitted, whatever the input',
  [
    fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
    fc.array(mutationArb, { maxLength: 3 }),
    fc.nat(),
    fc.integer({ min: 1, max: 3000 }),
    fc.integer({ min: 64, max: 20000 }),
  ],
  (t, picks, mutations, seed, maxPiece, max) => {
    const pool = allFixtures()
    const { bytes } = mutate(Buffer.concat(picks.map((i) => pool[i % pool.length]!)), mutations)
    const out = parse(rechunk(bytes, seed, maxPiece), max)
    t.true(out.maxHeld <= max, `held ${out.maxHeld} > ${max}`)
    for (const f of out.frames) t.true(f.length <= max)
  },
  { numRuns: 100 },
)

testProp(
  'images over maxFrameBytes are dropped (counted) and the next one is found, even when the big one carries a thumbnail',
  [fc.array(fc.nat(), { minLength: 1, maxLength: 8 }), fc.nat(), fc.integer({ min: 1, max: 5000 })],
  (t, picks, seed, maxPiece) => {
    const pool = [fx.exif, fx.baseline[1]!, fx.baseline[3]!, fx.progressive]
    const images = picks.map((i) => pool[i % pool.length]!)
    // Between the small images and the EXIF one (whose thumbnail is smaller still).
    const max = Math.max(fx.baseline[1]!.length, fx.baseline[3]!.length, fx.progressive.length) + 1
    t.true(fx.exif.length > max && fx.thumb.length < max)
    const out = parse(rechunk(Buffer.concat(images), seed, maxPiece), max)
    sameFrames(
      t,
      out.frames,
      images.filter((j) => j.length <= max),
      'the thumbnail is never emitted on its own',
    )
    t.is(out.drops, images.filter((j) => j.length > max).length)
    t.is(out.skipped, 0)
  },
  { numRuns: 80 },
)

/** Offset of the first byte of entropy-coded data (after the first SOS segment). */
function scanStart(jpeg: Buffer): number {
  let pos = 2
  for (;;) {
    const code = jpeg[pos + 1]!
    const length = jpeg.readUInt16BE(pos + 2)
    pos += 2 + length
    if (code === 0xda) return pos
  }
}

testProp(
  'an image cut short inside its scan is dropped and the next image is found at its SOI',
  [fc.array(fc.nat(), { minLength: 2, maxLength: 6 }), fc.nat(), fc.nat(), fc.nat(), fc.integer({ min: 1, max: 500 })],
  (t, picks, which, cutAt, seed, maxPiece) => {
    const pool = [...fx.baseline, fx.exif, ...fx.restart]
    const images = picks.map((i) => pool[i % pool.length]!)
    const k = which % images.length
    const victim = images[k]!
    const from = scanStart(victim)
    const cut = from + (cutAt % (victim.length - 2 - from))
    const bytes = Buffer.concat([...images.slice(0, k), victim.subarray(0, cut), ...images.slice(k + 1)])
    const out = parse(rechunk(bytes, seed, maxPiece))
    const expected = [...images.slice(0, k), ...images.slice(k + 1)]
    sameFrames(t, out.frames, expected)
    t.is(out.drops, 1)
    t.is(out.lost, cut)
  },
  { numRuns: 100 },
)

test('a stream that ends inside an image drops it and says how many bytes were lost', (t) => {
  const img = fx.baseline[0]!
  const dropped: Array<[string, number]> = []
  const frames: Buffer[] = []
  const parser = new MjpegParser({ maxFrameBytes: 1 << 20, onFrame: (d) => frames.push(d), onDrop: (r, n) => dropped.push([r, n]) })
  parser.feed(img)
  parser.feed(img.subarray(0, 100))
  t.like(parser.end(), {
    code: 'ERR_UNEXPECTED_EOF',
    what: 'an image',
    dropped: 100,
    message: 'mjpeg: stream ended in the middle of an image: 100 bytes dropped',
  })
  t.is(frames.length, 1)
  t.like(parser, { drops: 1, lostBytes: 100 })
  t.deepEqual(dropped, [], 'reported by end(), not also through onDrop')
})

test('a corrupt segment length is reported and the parser recovers at the next SOI', (t) => {
  const img = fx.baseline[1]!
  // Bytes 2..3 are the first marker after SOI (sharp writes DQT first); a length of 1 is impossible.
  const bad = Buffer.from(img)
  t.is(bad[2], 0xff)
  const marker = bad[3]!.toString(16).toUpperCase()
  bad.writeUInt16BE(1, 4)
  const reasons: string[] = []
  const frames: Buffer[] = []
  const parser = new MjpegParser({ maxFrameBytes: 1 << 20, onFrame: (d) => frames.push(Buffer.from(d)), onDrop: (r) => reasons.push(r) })
  for (const c of [img, bad, img]) parser.feed(c)
  parser.end()
  sameFrames(t, frames, [img, img])
  t.deepEqual(reasons, [`marker 0x${marker} has a segment length of 1`])
})

test('an FF D8 in garbage that is not followed by a marker is skipped, not counted as a lost image', (t) => {
  const img = fx.baseline[3]!
  const garbage = Buffer.from([0x00, 0xff, 0xd8, 0x12, 0x34, 0xff, 0xd8, 0xff, 0x00])
  const out = parse([garbage, img])
  sameFrames(t, out.frames, [img])
  t.is(out.drops, 0)
  t.is(out.skipped, garbage.length)
})

test('an image without a scan (SOI … EOI with no SOS) is dropped', (t) => {
  const noScan = Buffer.concat([Buffer.from([0xff, 0xd8]), segment(Buffer.from('hello')), Buffer.from([0xff, 0xd9])])
  const out = parse([noScan, fx.baseline[3]!])
  sameFrames(t, out.frames, [fx.baseline[3]!])
  t.is(out.drops, 1)
})

test('fill bytes (FF FF …) before markers and inside the scan are part of the image', (t) => {
  const img = fx.baseline[3]!
  const s = scanStart(img)
  // Extra FF before the marker that follows the first segment, and before the final EOI.
  const firstEnd = 4 + img.readUInt16BE(4)
  const padded = Buffer.concat([
    img.subarray(0, firstEnd),
    Buffer.from([0xff, 0xff]),
    img.subarray(firstEnd, img.length - 2),
    Buffer.from([0xff, 0xff]),
    img.subarray(img.length - 2),
  ])
  t.true(s < img.length - 2)
  const out = parse(rechunk(padded, 5, 3))
  sameFrames(t, out.frames, [padded])
})

test('frames inside one chunk are zero-copy views; frames across chunks are one new buffer each', (t) => {
  const a = fx.baseline[0]!
  const b = fx.baseline[1]!
  // Buffer.alloc never hands out the shared pool, so `.buffer` tells buffers apart.
  const chunk = Buffer.alloc(a.length + 10)
  a.copy(chunk)
  b.copy(chunk, a.length, 0, 10)
  const got: Buffer[] = []
  const parser = new MjpegParser({ maxFrameBytes: 1 << 20, onFrame: (d) => got.push(d) })
  parser.feed(chunk)
  parser.feed(b.subarray(10))
  t.is(got[0]!.buffer, chunk.buffer, 'a view on the chunk')
  t.is(got[0]!.byteOffset, chunk.byteOffset)
  t.not(got[1]!.buffer, chunk.buffer)
  t.true(got[1]!.equals(b))
})

test('jpegSize reads the image SOF, not the thumbnail, and gives up on non-JPEGs', async (t) => {
  for (const j of allFixtures()) {
    const meta = await sharp(j).metadata()
    t.deepEqual(jpegSize(j), { width: meta.width, height: meta.height, components: meta.channels })
  }
  t.deepEqual(jpegSize(fx.exif), { width: 96, height: 64, components: 3 })
  t.deepEqual(jpegSize(fx.thumb), { width: 16, height: 12, components: 3 })
  t.is(jpegSize(Buffer.from('not a jpeg')), undefined)
  t.is(jpegSize(Buffer.alloc(0)), undefined)
  t.is(jpegSize(fx.baseline[0]!.subarray(0, 20)), undefined)
})

testProp('jpegSize never throws on cut or corrupted JPEGs', [fc.nat(), fc.array(mutationArb, { maxLength: 4 })], (t, pick, mutations) => {
  const pool = allFixtures()
  const { bytes } = mutate(pool[pick % pool.length]!, mutations)
  const r = jpegSize(bytes)
  t.true(r === undefined || (Number.isInteger(r.width) && Number.isInteger(r.height)))
})
