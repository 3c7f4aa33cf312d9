// The AVI recorder: the layout engine in memory (property tests against a
// strict reader), and the `avi` sink checked with the real ffprobe/ffmpeg:
// counts, sizes, rates, rotation, OpenDML, and what a crash leaves behind.

import test, { type ExecutionContext } from 'ava'
import { testProp, fc } from '@fast-check/ava'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import sharp from 'sharp'
import { FramePipeError } from '../../src/core/errors.js'
import { makeFrame, type Frame } from '../../src/core/frame.js'
import { AviMuxer, chunkBytes, rateOf, type AviWrite } from '../../src/wire/avi.js'
import { jpegDimensions } from '../../src/wire/jpeg.js'
import { pipeline } from '../../src/core/pipeline.js'
import { avi, type AviFlushEvent, type AviOptions, type AviSegmentEvent } from '../../src/sinks/avi.js'
import { renderTestFrame } from '../../src/image/test-pattern.js'
import { stageInfo } from '../../src/core/stage.js'
import { moviFourcc, parseAvi } from '../helpers/avi-parse.js'
import { collect, fromItems, tempDir, withTimeout } from '../helpers/index.js'
import { FFMPEG, FFPLAY, FFPROBE, NO_FFMPEG_REASON, decodeErrors, play, probe, startRecorder } from '../helpers/media.js'

const haveTools = FFPROBE !== undefined && FFMPEG !== undefined
if (!haveTools) console.warn(`skipping the ffprobe checks of avi: ${NO_FFMPEG_REASON}`)
const mediaTest = haveTools ? test : test.skip
if (!FFPLAY) console.warn("skipping the ffplay check of avi: ffplay not found (Debian's ffmpeg package has it)")
const playTest = FFPLAY ? test : test.skip

async function tmp(t: ExecutionContext): Promise<string> {
  const { dir, cleanup } = await tempDir('frame-pipe-avi-')
  t.teardown(cleanup)
  return dir
}

