// Attacks on the recorders (issue 10, items 8 and 9): an mp4 segment cut by a
// full disk or a killed ffmpeg is reported DAMAGED, never complete, and
// (fragmented) still plays; a peer's timestamps cannot multiply files or name
// them NaN.

import test, { type ExecutionContext } from 'ava'
import { once } from 'node:events'
import { readdir, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import sharp from 'sharp'
import { FramePipeError } from '../../src/core/errors.js'
import { makeFrame, now } from '../../src/core/frame.js'
import { pipeline } from '../../src/core/pipeline.js'
import { stageInfo, type Counters } from '../../src/core/stage.js'
import { avi } from '../../src/sinks/avi.js'
import { files } from '../../src/sinks/files.js'
import { mp4, type Mp4SegmentEvent } from '../../src/sinks/mp4.js'
import { renderTestFrame } from '../../src/image/test-pattern.js'
import { encodeHeader } from '../../src/wire/headers.js'
import { fromItems, tempDir, withTimeout } from '../helpers/index.js'
import { FFMPEG, FFPROBE, probe } from '../helpers/media.js'
import { figure, startCli, until } from './helpers.js'

const counters = (s: object): Counters => stageInfo(s as never)!.counters
const mediaTest = FFMPEG && FFPROBE ? test : test.skip

async function tmp(t: ExecutionContext): Promise<string> {
  const { dir, cleanup } = await tempDir('frame-pipe-attack-')
  t.teardown(cleanup)
  return dir
}

let jpegs: Buffer[] | undefined
async function jpeg(i: number): Promise<Buffer> {
  jpegs ??= await Promise.all(
    Array.from({ length: 10 }, (_, k) =>
      sharp(renderTestFrame(k, 160, 120), { raw: { width: 160, height: 120, channels: 3 } })
        .jpeg({ quality: 75 })
        .toBuffer(),
    ),
  )
  return jpegs[i % jpegs.length]!
}

/** JPEG frames at 25 fps of frame time, made as fast as the recorder takes them. */
function live(count: number): Readable {
  let i = 0
  const t0 = now()
  return new Readable({
    objectMode: true,
    read() {
      if (i === count) return void this.push(null)
      void jpeg(i).then((data) => this.push(makeFrame(data, { seq: i, timestamp: t0 + i++ * 40 })))
    },
  })
}

/** An ffmpeg whose disk fills at `bytes` (RLIMIT_FSIZE, SIGXFSZ ignored: writes fail with EFBIG as with ENOSPC). */
async function smallDiskFfmpeg(dir: string, bytes: number): Promise<string> {
  const path = join(dir, 'ffmpeg-small-disk')
  await writeFile(path, `#!/bin/sh\ntrap '' XFSZ\nulimit -f ${Math.floor(bytes / 512)}\nexec ${FFMPEG} "$@"\n`, { mode: 0o755 })
  return path
}

for (const fragmented of [true, false]) {
  mediaTest(
    `mp4 fragmented=${fragmented}: a disk that fills mid-segment is an error that says DAMAGED; the file ${fragmented ? 'still plays' : 'does not play'}`,
    async (t) => {
      const dir = await tmp(t)
      const ffmpeg = await smallDiskFfmpeg(dir, 100 * 1024)
      const sink = mp4({ dir: join(dir, 'rec'), pattern: 'cut.mp4', fps: 25, ffmpeg, fragmented })
      const closed: Mp4SegmentEvent[] = []
      sink.on('segment', (e: Mp4SegmentEvent) => e.event === 'close' && closed.push(e))
      const err = await t.throwsAsync(withTimeout(pipeline(live(2000), sink), 60_000, 'recording'), { instanceOf: FramePipeError })
      t.regex(err!.message, /^mp4: ffmpeg exited with code 1: .* \(writing .*cut\.mp4\); .*cut\.mp4 is DAMAGED: /)
      t.deepEqual(closed, [], 'never announced closed (complete)')
      t.is(counters(sink).damaged, 1)
      const file = join(dir, 'rec', 'cut.mp4')
      if (fragmented) {
        const p = await probe(file)
        t.true(p.frames >= 10, `${p.frames} frames play`)
        figure(t, '8-disk-full', {
          fragmented,
          framesGiven: counters(sink).frames,
          framesPlay: p.frames,
          message: err!.message.replace(dir, '…'),
        })
      } else {
        await t.throwsAsync(probe(file))
        figure(t, '8-disk-full', { fragmented, framesGiven: counters(sink).frames, framesPlay: 0, message: err!.message.replace(dir, '…') })
      }
    },
  )
}

mediaTest('mp4: an ffmpeg that exits 0 without writing the index is reported DAMAGED, not complete; recording goes on', async (t) => {
  const dir = await tmp(t)
  // Takes its input, writes the start of an MP4 (ftyp, then an mdat cut short) and exits 0.
  const fake = join(dir, 'fake-ffmpeg')
  await writeFile(
    fake,
    `#!${process.execPath}\nconst fs = require('fs')\nconst out = process.argv[process.argv.length - 1]\nprocess.stdin.resume()\nprocess.stdin.on('end', () => {\n  const ftyp = Buffer.from('000000186674797069736d00000000206973366d61766331', 'hex')\n  const mdat = Buffer.from('000010006d646174', 'hex')\n  fs.writeFileSync(out, Buffer.concat([ftyp, mdat, Buffer.alloc(100)]))\n  process.exit(0)\n})\n`,
    { mode: 0o755 },
  )
  const sink = mp4({ dir, pattern: 'x-%d.mp4', fps: 25, ffmpeg: fake, segment: 200 })
  const closed: Mp4SegmentEvent[] = []
  const warnings: Error[] = []
  sink.on('segment', (e: Mp4SegmentEvent) => e.event === 'close' && closed.push(e))
  sink.on('warning', (w: Error) => warnings.push(w))
  await withTimeout(
    pipeline(
      fromItems(
        await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(async (i) => makeFrame(await jpeg(i), { seq: i, timestamp: 1e12 + i * 100 }))),
      ),
      sink,
    ),
    30_000,
    'recording',
  )
  t.true(closed.length >= 2)
  t.true(closed.every((e) => e.damaged !== undefined && /DAMAGED: the 'mdat' box at byte 24 is cut short/.test(e.message)))
  t.is(counters(sink).damaged, closed.length)
  t.regex(warnings[0]!.message, /^mp4: .*x-0\.mp4 is damaged: /)
})

