// The mp4 sink: H.264 through ffmpeg, checked with the real ffprobe: counts,
// sizes, rates, segments and names shared with avi, errors, and what a killed
// frame-pipe leaves (ffmpeg finishes the file on the end of its input).

import test, { type ExecutionContext } from 'ava'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import sharp from 'sharp'
import { FramePipeError } from '../../src/core/errors.js'
import { makeFrame, type Frame } from '../../src/core/frame.js'
import { pipeline } from '../../src/core/pipeline.js'
import { mp4, type Mp4Options, type Mp4SegmentEvent } from '../../src/sinks/mp4.js'
import { renderTestFrame } from '../../src/image/test-pattern.js'
import { fromItems, tempDir, withTimeout } from '../helpers/index.js'
import { FFMPEG, FFPROBE, NO_FFMPEG_REASON, decodeErrors, pidAlive, probe, startRecorder } from '../helpers/media.js'

const haveTools = FFPROBE !== undefined && FFMPEG !== undefined
if (!haveTools) console.warn(`skipping the mp4 tests: ${NO_FFMPEG_REASON}`)
const mediaTest = haveTools ? test : test.skip

async function tmp(t: ExecutionContext): Promise<string> {
  const { dir, cleanup } = await tempDir('frame-pipe-mp4-')
  t.teardown(cleanup)
  return dir
}

const T0 = new Date(2024, 4, 1, 8, 30, 0).getTime()

async function jpegFrames(
  count: number,
  o: { width?: number; height?: number; interval?: number; start?: number; seq?: number } = {},
): Promise<Frame[]> {
  const { width = 160, height = 120, interval = 40, start = T0, seq = 0 } = o
  const out: Frame[] = []
  for (let i = 0; i < count; i++) {
    const data = await sharp(renderTestFrame(seq + i, width, height), { raw: { width, height, channels: 3 } })
      .jpeg({ quality: 75 })
      .toBuffer()
    out.push(makeFrame(data, { seq: seq + i, timestamp: start + i * interval }))
  }
  return out
}

async function record(dir: string, frames: Frame[], options: Mp4Options = {}): Promise<{ closed: Mp4SegmentEvent[]; passed: Frame[] }> {
  const sink = mp4({ dir, ...options })
  const closed: Mp4SegmentEvent[] = []
  sink.on('segment', (e: Mp4SegmentEvent) => e.event === 'close' && closed.push(e))
  const passed: Frame[] = []
  sink.on('data', (f: Frame) => passed.push(f))
  await withTimeout(pipeline(fromItems(frames), sink), 30_000, 'mp4 recording')
  return { closed, passed }
}

const names = (dir: string, closed: Mp4SegmentEvent[]) => closed.map((e) => e.file.slice(dir.length + 1))

mediaTest('one file: every frame encoded as H.264, size, rate and duration as asked; decodes cleanly', async (t) => {
  const dir = await tmp(t)
  const frames = await jpegFrames(60)
  const { closed, passed } = await record(dir, frames, { pattern: 'clip.mp4', fps: 25 })
  t.deepEqual(names(dir, closed), ['clip.mp4'])
  t.is(closed[0]!.frames, 60)
  t.true(passed.length === 60 && passed.every((f, i) => f === frames[i]), 'passes each Frame on')
  const p = await probe(join(dir, 'clip.mp4'))
  t.like(p, { frames: 60, width: 160, height: 120, rate: '25/1', codec: 'h264' })
  t.true(Math.abs(p.duration - 2.4) < 0.05, `duration ${p.duration}`)
  t.is(await decodeErrors(join(dir, 'clip.mp4')), '')
})

mediaTest('fps=0 takes the rate from the timestamps; odd sizes lose their last column and row', async (t) => {
  const dir = await tmp(t)
  const { closed } = await record(dir, await jpegFrames(40, { width: 161, height: 121, interval: 50 }), { pattern: 'm.mp4', fps: 0 })
  t.is(closed[0]!.fps, 20)
  t.like(await probe(join(dir, 'm.mp4')), { frames: 40, width: 160, height: 120, rate: '20/1' })
})

mediaTest("segment cuts by the frames' timestamps as avi does; counts add up; later files use the measured rate", async (t) => {
  const dir = await tmp(t)
  const { closed } = await record(dir, await jpegFrames(100, { interval: 40 }), { pattern: 'seg-%03d.mp4', segment: 1000, fps: 0 })
  t.deepEqual(names(dir, closed), ['seg-000.mp4', 'seg-001.mp4', 'seg-002.mp4', 'seg-003.mp4'])
  t.deepEqual(
    closed.map((e) => e.frames),
    [25, 25, 25, 25],
  )
  for (const e of closed) {
    const p = await probe(e.file)
    t.like(p, { frames: e.frames, rate: '25/1', width: 160, height: 120 })
  }
})

mediaTest("names never replace a file: seed 004's camera{time}.mp4 in segments shorter than a second, and an existing file", async (t) => {
  const dir = await tmp(t)
  await writeFile(join(dir, 'camera08-30-00.mp4'), 'not mine')
  const { closed } = await record(dir, await jpegFrames(40, { interval: 50 }), { pattern: 'camera{time}.mp4', segment: 500, fps: 20 })
  t.deepEqual(names(dir, closed), ['camera08-30-00_001.mp4', 'camera08-30-00_002.mp4', 'camera08-30-01.mp4', 'camera08-30-01_001.mp4'])
  t.deepEqual(
    (await Promise.all(closed.map((e) => probe(e.file)))).map((p) => p.frames),
    [10, 10, 10, 10],
  )
  t.is((await readdir(dir)).length, 5)
})