/** In-memory file the layout engine writes into. */
class MemFile {
  buf = Buffer.alloc(0)
  apply(writes: AviWrite[]): void {
    for (const w of writes) {
      let pos = w.position
      for (const b of w.buffers) {
        if (pos + b.length > this.buf.length) {
          const grown = Buffer.alloc(Math.max(pos + b.length, this.buf.length * 2))
          this.buf.copy(grown)
          this.buf = grown.subarray(0, pos + b.length)
        }
        b.copy(this.buf, pos)
        pos += b.length
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Test frames: numbered test-pattern JPEGs with timestamps `interval` ms apart.

const jpegCache = new Map<string, Buffer>()
async function jpegOf(n: number, width: number, height: number): Promise<Buffer> {
  const key = `${n}:${width}x${height}`
  let data = jpegCache.get(key)
  if (!data) {
    data = await sharp(renderTestFrame(n, width, height), { raw: { width, height, channels: 3 } })
      .jpeg({ quality: 75 })
      .toBuffer()
    jpegCache.set(key, data)
  }
  return data
}

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0)

async function jpegFrames(
  count: number,
  o: { width?: number; height?: number; interval?: number; start?: number; seq?: number } = {},
): Promise<Frame[]> {
  const { width = 160, height = 120, interval = 40, start = T0, seq = 0 } = o
  const out: Frame[] = []
  for (let i = 0; i < count; i++) {
    // The JPEG wire format carries no size: leave width/height 0 as a seed's wire does.
    out.push(makeFrame(await jpegOf(seq + i, width, height), { seq: seq + i, timestamp: start + i * interval }))
  }
  return out
}

interface Recording {
  files: string[]
  closed: AviSegmentEvent[]
  passed: Frame[]
}

async function record(dir: string, frames: Frame[], options: AviOptions = {}): Promise<Recording> {
  const sink = avi({ dir, ...options })
  const closed: AviSegmentEvent[] = []
  sink.on('segment', (e: AviSegmentEvent) => {
    if (e.event === 'close') closed.push(e)
  })
  const passed: Frame[] = []
  sink.on('data', (f: Frame) => passed.push(f))
  await withTimeout(pipeline(fromItems(frames), sink), 20_000, 'avi recording')
  return { files: closed.map((e) => e.file), closed, passed }
}

/** Strict check of a finished file: tiles exactly, idx1 points at every frame of the first RIFF, ix00 at every frame of each RIFF. */
function checkFinished(t: ExecutionContext, buf: Buffer, expected?: Buffer[]): ReturnType<typeof parseAvi> {
  const p = parseAvi(buf)
  t.is(p.trailing, 0, 'nothing outside the RIFFs')
  if (expected)
    t.true(p.frames.length === expected.length && p.frames.every((f, i) => f.equals(expected[i]!)), 'frames in order, byte for byte')
  t.is(p.strh.length, p.frames.length, 'strh dwLength = all frames')
  t.is(p.avih.totalFrames, p.framesPerRiff[0], 'avih dwTotalFrames = first RIFF frames')
  t.truthy(p.avih.flags & 0x10, 'AVIF_HASINDEX')
  t.is(p.strh.handler, 'MJPG')
  t.is(p.strf.compression, 'MJPG')
  t.truthy(p.idx1, 'idx1 present')
  const base = moviFourcc(p.riffs[0]!)
  t.is(p.idx1!.length, p.framesPerRiff[0])
  p.idx1!.forEach((e, i) => {
    const pos = base + e.offset
    if (
      buf.toString('latin1', pos, pos + 4) !== '00dc' ||
      buf.readUInt32LE(pos + 4) !== e.size ||
      e.flags !== 0x10 ||
      e.size !== p.frames[i]!.length
    ) {
      t.fail(`idx1 entry ${i} does not point at frame ${i}`)
    }
  })
  if (p.riffs.length === 1) {
    t.is(p.indxId, 'JUNK', 'a single-RIFF file is plain AVI 1.0')
    t.is(p.dmlhFrames, undefined)
  } else {
    t.is(p.indxId, 'indx')
    t.is(p.dmlhFrames, p.frames.length)
    t.is(p.superIndex.length, p.riffs.length)
    let frame = 0
    p.superIndex.forEach((e, r) => {
      t.is(buf.toString('latin1', e.offset, e.offset + 4), 'ix00', `super index entry ${r} points at an ix00`)
      t.is(e.size, buf.readUInt32LE(e.offset + 4) + 8)
      t.is(e.frames, p.framesPerRiff[r])
      const n = buf.readUInt32LE(e.offset + 12)
      const baseOffset = Number(buf.readBigUInt64LE(e.offset + 20))
      for (let i = 0; i < n; i++, frame++) {
        const data = baseOffset + buf.readUInt32LE(e.offset + 32 + 8 * i)
        const size = buf.readUInt32LE(e.offset + 36 + 8 * i)
        if (
          buf.toString('latin1', data - 8, data - 4) !== '00dc' ||
          size !== p.frames[frame]!.length ||
          !buf.subarray(data, data + size).equals(p.frames[frame]!)
        ) {
          t.fail(`ix00 ${r} entry ${i} does not point at frame ${frame}`)
        }
      }
    })
    t.is(frame, p.frames.length, 'the ix00s list every frame')
  }
  return p
}

// ---------------------------------------------------------------------------
// Layout engine (pure)

test('jpegDimensions reads the frame header of baseline and progressive JPEGs', async (t) => {
  for (const [w, h, progressive] of [
    [1, 1, false],
    [160, 120, false],
    [641, 479, true],
    [3000, 17, false],
  ] as const) {
    const jpeg = await sharp({ create: { width: w, height: h, channels: 3, background: '#369' } })
      .jpeg({ progressive })
      .toBuffer()
    t.deepEqual(jpegDimensions(jpeg), { width: w, height: h })
  }
  const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
    .png()
    .toBuffer()
  t.is(jpegDimensions(png), undefined)
  t.is(jpegDimensions(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0, 2])), undefined, 'scan before any SOF')
  t.is(jpegDimensions(Buffer.alloc(0)), undefined)
})

testProp(
  'jpegDimensions never throws on cut or corrupted JPEGs',
  [fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 })],
  async (t, cut, flips) => {
    const jpeg = Buffer.from(await jpegOf(7, 64, 48))
    for (const [at, v] of flips) jpeg[at % jpeg.length] = v
    const r = jpegDimensions(jpeg.subarray(0, cut % (jpeg.length + 1)))
    t.true(r === undefined || (r.width > 0 && r.height > 0))
  },
)