// ---------------------------------------------------------------- a peer's clock

/** Native frames whose timestamps the attacker chooses. */
async function nativeWire(stamps: number[]): Promise<Buffer> {
  const parts: Buffer[] = []
  for (const [i, ts] of stamps.entries()) {
    const data = await jpeg(i)
    parts.push(
      encodeHeader('native', makeFrame(data, { seq: i, width: 160, height: 120, channels: 3, timestamp: ts }), false, 'test') as Buffer,
      data,
    )
  }
  return Buffer.concat(parts)
}

const DAY = 86_400_000
const hostile = (n: number): number[] => Array.from({ length: n }, (_, i) => (i === 7 ? NaN : Date.now() + (i % 2 ? DAY : -DAY)))

test('CLI tcp-server ! unprefix header=native ! avi segment=15s: timestamps ±1 day and NaN make one file with a sane name', async (t) => {
  const dir = await tmp(t)
  const cli = startCli(t, `tcp-server port=0 ! unprefix header=native ! avi dir=${dir} segment=15s`)
  const port = await cli.port('tcp-server')
  const s = net.connect(port, '127.0.0.1')
  await once(s, 'connect')
  s.end(await nativeWire(hostile(20)))
  await until(() => cli.lines.some((l) => /left/.test(l)), 10_000, 'the peer done')
  const r = await cli.stop()
  t.is(r.code, 0)
  const names = await readdir(dir)
  t.is(names.length, 1, names.join(', '))
  t.regex(names[0]!, /^rec-\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d\.avi$/)
  const unprefixCounters = cli.snapshots.at(-1)!.stages[1]!.counters
  t.is(unprefixCounters.badTimestamps, 20)
  t.is(cli.lines.filter((l) => /badTimestamps/.test(l)).length, 1, 'one warning per peer')
  figure(t, '9', { frames: 20, files: names.length, names, badTimestamps: unprefixCounters.badTimestamps })
})

test("a peer's clock jumping ±1 day past the timestamp check (maxClockSkew=0) still cannot make a file per frame: avi, files", async (t) => {
  const dir = await tmp(t)
  const frames = hostile(20).map((ts, i) => ({ seq: i, ts }))
  const make = async () =>
    Promise.all(frames.map(async ({ seq, ts }) => makeFrame(await jpeg(seq), { seq, timestamp: ts, peer: '127.0.0.1:9' })))
  await withTimeout(pipeline(fromItems(await make()), avi({ dir: join(dir, 'avi'), segment: 15_000 })), 30_000, 'avi')
  await withTimeout(
    pipeline(fromItems(await make()), files({ dir: join(dir, 'files'), pattern: '{date}_{time}/frame-%d.{ext}', segment: 15_000 })),
    30_000,
    'files',
  )
  const aviFiles = await readdir(join(dir, 'avi'))
  const folders = await readdir(join(dir, 'files'))
  // At most one new segment per half a segment of our clock: the test takes well under 7.5 s.
  t.true(aviFiles.length <= 2, aviFiles.join(', '))
  t.true(folders.length <= 2, folders.join(', '))
  t.true([...aviFiles, ...folders].every((n) => !/NaN/.test(n)))
  // Frames made here (no peer) still follow their timestamps: a file per jump.
  const local = hostile(6).map((ts, i) => ({ seq: i, ts: Number.isFinite(ts) ? ts : Date.now() }))
  const own = await Promise.all(local.map(async ({ seq, ts }) => makeFrame(await jpeg(seq), { seq, timestamp: ts })))
  await withTimeout(pipeline(fromItems(own), avi({ dir: join(dir, 'own'), segment: 15_000 })), 30_000, 'avi, local frames')
  t.is((await readdir(join(dir, 'own'))).length, 6)
  figure(t, '9-recorder', { frames: 20, aviFiles: aviFiles.length, fileFolders: folders.length })
})