mediaTest('a change of frame size starts a new file', async (t) => {
  const dir = await tmp(t)
  const frames = [...(await jpegFrames(8)), ...(await jpegFrames(6, { width: 96, height: 64, seq: 8, start: T0 + 320 }))]
  const { closed } = await record(dir, frames, { pattern: 'v%d.mp4', fps: 25 })
  t.deepEqual(
    closed.map((e) => e.reason),
    ['frame size changed from 160x120 to 96x64', 'end'],
  )
  t.deepEqual(
    (await Promise.all(closed.map((e) => probe(e.file)))).map((p) => [p.frames, p.width, p.height]),
    [
      [8, 160, 120],
      [6, 96, 64],
    ],
  )
})

mediaTest('raw and PNG frames are refused with the fix', async (t) => {
  const dir = await tmp(t)
  const raw = makeFrame(Buffer.alloc(16 * 8 * 3), { format: 'raw', width: 16, height: 8, channels: 3, seq: 2 })
  const err = await t.throwsAsync(record(dir, [raw]), { instanceOf: FramePipeError })
  t.is(err!.message, 'mp4: frame 2 is raw pixels (16x8x3): mp4 takes JPEG frames; insert jpeg before mp4')
  const png = makeFrame(
    await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
      .png()
      .toBuffer(),
  )
  await t.throwsAsync(record(dir, [png]), { message: /frame 0 is png: .*insert jpeg before mp4/ })
  t.deepEqual(await readdir(dir), [])
})

mediaTest("an ffmpeg that fails is an error with ffmpeg's reason; a missing one is named", async (t) => {
  const dir = await tmp(t)
  const frames = await jpegFrames(3)
  await t.throwsAsync(record(dir, frames, { ffmpeg: join(dir, 'no-such-ffmpeg') }), {
    message: /mp4: ffmpeg option '.*no-such-ffmpeg' does not exist/,
  })
  // An ffmpeg built without libx264 says so on stderr and exits 1; a stand-in does the same.
  const fake = join(dir, 'fake-ffmpeg')
  await writeFile(fake, '#!/bin/sh\necho "[error] Unknown encoder \'libx264\'" >&2\nexit 1\n', { mode: 0o755 })
  const err = await t.throwsAsync(record(dir, frames, { ffmpeg: fake, pattern: 'x.mp4' }), { instanceOf: FramePipeError })
  t.is(err!.message, `mp4: ffmpeg exited with code 1: Unknown encoder 'libx264' (writing ${join(dir, 'x.mp4')})`)
  t.deepEqual(await readdir(dir), ['fake-ffmpeg'], 'the empty reservation is removed')
})

mediaTest('frame-pipe killed with SIGKILL: ffmpeg sees its input end and finishes the MP4', async (t) => {
  const dir = await tmp(t)
  const rec = startRecorder(t, 'mp4', dir)
  await rec.waitFor((l) => l.some((x) => (x.written ?? 0) >= 20), '20 frames written')
  const start = rec.lines.find((l) => l.ffmpeg?.event === 'start')
  const pid = start!.ffmpeg.pid as number
  t.teardown(() => {
    if (pidAlive(pid)) process.kill(pid, 'SIGKILL')
  })
  rec.kill('SIGKILL')
  await withTimeout(rec.exited, 5000, 'exit')
  const written = Math.max(...rec.lines.map((l) => l.written ?? 0))
  await withTimeout(
    (async () => {
      while (pidAlive(pid)) await new Promise((resolve) => setTimeout(resolve, 50))
    })(),
    15_000,
    'ffmpeg to finish',
  )
  const files = await readdir(dir)
  t.is(files.length, 1)
  const p = await probe(join(dir, files[0]!))
  t.true(p.frames >= written, `ffprobe counts ${p.frames}, frame-pipe had written ${written}`)
  t.like(p, { width: 160, height: 120, codec: 'h264' })
})

mediaTest('SIGTERM: the recording ends cleanly with every frame', async (t) => {
  const dir = await tmp(t)
  const rec = startRecorder(t, 'mp4', dir)
  await rec.waitFor((l) => l.some((x) => (x.written ?? 0) >= 15), '15 frames written')
  rec.kill('SIGTERM')
  t.like(await withTimeout(rec.exited, 15_000, 'exit'), { code: 0 })
  const done = rec.lines.find((l) => l.done)!
  const closed = rec.lines.filter((l) => l.segment?.event === 'close').map((l) => l.segment as Mp4SegmentEvent)
  t.is(closed.length, 1)
  t.is(closed[0]!.frames, done.frames)
  t.like(await probe(closed[0]!.file), { frames: done.frames, width: 160, height: 120 })
})

mediaTest('Ctrl-C in a terminal (SIGINT to the whole process group, ffmpeg too) ends cleanly: no error, every file complete', async (t) => {
  const dir = await tmp(t)
  const rec = startRecorder(t, 'mp4', dir, 250, true)
  await rec.waitFor((l) => l.some((x) => (x.written ?? 0) >= 15), '15 frames written')
  rec.kill('SIGINT')
  t.like(await withTimeout(rec.exited, 15_000, 'exit'), { code: 0 })
  t.truthy(
    rec.lines.find((l) => l.done),
    'the pipeline resolved',
  )
  const closed = rec.lines.filter((l) => l.segment?.event === 'close').map((l) => l.segment as Mp4SegmentEvent)
  t.true(closed.length >= 1)
  for (const e of closed) t.true((await probe(e.file)).frames >= 1, `${e.file} plays (${e.reason})`)
})