test('rateOf keeps integer rates exact and others to 1/1000', (t) => {
  t.deepEqual(rateOf(30), { rate: 30, scale: 1 })
  t.deepEqual(rateOf(29.97), { rate: 29970, scale: 1000 })
  t.deepEqual(rateOf(12.5), { rate: 12500, scale: 1000 })
  t.deepEqual(rateOf(0.25), { rate: 1000, scale: 4000 })
})

const frameSizes = fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 60 })

testProp(
  'finished files tile exactly and every index points at its frame, with and without OpenDML',
  [frameSizes, fc.oneof(fc.constant(2 ** 30), fc.integer({ min: 1000, max: 40_000 })), fc.integer({ min: 0, max: 2 ** 32 - 1 })],
  (t, sizes, riffSize, seed) => {
    const m = new AviMuxer({ width: 64, height: 48, fps: 25, riffSize, maxRiffs: 1000 })
    const file = new MemFile()
    file.apply(m.begin())
    const frames = sizes.map((n, i) => Buffer.alloc(n, (seed + i) & 0xff))
    let predicted = 0
    frames.forEach((f, i) => {
      predicted = m.sizeWith(f.length)
      file.apply(m.add(f, i * 40))
    })
    file.apply(m.finish())
    t.is(file.buf.length, m.size)
    t.is(predicted, m.size, 'sizeWith predicted the finished size')
    const p = checkFinished(t, file.buf, frames)
    t.is(p.riffs.length, m.riffs)
    t.deepEqual([p.strh.rate, p.strh.scale, p.avih.usPerFrame], [25, 1, 40_000])
    for (const r of p.riffs) {
      const n = p.framesPerRiff[p.riffs.indexOf(r)]!
      if (n > 1) t.true(r.size + 8 <= riffSize, `RIFF at ${r.pos} of ${r.size + 8} bytes fits riffSize ${riffSize}`)
    }
  },
)

testProp(
  'killed at any write after a patch, the file reads back at least the patched frames (what SIGKILL leaves)',
  [frameSizes, fc.nat(), fc.nat(), fc.nat(), fc.oneof(fc.constant(2 ** 30), fc.integer({ min: 1000, max: 20_000 }))],
  (t, sizes, patchAtSeed, killSeed, tearSeed, riffSize) => {
    const m = new AviMuxer({ width: 64, height: 48, fps: 0, riffSize, maxRiffs: 1000 })
    const log: AviWrite[] = [...m.begin()]
    const patchAt = patchAtSeed % (sizes.length + 1)
    let afterPatch = 0
    const frames = sizes.map((n, i) => Buffer.alloc(n, i & 0xff))
    frames.forEach((f, i) => {
      if (i === patchAt) {
        log.push(...m.patch())
        afterPatch = log.length
      }
      log.push(...m.add(f, 1000 + i * 33))
    })
    if (patchAt === frames.length) {
      log.push(...m.patch())
      afterPatch = log.length
    }
    log.push(...m.finish())
    // Killed before write k, or inside it: the kernel tears a write only at page boundaries.
    const k = afterPatch + (killSeed % (log.length - afterPatch + 1))
    const file = new MemFile()
    file.apply(log.slice(0, k))
    const torn = log[k]
    if (torn) {
      const bytes = Buffer.concat(torn.buffers)
      const keep = Math.min(bytes.length, 4096 * (tearSeed % (Math.ceil(bytes.length / 4096) + 1)))
      file.apply([{ position: torn.position, buffers: [bytes.subarray(0, keep)] }])
    }
    const p = parseAvi(file.buf)
    t.true(p.frames.length >= patchAt, `a reader that honours sizes sees ${p.frames.length} frames, ${patchAt} were patched`)
    t.true(p.strh.length >= patchAt, 'the header counts them')
    p.frames.forEach((f, i) => t.true(f.equals(frames[i]!), `frame ${i} intact`))
  },
)

test('the super index has a bound: fits() says when a new file is needed', (t) => {
  const m = new AviMuxer({ width: 8, height: 8, fps: 10, riffSize: 1000, maxRiffs: 2 })
  const file = new MemFile()
  file.apply(m.begin())
  const frame = Buffer.alloc(300)
  let added = 0
  while (m.fits(frame.length)) {
    file.apply(m.add(frame, added * 100))
    added++
    if (added > 100) break
  }
  t.is(m.riffs, 2)
  t.throws(() => m.add(frame, 0), { message: /super index is full/ })
  file.apply(m.finish())
  t.is(checkFinished(t, file.buf).frames.length, added)
})

