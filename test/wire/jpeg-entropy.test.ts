// isCleanJpeg: every real JPEG passes (sizes, qualities, subsampling, grey,
// optimised tables, restart markers, ffmpeg's encoder), and chunks swapped,
// repeated or lost inside the entropy-coded data are caught, where the marker
// walk (isCompleteJpeg) lets almost all of them through.

import test from 'ava'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import sharp from 'sharp'
import { isCleanJpeg, isCompleteJpeg } from '../../src/wire/jpeg.js'
import { prng, tempDir } from '../helpers/index.js'
import { FFMPEG } from '../helpers/media.js'

const run = promisify(execFile)

function noisy(w: number, h: number, seed: number): Buffer {
  const rand = prng(seed)
  const px = Buffer.alloc(w * h * 3)
  for (let i = 0; i < px.length; i++) px[i] = (((i / 3) % w) * 0.7 + rand() * 60) & 0xff
  return px
}

test('real JPEGs pass: sizes, qualities, subsampling, grey and optimised tables', async (t) => {
  let n = 0
  for (const [w, h] of [
    [1, 1],
    [8, 8],
    [17, 13],
    [33, 65],
    [640, 480],
  ] as const) {
    const px = noisy(w, h, w + h)
    for (const quality of [10, 80, 100]) {
      for (const chromaSubsampling of ['4:2:0', '4:4:4']) {
        for (const optimiseCoding of [false, true]) {
          const img = sharp(px, { raw: { width: w, height: h, channels: 3 } })
          const color = await img.clone().jpeg({ quality, chromaSubsampling, optimiseCoding }).toBuffer()
          const grey = await img.clone().greyscale().jpeg({ quality, optimiseCoding }).toBuffer()
          t.true(isCleanJpeg(color), `${w}x${h} q${quality} ${chromaSubsampling} optimise=${optimiseCoding}`)
          t.true(isCleanJpeg(grey), `${w}x${h} q${quality} grey optimise=${optimiseCoding}`)
          n += 2
        }
      }
    }
  }
  t.log(`${n} JPEGs`)
})

const jpegtran = existsSync('/usr/bin/jpegtran') ? '/usr/bin/jpegtran' : undefined
;(jpegtran ? test : test.skip)('restart markers: valid ones pass; every chunk swapped or repeated is caught', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const src = join(dir, 'in.jpg')
  await writeFile(
    src,
    await sharp(noisy(320, 240, 3), { raw: { width: 320, height: 240, channels: 3 } })
      .jpeg({ quality: 85 })
      .toBuffer(),
  )
  for (const interval of ['1', '2B', '7B']) {
    const { stdout } = await run(jpegtran!, ['-restart', interval, src], { encoding: 'buffer', maxBuffer: 1 << 24 })
    t.true(isCleanJpeg(stdout), `-restart ${interval}`)
  }
  const { stdout: img } = await run(jpegtran!, ['-restart', '2B', src], { encoding: 'buffer', maxBuffer: 1 << 24 })
  let tried = 0
  for (let i = 1; (i + 2) * 1024 <= img.length; i++) {
    const swapped = Buffer.from(img)
    img.copy(swapped, i * 1024, (i + 1) * 1024, (i + 2) * 1024)
    img.copy(swapped, (i + 1) * 1024, i * 1024, (i + 1) * 1024)
    if (!swapped.equals(img)) {
      tried++
      t.false(isCleanJpeg(swapped), `chunks ${i} and ${i + 1} swapped`)
    }
  }
  t.true(tried > 10)
})

;(FFMPEG ? test : test.skip)("ffmpeg's MJPEG encoder: 4:2:0, 4:2:2, 4:4:4 pass", async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  for (const pix of ['yuvj420p', 'yuvj422p', 'yuvj444p']) {
    const out = join(dir, `${pix}.jpg`)
    await run(FFMPEG!, [
      '-v',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=320x240:rate=1',
      '-frames:v',
      '1',
      '-pix_fmt',
      pix,
      '-c:v',
      'mjpeg',
      out,
    ])
    t.true(isCleanJpeg(await readFile(out)), pix)
  }
})

test('swapped, repeated and lost 1024-byte chunks: the marker walk misses most, the entropy walk almost none', async (t) => {
  const img = await sharp(noisy(640, 480, 7), { raw: { width: 640, height: 480, channels: 3 } })
    .jpeg({ quality: 80 })
    .toBuffer()
  t.true(isCleanJpeg(img))
  let cases = 0
  let markers = 0
  let entropy = 0
  for (let i = 1; (i + 2) * 1024 <= img.length; i++) {
    const swapped = Buffer.from(img)
    img.copy(swapped, i * 1024, (i + 1) * 1024, (i + 2) * 1024)
    img.copy(swapped, (i + 1) * 1024, i * 1024, (i + 1) * 1024)
    const repeated = Buffer.from(img)
    img.copy(repeated, (i + 1) * 1024, i * 1024, (i + 1) * 1024)
    const lost = Buffer.concat([img.subarray(0, i * 1024), img.subarray((i + 1) * 1024)])
    for (const bad of [swapped, repeated, lost]) {
      if (bad.equals(img)) continue
      cases++
      if (!isCompleteJpeg(bad)) markers++
      if (!isCleanJpeg(bad)) entropy++
    }
  }
  t.log(`${cases} damaged images: the marker walk caught ${markers}, the entropy walk ${entropy}`)
  t.true(entropy >= cases * 0.95, `entropy walk caught ${entropy} of ${cases}`)
  t.true(markers < cases / 2)
})
