// The files source, the files sink and the file-name patterns they share.

import test from 'ava'
import { testProp, fc } from '@fast-check/ava'
import { copyFile, mkdir, readdir, readFile, rename, stat, symlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import sharp from 'sharp'
import { FramePipeError } from '../../src/core/errors.js'
import { makeFrame, type Frame, type FrameFormat } from '../../src/core/frame.js'
import { compilePattern, type NameVars } from '../../src/media/naming.js'
import { pipeline } from '../../src/core/pipeline.js'
import { files as filesSink } from '../../src/sinks/files.js'
import { listImages } from '../../src/media/files-source.js'
import { files as filesSource } from '../../src/sources/files.js'
import { stageInfo } from '../../src/core/stage.js'
import { collect, fromItems, run, tempDir, withTimeout } from '../helpers/index.js'

const FIXTURES = fileURLToPath(new URL('../../fixtures/images/', import.meta.url))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function tmp(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  return dir
}

/** A small image whose width tells which file it came from. */
function image(width: number, format: 'jpeg' | 'png' | 'webp'): Promise<Buffer> {
  return sharp({ create: { width, height: 8, channels: 3, background: { r: width, g: 0, b: 0 } } })
    .toFormat(format)
    .toBuffer()
}

/** A directory with frame-1.jpg, frame-2.jpg, frame-10.jpg, frame-3.png, shot.webp and things that are not images. */
async function imageDir(t: Parameters<typeof tmp>[0]): Promise<string> {
  const dir = await tmp(t)
  await writeFile(join(dir, 'frame-10.jpg'), await image(20, 'jpeg'))
  await writeFile(join(dir, 'frame-2.jpg'), await image(12, 'jpeg'))
  await writeFile(join(dir, 'frame-1.jpg'), await image(11, 'jpeg'))
  await writeFile(join(dir, 'frame-3.png'), await image(13, 'png'))
  await writeFile(join(dir, 'shot.WEBP'), await image(30, 'webp'))
  await writeFile(join(dir, 'notes.txt'), 'not an image')
  await writeFile(join(dir, '.frame-4.jpg.123-0.tmp'), 'a sink temporary')
  await writeFile(join(dir, '.hidden.jpg'), await image(99, 'jpeg'))
  await mkdir(join(dir, 'sub.jpg'))
  return dir
}

// ---------------------------------------------------------------------------
// files source

test('a directory gives its images in natural order, described from their headers', async (t) => {
  const dir = await imageDir(t)
  const src = filesSource({ path: dir })
  const frames = await withTimeout(collect<Frame>(src), 5000, 'files')
  t.deepEqual(
    frames.map((f) => [f.width, f.format, f.seq]),
    [
      [11, 'jpeg', 0],
      [12, 'jpeg', 1],
      [13, 'png', 2],
      [20, 'jpeg', 3],
      [30, 'webp', 4],
    ],
  )
  for (const f of frames) {
    t.is(f.height, 8)
    t.is(f.channels, 3)
  }
  t.true((await readFile(join(dir, 'frame-10.jpg'))).equals(frames[3]!.data))
  t.like(stageInfo(src)!.counters, { frames: 5, bytes: frames.reduce((n, f) => n + f.data.length, 0) })
})

test('the shared fixtures come in natural order: 1, 2, 3, 10, then pattern.png, pattern.webp', async (t) => {
  const frames = await withTimeout(collect<Frame>(filesSource({ path: FIXTURES })), 5000, 'files')
  t.deepEqual(
    frames.map((f) => f.format),
    ['jpeg', 'jpeg', 'jpeg', 'jpeg', 'png', 'webp'],
  )
  const names = (await listImages(FIXTURES)).map((p) => p.slice(FIXTURES.length))
  t.deepEqual(names, ['frame-1.jpg', 'frame-2.jpg', 'frame-3.jpg', 'frame-10.jpg', 'pattern.png', 'pattern.webp'])
  for (const f of frames) t.like(f, { width: 64, height: 48 })
})

test('a glob matches * and ? in the file name', async (t) => {
  const dir = await imageDir(t)
  const widths = async (path: string) => (await collect<Frame>(filesSource({ path }))).map((f) => f.width)
  t.deepEqual(await widths(join(dir, 'frame-*.jpg')), [11, 12, 20])
  t.deepEqual(await widths(join(dir, 'frame-?.*')), [11, 12, 13])
  // Like a shell, '*' does not match dot-files; a pattern that starts with '.' does.
  t.deepEqual(await widths(join(dir, '*.jpg')), [11, 12, 20])
  t.deepEqual(await widths(join(dir, '.hid*')), [99])
  // A glob picks exactly what it names, images or not.
  const txt = await collect<Frame>(filesSource({ path: join(dir, '*.txt') }))
  t.like(txt[0], { format: 'unknown', width: 0, height: 0 })
})

test('a single file path gives that file', async (t) => {
  const dir = await imageDir(t)
  const frames = await collect<Frame>(filesSource({ path: join(dir, 'frame-3.png') }))
  t.deepEqual(
    frames.map((f) => f.width),
    [13],
  )
})

test('loop=true starts again after the last file, seq keeps running', async (t) => {
  const dir = await imageDir(t)
  const src = filesSource({ path: join(dir, 'frame-*.jpg'), loop: true })
  const frames: Frame[] = []
  await withTimeout(
    (async () => {
      for await (const f of src) {
        frames.push(f as Frame)
        if (frames.length === 7) src.stop()
      }
    })(),
    5000,
    'looping files',
  )
  t.true(frames.length >= 7 && frames.length <= 9)
  t.deepEqual(
    frames.slice(0, 7).map((f) => f.width),
    [11, 12, 20, 11, 12, 20, 11],
  )
  t.deepEqual(
    frames.map((f) => f.seq),
    frames.map((_, i) => i),
  )
})

test('no match is one clear error', async (t) => {
  const dir = await imageDir(t)
  const empty = await tmp(t)
  for (const path of [join(dir, 'nothing-*.jpg'), join(dir, 'missing'), empty, join(dir, 'missing-dir', '*.jpg')]) {
    const err = await t.throwsAsync(collect(filesSource({ path })), { instanceOf: FramePipeError })
    t.is(err!.code, 'ERR_IO')
    t.is(err!.message, `files: no images match '${path}'`)
  }
})

test('wildcards in a directory part are refused', async (t) => {
  const err = await t.throwsAsync(collect(filesSource({ path: 'shots-*/a.jpg' })), { instanceOf: FramePipeError })
  t.is(err!.code, 'ERR_INVALID_OPTION')
  for (const path of ['shots-*/a.jpg', 'a/**/b.jpg', 'a/{b,c/d}.jpg', '[ab]/x.jpg']) {
    const e = await t.throwsAsync(collect(filesSource({ path })), { instanceOf: FramePipeError })
    t.is(
      e!.message,
      `files: unsupported pattern '${path}': wildcards are only supported in the file-name part of path (e.g. 'shots/cam-*.jpg')`,
      path,
    )
  }
})

test('globs are bash globs (picomatch): [0-4], [!…], {a,b}, and a path that exists is taken literally', async (t) => {
  const dir = await imageDir(t)
  const widths = async (path: string) => (await collect<Frame>(filesSource({ path }))).map((f) => f.width)
  // frame-1.jpg (11), frame-2.jpg (12), frame-10.jpg (20), frame-3.png (13), shot.WEBP (30)
  t.deepEqual(await widths(join(dir, 'frame-[0-2].jpg')), [11, 12])
  t.deepEqual(await widths(join(dir, 'frame-[!1].*')), [12, 13])
  t.deepEqual(await widths(join(dir, 'frame-{2,10}.jpg')), [12, 20])
  t.deepEqual(await widths(join(dir, 'frame-{1..3}.*')), [11, 12, 13])
  t.deepEqual(await widths(join(dir, 'frame-[[:digit:]][[:digit:]].jpg')), [20])
  t.deepEqual(await widths(join(dir, '*.{png,WEBP}')), [13, 30])
  // A file whose name looks like a glob is that file when it exists.
  await copyFile(join(dir, 'frame-2.jpg'), join(dir, 'odd[1].jpg'))
  t.deepEqual(await widths(join(dir, 'odd[1].jpg')), [12])
})

test('path is required', (t) => {
  const err = t.throws(() => filesSource({} as { path: string }), { instanceOf: FramePipeError })
  t.is(err.code, 'ERR_INVALID_OPTION')
})

test('an unreadable file is ERR_IO naming the file', async (t) => {
  const dir = await imageDir(t)
  const dangling = join(dir, 'frame-5.jpg')
  await symlink(join(dir, 'gone.jpg'), dangling)
  const err = await t.throwsAsync(collect(filesSource({ path: join(dir, 'frame-*.jpg') })), { instanceOf: FramePipeError })
  t.is(err!.code, 'ERR_IO')
  t.true(err!.message.startsWith(`files: cannot read '${dangling}'`), err!.message)
})

test('a file named like an image with a broken header is ERR_DECODE naming it', async (t) => {
  const dir = await tmp(t)
  await writeFile(join(dir, 'a.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0, 1, 2]))
  const err = await t.throwsAsync(collect(filesSource({ path: dir })), { instanceOf: FramePipeError })
  t.is(err!.code, 'ERR_DECODE')
  t.true(err!.message.includes(join(dir, 'a.jpg')))
})

test('files are read only when downstream asks', async (t) => {
  const dir = await imageDir(t)
  const src = filesSource({ path: dir, loop: true })
  await sleep(30)
  t.is(stageInfo(src)!.counters.frames, 0, 'nothing read before anyone reads')
  let consumed = 0
  for await (const _ of src) {
    await sleep(5)
    if (++consumed === 4) break
  }
  t.true(stageInfo(src)!.counters.frames <= consumed + 2)
})

test.serial('fps paces the files: 4 files at 40 fps take at least 60 ms', async (t) => {
  const dir = await imageDir(t)
  const start = performance.now()
  const frames = await collect<Frame>(filesSource({ path: join(dir, 'frame-*'), fps: 40 }))
  t.is(frames.length, 4)
  t.true(performance.now() - start >= 60)
})

test('count stops after that many frames, looping or not', async (t) => {
  const dir = await imageDir(t)
  t.is((await collect<Frame>(filesSource({ path: dir, count: 2 }))).length, 2)
  const looped = await withTimeout(collect<Frame>(filesSource({ path: join(dir, 'frame-*.jpg'), loop: true, count: 7 })), 5000, 'files')
  t.deepEqual(
    looped.map((f) => f.width),
    [11, 12, 20, 11, 12, 20, 11],
  )
})

/** Raw RGB frames of 4x2 pixels, every byte of frame i equal to base + i. */
function rawFrames(count: number, base: number): Buffer {
  return Buffer.concat(Array.from({ length: count }, (_, i) => Buffer.alloc(4 * 2 * 3, base + i)))
}

test('raw input: width/height/channels read a file frame after frame, in order across files', async (t) => {
  const dir = await tmp(t)
  await writeFile(join(dir, 'a.rgb'), rawFrames(3, 10))
  await writeFile(join(dir, 'b.rgb'), rawFrames(2, 20))
  const frames = await withTimeout(collect<Frame>(filesSource({ path: dir, width: 4, height: 2, channels: 3 })), 5000, 'raw')
  t.deepEqual(
    frames.map((f) => [f.format, f.width, f.height, f.channels, f.seq, f.data.length, f.data[0]]),
    [
      ['raw', 4, 2, 3, 0, 24, 10],
      ['raw', 4, 2, 3, 1, 24, 11],
      ['raw', 4, 2, 3, 2, 24, 12],
      ['raw', 4, 2, 3, 3, 24, 20],
      ['raw', 4, 2, 3, 4, 24, 21],
    ],
  )
  t.true(frames.every((f) => f.data.every((v) => v === f.data[0])))
  const looped = await withTimeout(
    collect<Frame>(filesSource({ path: join(dir, 'a.rgb'), width: 4, height: 2, loop: true, count: 7 })),
    5000,
    'raw loop',
  )
  t.deepEqual(
    looped.map((f) => f.data[0]),
    [10, 11, 12, 10, 11, 12, 10],
  )
})

test('raw input: a file of one frame is a still picture, read once while it is unchanged, again when it changes', async (t) => {
  const dir = await tmp(t)
  const file = join(dir, 'still.gray')
  await writeFile(file, Buffer.alloc(6, 7))
  // 10 fps: frames further apart than the source's recheck interval (50 ms), so each one looks for a change.
  const src = filesSource({ path: file, width: 3, height: 2, channels: 1, loop: true, count: 6, fps: 10 })
  const frames: Frame[] = []
  for await (const f of src) {
    frames.push(f as Frame)
    if (frames.length === 3) {
      // Replaced in one step (rename), with a modification time apart from the first
      // write's however coarse the file system's clock: the source sees one change.
      const next = join(dir, 'next.tmp')
      await writeFile(next, Buffer.alloc(6, 9))
      await utimes(next, new Date(), new Date(Date.now() + 5000))
      await rename(next, file)
    }
  }
  t.deepEqual(
    frames.map((f) => [f.seq, f.channels]),
    [0, 1, 2, 3, 4, 5].map((seq) => [seq, 1]),
  )
  // Frame 3 may have been made before the change: the source keeps one frame ready.
  t.deepEqual(
    frames.map((f) => f.data[0]).filter((_, i) => i !== 3),
    [7, 7, 7, 9, 9],
  )
  t.is(frames[0]!.data, frames[2]!.data, 'one buffer for the unchanged picture')
  t.is(frames[4]!.data, frames[5]!.data)
})

test('a looped JPEG is described from its header once while unchanged, and again when it changes', async (t) => {
  const dir = await tmp(t)
  const file = join(dir, 'still.jpg')
  await writeFile(file, await image(32, 'jpeg'))
  // 10 fps: frames further apart than the source's recheck interval (50 ms), so each one looks for a change.
  const src = filesSource({ path: file, loop: true, count: 6, fps: 10 })
  const frames: Frame[] = []
  for await (const f of src) {
    frames.push(f as Frame)
    if (frames.length === 3) {
      // Replaced in one step, with a modification time apart from the first write's.
      const next = join(dir, 'next.tmp')
      await writeFile(next, await image(48, 'jpeg'))
      await utimes(next, new Date(), new Date(Date.now() + 5000))
      await rename(next, file)
    }
  }
  t.deepEqual(
    frames.map((f) => [f.seq, f.format, f.channels]),
    [0, 1, 2, 3, 4, 5].map((seq) => [seq, 'jpeg', 3]),
  )
  // Frame 3 may have been made before the change: the source keeps one frame ready.
  t.deepEqual(
    frames.map((f) => f.width).filter((_, i) => i !== 3),
    [32, 32, 32, 48, 48],
  )
  t.is(frames[0]!.data, frames[2]!.data, 'one buffer for the unchanged picture')
})

test('raw input: a file that is not whole frames is ERR_BAD_FRAME with the numbers; width without height is refused', async (t) => {
  const dir = await tmp(t)
  const file = join(dir, 'odd.rgb')
  await writeFile(file, Buffer.alloc(50))
  const err = await t.throwsAsync(collect(filesSource({ path: file, width: 4, height: 2 })), { instanceOf: FramePipeError })
  t.like(err, { code: 'ERR_BAD_FRAME', message: `files: '${file}' is 50 bytes, not a whole number of 4x2x3 = 24-byte raw frames` })
  t.throws(() => filesSource({ path: file, width: 4 }), {
    instanceOf: FramePipeError,
    message: 'files: raw input needs both width and height, received 4x0',
  })
})

// ---------------------------------------------------------------------------
// files sink

function frameOf(format: FrameFormat, seq: number, size = 16): Frame {
  const data = Buffer.alloc(size, seq & 0xff)
  if (format === 'jpeg') data.set([0xff, 0xd8, 0xff])
  return makeFrame(data, { format, seq, width: 4, height: 4, channels: 1 })
}

test('default pattern frame-%06d.{ext}; each frame is passed on, the same object, after its file', async (t) => {
  const dir = join(await tmp(t), 'a', 'b')
  const input = [frameOf('jpeg', 7), frameOf('jpeg', 8), frameOf('jpeg', 9)]
  const sink = filesSink({ dir })
  const out = await withTimeout(run<Frame>(fromItems(input), sink), 5000, 'files sink')
  t.is(out.length, 3)
  out.forEach((f, i) => t.is(f, input[i]))
  t.deepEqual((await readdir(dir)).sort(), ['frame-000000.jpg', 'frame-000001.jpg', 'frame-000002.jpg'])
  t.true((await readFile(join(dir, 'frame-000001.jpg'))).equals(input[1]!.data))
  t.like(stageInfo(sink)!.counters, { frames: 3, bytes: 48 })
})

test('{seq}, {ext} by format, %0Nd from start, subdirectories', async (t) => {
  const dir = await tmp(t)
  const formats: FrameFormat[] = ['jpeg', 'png', 'webp', 'raw', 'unknown']
  await run(fromItems(formats.map((f, i) => frameOf(f, 100 + i))), filesSink({ dir, pattern: 'cam/{seq}-%03d.{ext}', start: 5 }))
  t.deepEqual((await readdir(join(dir, 'cam'))).sort(), ['100-005.jpg', '101-006.png', '102-007.webp', '103-008.raw', '104-009.bin'])
})

test('an unread sink at the end of a pipeline does not stall', async (t) => {
  const dir = await tmp(t)
  const input = Array.from({ length: 40 }, (_, i) => frameOf('png', i))
  await withTimeout(pipeline(fromItems(input), filesSink({ dir, pattern: '%d.{ext}' })), 10_000, 'pipeline')
  t.is((await readdir(dir)).length, 40)
})

test('files are renamed into place: a watcher sees whole files only, no temporaries remain', async (t) => {
  const dir = await tmp(t)
  const size = 4 * 2 ** 20
  const input = Array.from({ length: 6 }, (_, i) => frameOf('raw', i, size))
  const seenSizes = new Set<number>()
  let writing = true
  const watch = (async () => {
    while (writing) {
      for (let i = 0; i < input.length; i++) {
        try {
          seenSizes.add((await stat(join(dir, `f${i}.raw`))).size)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        }
      }
    }
  })()
  await run(fromItems(input), filesSink({ dir, pattern: 'f%d.{ext}' }))
  writing = false
  await watch
  t.deepEqual(
    [...seenSizes].filter((s) => s !== size),
    [],
  )
  t.deepEqual(
    (await readdir(dir)).sort(),
    input.map((_, i) => `f${i}.raw`),
  )
})

test('overwrite=false refuses an existing file with ERR_IO naming it and leaves it alone', async (t) => {
  const dir = await tmp(t)
  await writeFile(join(dir, 'frame-000001.png'), 'keep me')
  const err = await t.throwsAsync(run(fromItems([frameOf('png', 0), frameOf('png', 1)]), filesSink({ dir, overwrite: false })), {
    instanceOf: FramePipeError,
  })
  t.is(err!.code, 'ERR_IO')
  t.is(err!.message, `files: '${join(dir, 'frame-000001.png')}' already exists and overwrite is false`)
  t.is(await readFile(join(dir, 'frame-000001.png'), 'utf8'), 'keep me')
  t.deepEqual((await readdir(dir)).sort(), ['frame-000000.png', 'frame-000001.png'])
})

test('overwrite=true (default) replaces an existing file', async (t) => {
  const dir = await tmp(t)
  await writeFile(join(dir, 'latest.png'), 'old')
  const input = [frameOf('png', 1), frameOf('png', 2)]
  await run(fromItems(input), filesSink({ dir, pattern: 'latest.{ext}' }))
  t.true((await readFile(join(dir, 'latest.png'))).equals(input[1]!.data))
  t.deepEqual(await readdir(dir), ['latest.png'])
})

test('a directory that cannot be made is ERR_IO', async (t) => {
  const dir = await tmp(t)
  await writeFile(join(dir, 'file'), 'x')
  const err = await t.throwsAsync(run(fromItems([frameOf('png', 0)]), filesSink({ dir: join(dir, 'file', 'sub') })), {
    instanceOf: FramePipeError,
  })
  t.is(err!.code, 'ERR_IO')
  t.true(err!.message.includes(join(dir, 'file', 'sub')))
})

test('what is not a Frame is ERR_BAD_FRAME', async (t) => {
  const dir = await tmp(t)
  const err = await t.throwsAsync(run(fromItems([Buffer.from('bytes')]), filesSink({ dir })), { instanceOf: FramePipeError })
  t.is(err!.code, 'ERR_BAD_FRAME')
})

test('destroy during a write waits for it: no temporary file remains', async (t) => {
  const dir = await tmp(t)
  const sink = filesSink({ dir, pattern: '%d.{ext}' })
  const passed: Frame[] = []
  sink.on('data', (f: Frame) => passed.push(f))
  sink.write(frameOf('raw', 0))
  while (passed.length === 0) await sleep(1)
  // The stream is open and idle: this write starts at once, and destroy comes while it runs.
  sink.write(frameOf('raw', 1, 64 * 2 ** 20))
  sink.destroy()
  await new Promise((resolve) => sink.once('close', resolve))
  t.deepEqual(
    (await readdir(dir)).filter((n) => n.endsWith('.tmp')),
    [],
  )
})

test('a bad pattern is refused when the stage is made', (t) => {
  for (const pattern of ['{foo}.jpg', 'a-%s.jpg', '{seq', '100%.jpg', '', '{constructor}']) {
    const err = t.throws(() => filesSink({ pattern }), { instanceOf: FramePipeError }, pattern)
    t.is(err.code, 'ERR_INVALID_OPTION')
    t.true(err.message.startsWith('files: '), err.message)
  }
})

test('round trip: what the sink writes, the source reads back in the same order', async (t) => {
  const dir = await tmp(t)
  const input = await Promise.all(Array.from({ length: 12 }, async (_, i) => makeFrame(await image(10 + i, 'png'), { seq: i })))
  await run(fromItems(input), filesSink({ dir, pattern: 'f-%d.{ext}' }))
  const back = await collect<Frame>(filesSource({ path: dir }))
  t.deepEqual(
    back.map((f) => f.data),
    input.map((f) => f.data),
  )
  t.deepEqual(
    back.map((f) => f.width),
    input.map((_, i) => 10 + i),
  )
})

// ---------------------------------------------------------------------------
// naming

const vars = (index: number, seq = 0, ext = 'jpg'): NameVars => ({ index, seq, ext, timestamp: 0 })

test('pattern tokens', (t) => {
  t.is(compilePattern('frame-%06d.{ext}')(vars(42)), 'frame-000042.jpg')
  t.is(compilePattern('%d')(vars(1234567)), '1234567')
  t.is(compilePattern('%03d')(vars(123456)), '123456', 'padding never truncates')
  t.is(compilePattern('{seq}_%%_%d.{ext}')(vars(3, 99, 'png')), '99_%_3.png')
  t.is(compilePattern('plain.jpg')(vars(5)), 'plain.jpg')
})

const piece = fc.oneof(
  fc.record({
    kind: fc.constant('literal' as const),
    text: fc.string({ unit: fc.constantFrom('a', 'b', '-', '_', '.', '/', '}', 'é', '0'), minLength: 1, maxLength: 5 }),
  }),
  fc.record({ kind: fc.constant('index' as const), width: fc.integer({ min: 0, max: 12 }) }),
  fc.constant({ kind: 'seq' as const }),
  fc.constant({ kind: 'ext' as const }),
  fc.constant({ kind: 'percent' as const }),
)
type Piece = typeof piece extends fc.Arbitrary<infer P> ? P : never

testProp(
  'a pattern expands piece by piece like a reference printf',
  [fc.array(piece, { minLength: 1, maxLength: 8 }), fc.nat(), fc.nat(), fc.constantFrom('jpg', 'png', 'bin')],
  (t, pieces: Piece[], index, seq, ext) => {
    let pattern = ''
    let expected = ''
    for (const p of pieces) {
      if (p.kind === 'literal') {
        pattern += p.text
        expected += p.text
      } else if (p.kind === 'index') {
        pattern += p.width ? `%0${p.width}d` : '%d'
        expected += String(index).padStart(p.width, '0')
      } else if (p.kind === 'seq') {
        pattern += '{seq}'
        expected += String(seq)
      } else if (p.kind === 'ext') {
        pattern += '{ext}'
        expected += ext
      } else {
        pattern += '%%'
        expected += '%'
      }
    }
    t.is(compilePattern(pattern)({ index, seq, ext, timestamp: 0 }), expected)
  },
)

testProp(
  'a % not followed by d, 0Nd or % is refused',
  [fc.string({ maxLength: 4 }), fc.constantFrom('%', '%x', '%0d', '%5d', '%-3d', '%0')],
  (t, prefix, bad) => {
    const clean = prefix.replace(/[%{]/g, '')
    const err = t.throws(() => compilePattern(clean + bad), { instanceOf: FramePipeError })
    t.is(err!.code, 'ERR_INVALID_OPTION')
  },
)

// ---------------------------------------------------------------------------
// files sink: time tokens and segments (seed 004's recorder rotates every 15 s)

const localAt = (h: number, m: number, s: number, ms = 0) => new Date(2024, 2, 1, h, m, s, ms).getTime()
function stamped(timestamps: number[]): Frame[] {
  return timestamps.map((timestamp, seq) => ({ ...frameOf('jpeg', seq), timestamp }))
}
/** Every file under dir, as relative paths. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const path of await readdir(dir, { recursive: true })) {
    if ((await stat(join(dir, path))).isFile()) out.push(path)
  }
  return out.sort()
}

test('segment=15s: each segment in its own folder named by its start, the counter restarts per segment', async (t) => {
  const dir = await tmp(t)
  const base = localAt(12, 0, 0, 400)
  const input = stamped([base, base + 7000, base + 14_999, base + 15_000, base + 20_000, base + 31_000])
  const sink = filesSink({ dir, pattern: '{date}_{time}/frame-%06d.{ext}', segment: 15_000 })
  await run(fromItems(input), sink)
  t.deepEqual(await tree(dir), [
    '2024-03-01_12-00-00/frame-000000.jpg',
    '2024-03-01_12-00-00/frame-000001.jpg',
    '2024-03-01_12-00-00/frame-000002.jpg',
    '2024-03-01_12-00-15/frame-000000.jpg',
    '2024-03-01_12-00-15/frame-000001.jpg',
    '2024-03-01_12-00-31/frame-000000.jpg',
  ])
  t.true((await readFile(join(dir, '2024-03-01_12-00-15/frame-000001.jpg'))).equals(input[4]!.data))
  t.like(stageInfo(sink)!.counters, { frames: 6, segments: 3 })
})

test('segments starting in the same second do not overwrite each other: the counter continues', async (t) => {
  const dir = await tmp(t)
  const base = localAt(12, 0, 0, 0)
  const input = stamped([base, base + 300, base + 600, base + 900, base + 1200])
  await run(fromItems(input), filesSink({ dir, pattern: 'camera{time}/frame-%d.{ext}', segment: 300 }))
  t.deepEqual(await tree(dir), [
    'camera12-00-00/frame-0.jpg',
    'camera12-00-00/frame-1.jpg',
    'camera12-00-00/frame-2.jpg',
    'camera12-00-00/frame-3.jpg',
    'camera12-00-01/frame-0.jpg',
  ])
  for (const [i, name] of ['camera12-00-00/frame-3.jpg', 'camera12-00-01/frame-0.jpg'].entries()) {
    t.true((await readFile(join(dir, name))).equals(input[3 + i]!.data))
  }
})

test("without segment, time tokens use each frame's own timestamp; {ms} names are the capture times", async (t) => {
  const dir = await tmp(t)
  const base = localAt(23, 59, 59, 500)
  const input = stamped([base, base + 250.75, base + 600])
  await run(fromItems(input), filesSink({ dir, pattern: '{Y}{M}{D}/{h}{m}{s}_{ms}.{ext}' }))
  const ms = (x: number) => Math.floor(x)
  t.deepEqual(
    await tree(dir),
    [`20240301/235959_${ms(base)}.jpg`, `20240301/235959_${ms(base + 250.75)}.jpg`, `20240302/000000_${ms(base + 600)}.jpg`].sort(),
  )
})

test('segment must be a duration >= 0', (t) => {
  const err = t.throws(() => filesSink({ segment: -1 }), { instanceOf: FramePipeError })
  t.is(err!.message, 'files: expected duration >= 0s for segment but received -1ms')
})