test('without fps the header states the mean rate of the timestamps', (t) => {
  const m = new AviMuxer({ width: 8, height: 8, fps: 0, fallbackFps: 12 })
  new MemFile().apply(m.begin())
  t.is(m.fps, 12, 'fallback until two frames give a span')
  m.add(Buffer.alloc(10), 1000)
  t.is(m.fps, 12)
  for (let i = 1; i < 11; i++) m.add(Buffer.alloc(10), 1000 + i * 50)
  t.is(m.fps, 20)
})

// ---------------------------------------------------------------------------
// The sink, checked with ffprobe and ffmpeg

mediaTest('60 frames make one file: exact count, size, rate and duration; ffmpeg decodes it cleanly', async (t) => {
  const dir = await tmp(t)
  const frames = await jpegFrames(60, { interval: 40 })
  const rec = await record(dir, frames, { pattern: 'one.avi' })
  t.deepEqual(rec.files, [join(dir, 'one.avi')])
  t.is(rec.passed.length, 60)
  t.true(
    rec.passed.every((f, i) => f === frames[i]),
    'passes each Frame on, unchanged',
  )
  const p = await probe(rec.files[0]!)
  t.like(p, { frames: 60, declared: 60, width: 160, height: 120, rate: '25/1', codec: 'mjpeg' })
  t.true(Math.abs(p.duration - 60 / 25) < 0.001, `duration ${p.duration}`)
  t.is(await decodeErrors(rec.files[0]!), '')
  checkFinished(
    t,
    await readFile(rec.files[0]!),
    frames.map((f) => f.data),
  )
})

mediaTest('the fps option fixes the header rate', async (t) => {
  const dir = await tmp(t)
  const rec = await record(dir, await jpegFrames(25, { interval: 1 }), { pattern: 'r.avi', fps: 12.5 })
  const p = await probe(rec.files[0]!)
  t.like(p, { frames: 25, rate: '25/2' })
  t.true(Math.abs(p.duration - 2) < 0.001)
})

mediaTest("segment rotates by the frames' timestamps; each file is complete and the counts add up", async (t) => {
  const dir = await tmp(t)
  const frames = await jpegFrames(100, { interval: 40 })
  const rec = await record(dir, frames, { pattern: 'seg-%03d.avi', segment: 1000 })
  t.deepEqual(
    rec.files.map((f) => f.slice(dir.length + 1)),
    ['seg-000.avi', 'seg-001.avi', 'seg-002.avi', 'seg-003.avi'],
  )
  const counts = []
  for (const file of rec.files) {
    const p = await probe(file)
    t.like(p, { declared: p.frames, width: 160, height: 120, rate: '25/1' })
    t.is(await decodeErrors(file), '')
    checkFinished(t, await readFile(file))
    counts.push(p.frames)
  }
  t.deepEqual(counts, [25, 25, 25, 25])
  t.deepEqual(
    rec.closed.map((e) => e.frames),
    counts,
  )
  t.deepEqual(
    rec.closed.map((e) => e.reason),
    ['segment of 1000 ms complete', 'segment of 1000 ms complete', 'segment of 1000 ms complete', 'end'],
  )
})

mediaTest('segment with paced live frames: every closed file counts what its close event says, the sum is what was sent', async (t) => {
  const dir = await tmp(t)
  const { testsrc } = await import('../../src/sources/testsrc.js')
  const sink = avi({ dir, pattern: 'live-%02d.avi', segment: 500, flush: 100 })
  const closed: AviSegmentEvent[] = []
  sink.on('segment', (e: AviSegmentEvent) => e.event === 'close' && closed.push(e))
  await withTimeout(pipeline(testsrc({ width: 96, height: 64, fps: 40, count: 60, format: 'jpeg' }), sink), 20_000, 'live recording')
  t.true(closed.length >= 2, `${closed.length} segments`)
  let total = 0
  for (const e of closed) {
    const p = await probe(e.file)
    t.is(p.frames, e.frames)
    t.true(Math.abs(p.duration - e.frames / p.fps) < 0.002, `duration ${p.duration} for ${e.frames} frames at ${p.fps}`)
    total += p.frames
  }
  t.is(total, 60)
  t.is(stageInfo(sink)!.counters.segments, closed.length)
})

mediaTest('maxBytes rotates by size: no file exceeds it, the counts add up', async (t) => {
  const dir = await tmp(t)
  const frames = await jpegFrames(80)
  const maxBytes = 48 * 1024
  const rec = await record(dir, frames, { pattern: 'size-%d.avi', maxBytes })
  t.true(rec.files.length >= 3, `${rec.files.length} files`)
  let total = 0
  for (const [i, file] of rec.files.entries()) {
    const size = (await stat(file)).size
    t.true(size <= maxBytes, `${file}: ${size} bytes`)
    t.is(size, rec.closed[i]!.bytes)
    const p = await probe(file)
    t.is(p.frames, rec.closed[i]!.frames)
    total += p.frames
  }
  t.is(total, 80)
  t.deepEqual(
    rec.closed.slice(0, -1).map((e) => e.reason),
    rec.closed.slice(0, -1).map(() => `maxBytes (${maxBytes}) reached`),
  )
})

mediaTest('OpenDML: a small forced RIFF size makes AVIX extensions; ffprobe counts every frame', async (t) => {
  const dir = await tmp(t)
  const frames = await jpegFrames(150, { width: 200, height: 150 })
  const rec = await record(dir, frames, { pattern: 'big.avi', riffSize: 64 * 1024 })
  t.is(rec.files.length, 1)
  const buf = await readFile(rec.files[0]!)
  const parsed = checkFinished(
    t,
    buf,
    frames.map((f) => f.data),
  )
  t.true(parsed.riffs.length >= 4, `${parsed.riffs.length} RIFFs`)
  const p = await probe(rec.files[0]!)
  t.like(p, { frames: 150, declared: 150, width: 200, height: 150, rate: '25/1' })
  t.true(Math.abs(p.duration - 6) < 0.001)
  t.is(await decodeErrors(rec.files[0]!), '')
  t.regex(rec.closed[0]!.message, /OpenDML \d+ RIFFs/)
})

mediaTest('a change of frame size starts a new segment; no frame is dropped', async (t) => {
  const dir = await tmp(t)
  const frames = [
    ...(await jpegFrames(10, { width: 160, height: 120 })),
    ...(await jpegFrames(7, { width: 160, height: 90, seq: 10, start: T0 + 400 })),
    ...(await jpegFrames(5, { width: 160, height: 120, seq: 17, start: T0 + 680 })),
  ]
  const rec = await record(dir, frames, { pattern: 'cam-%d.avi' })
  t.deepEqual(
    rec.closed.map((e) => e.reason),
    ['frame size changed from 160x120 to 160x90', 'frame size changed from 160x90 to 160x120', 'end'],
  )
  const probes = await Promise.all(rec.files.map(probe))
  t.deepEqual(
    probes.map((p) => [p.frames, p.width, p.height]),
    [
      [10, 160, 120],
      [7, 160, 90],
      [5, 160, 120],
    ],
  )
})

test('raw frames are refused with the fix; so are PNG frames', async (t) => {
  const dir = await tmp(t)
  const raw = makeFrame(Buffer.alloc(16 * 8 * 3), { format: 'raw', width: 16, height: 8, channels: 3, seq: 4 })
  const err = await t.throwsAsync(record(dir, [raw]), { instanceOf: FramePipeError })
  t.is(err!.code, 'ERR_BAD_FRAME')
  t.is(err!.message, 'avi: frame 4 is raw pixels (16x8x3): AVI here holds JPEG (MJPEG); insert jpeg before avi')
  const png = makeFrame(
    await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
      .png()
      .toBuffer(),
  )
  await t.throwsAsync(record(dir, [png]), { message: /frame 0 is png: .*insert jpeg before avi/ })
  const notJpeg = makeFrame(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0, 2, 0, 0]), { seq: 9 })
  await t.throwsAsync(record(dir, [notJpeg]), { message: /frame 9 \(8 bytes\) is not a JPEG with a frame header/ })
  t.deepEqual(await readdir(dir), [], 'no file is created for refused frames')
})

test('bad options fail when the stage is made', (t) => {
  t.throws(() => avi({ pattern: 'x-{hour}.avi' }), { message: /avi: unknown token \{hour\}/ })
  t.throws(() => avi({ riffSize: 1000 }), { message: /expected integer between 65536 and 1073741824 bytes for riffSize/ })
  t.throws(() => avi({ fps: -1 }), { code: 'ERR_INVALID_OPTION' })
})

mediaTest('names never replace a file: _001, _002 … are added (they sort); the existing file is untouched', async (t) => {
  const dir = await tmp(t)
  await writeFile(join(dir, 'same.avi'), 'not mine')
  const rec = await record(dir, await jpegFrames(30, { interval: 100 }), { pattern: 'same.avi', segment: 1000 })
  t.deepEqual(
    rec.files.map((f) => f.slice(dir.length + 1)),
    ['same_001.avi', 'same_002.avi', 'same_003.avi'],
  )
  t.is(await readFile(join(dir, 'same.avi'), 'utf8'), 'not mine')
  t.deepEqual(
    (await Promise.all(rec.files.map(probe))).map((p) => p.frames),
    [10, 10, 10],
  )
})

mediaTest("the seeds' names: video_stream_{ms}.avi (003) and camera{time}.avi with 15 s segments (004)", async (t) => {
  const dir = await tmp(t)
  const start = new Date(2024, 4, 1, 23, 25, 34, 120).getTime()
  const r3 = await record(dir, await jpegFrames(5, { start }), { pattern: 'video_stream_{ms}.avi' })
  t.deepEqual(r3.files, [join(dir, `video_stream_${start}.avi`)])
  // 40 s of frames at 10 fps, as seed 004's client records them.
  const r4 = await record(dir, await jpegFrames(400, { start, interval: 100, width: 64, height: 48 }), {
    pattern: 'camera{time}.avi',
    segment: 15_000,
  })
  t.deepEqual(
    r4.files.map((f) => f.slice(dir.length + 1)),
    ['camera23-25-34.avi', 'camera23-25-49.avi', 'camera23-26-04.avi'],
  )
  t.deepEqual(
    (await Promise.all(r4.files.map(probe))).map((p) => [p.frames, p.rate]),
    [
      [150, '10/1'],
      [150, '10/1'],
      [100, '10/1'],
    ],
  )
})

mediaTest('flush=0 patches after every frame', async (t) => {
  const dir = await tmp(t)
  const sink = avi({ dir, pattern: 'f.avi', flush: 0 })
  const flushes: AviFlushEvent[] = []
  sink.on('flush', (e: AviFlushEvent) => flushes.push(e))
  await pipeline(fromItems(await jpegFrames(5)), sink)
  t.deepEqual(
    flushes.map((f) => f.frames),
    [1, 2, 3, 4, 5],
  )
  t.is((await probe(join(dir, 'f.avi'))).frames, 5)
})

mediaTest('a destroyed pipeline still leaves a finalised file', async (t) => {
  const dir = await tmp(t)
  const frames = await jpegFrames(12)
  const sink = avi({ dir, pattern: 'cut.avi' })
  let i = 0
  const source = new Readable({
    objectMode: true,
    read() {
      if (i < frames.length) {
        this.push(frames[i++])
        return
      }
      // Fail once the sink has every frame, so the test knows what the file must hold.
      const fail = () =>
        stageInfo(sink)!.counters.frames === frames.length ? this.destroy(new Error('camera unplugged')) : setTimeout(fail, 5)
      fail()
    },
  })
  await t.throwsAsync(withTimeout(pipeline(source, sink), 10_000, 'pipeline'), { message: 'camera unplugged' })
  await withTimeout(new Promise((resolve) => (sink.closed ? resolve(undefined) : sink.once('close', resolve))), 5000, 'sink close')
  const buf = await readFile(join(dir, 'cut.avi'))
  checkFinished(
    t,
    buf,
    frames.map((f) => f.data),
  )
  t.like(await probe(join(dir, 'cut.avi')), { frames: 12, declared: 12 })
})

playTest('ffplay plays a finished file and a killed one (no idx1, frames after the last flush) to their ends', async (t) => {
  const dir = await tmp(t)
  const frames = await jpegFrames(25)
  const write = async (name: string, stopAt: 'finish' | 'crash'): Promise<string> => {
    const m = new AviMuxer({ width: 160, height: 120, fps: 25 })
    const file = new MemFile()
    file.apply(m.begin())
    frames.forEach((f, i) => {
      file.apply(m.add(f.data, f.timestamp))
      if (stopAt === 'crash' && i === 19) file.apply(m.patch())
    })
    if (stopAt === 'finish') file.apply(m.finish())
    const path = join(dir, name)
    await writeFile(path, file.buf)
    return path
  }
  const [finished, killed] = await Promise.all([play(await write('finished.avi', 'finish')), play(await write('killed.avi', 'crash'))])
  // The clock shows the last frame's time: 24/25 s when all 25 frames play.
  t.true(finished.clock >= 0.9, `finished: clock ${finished.clock}`)
  t.true(killed.clock >= 0.74, `killed: clock ${killed.clock} (20 frames flushed, 25 written)`)
  // (ffplay's dropped-frame count depends on the machine's load, so it is only logged.)
  t.log(`ffplay: finished to ${finished.clock} s, killed to ${killed.clock} s; late frames dropped ${finished.dropped}/${killed.dropped}`)
})

// ---------------------------------------------------------------------------
// Crash safety: a real recording process, killed.

mediaTest('SIGKILL: the file opens and plays at least up to the last flush', async (t) => {
  const dir = await tmp(t)
  const rec = startRecorder(t, 'avi', dir, 250)
  // Eight flushes at 250 ms: about 2 s of recording.
  await rec.waitFor((l) => l.filter((x) => x.flush).length >= 8, 'eight flushes')
  rec.kill('SIGKILL')
  t.like(await withTimeout(rec.exited, 5000, 'exit'), { signal: 'SIGKILL' })
  const flushes = rec.lines.filter((l) => l.flush).map((l) => l.flush as AviFlushEvent)
  const last = flushes[flushes.length - 1]!
  const files = await readdir(dir)
  t.deepEqual(files, [last.file.slice(dir.length + 1)])
  const buf = await readFile(last.file)
  const parsed = parseAvi(buf)
  t.true(parsed.frames.length >= last.frames, `strict reader: ${parsed.frames.length} frames, last flush announced ${last.frames}`)
  t.is(parsed.idx1, undefined, 'not finalised: no idx1')
  const p = await probe(last.file)
  t.like(p, { width: 160, height: 120 })
  t.true(p.declared! >= last.frames, `header declares ${p.declared}, last flush ${last.frames}`)
  t.true(p.frames >= p.declared!, `ffprobe counts ${p.frames} >= declared ${p.declared}`)
  t.log(
    `SIGKILL after ${flushes.length} flushes: last flush ${last.frames} frames; header ${p.declared}; ffprobe -count_frames ${p.frames}; file ${buf.length} bytes`,
  )
})

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  mediaTest(`${signal}: the segment is finalised before exit, with idx1 and the exact count`, async (t) => {
    const dir = await tmp(t)
    const rec = startRecorder(t, 'avi', dir, 250)
    await rec.waitFor((l) => l.filter((x) => x.flush).length >= 3, 'three flushes')
    rec.kill(signal)
    t.like(await withTimeout(rec.exited, 10_000, 'exit'), { code: 0 })
    const done = rec.lines.find((l) => l.done)
    const closed = rec.lines.filter((l) => l.segment?.event === 'close').map((l) => l.segment as AviSegmentEvent)
    t.truthy(done)
    t.is(closed.length, 1)
    t.is(closed[0]!.frames, done!.frames)
    t.is(closed[0]!.reason, 'end')
    const buf = await readFile(closed[0]!.file)
    const parsed = checkFinished(t, buf)
    t.is(parsed.frames.length, done!.frames)
    t.like(await probe(closed[0]!.file), { frames: done!.frames, declared: done!.frames, width: 160, height: 120 })
    t.is(await decodeErrors(closed[0]!.file), '')
  })
}

test('chunkBytes pads odd sizes to even', (t) => {
  t.is(chunkBytes(1), 10)
  t.is(chunkBytes(2), 10)
  t.is(chunkBytes(0), 8)
})

test('read through its readable side, the sink passes each Frame on', async (t) => {
  const dir = await tmp(t)
  const frames = await jpegFrames(2)
  const out = await collect<Frame>(fromItems(frames).pipe(avi({ dir, pattern: 'c.avi' })))
  t.deepEqual(out, frames)
})
