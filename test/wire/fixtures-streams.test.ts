// The recorded streams in fixtures/streams/ pin the wire formats: prefix must
// still write them byte for byte and unprefix must still read them. The files
// are written only by scripts/make-stream-fixtures.ts, never by this test.

import test from 'ava'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { Frame, FrameFormat } from '../../src/core/frame.js'
import type { HeaderFormat } from '../../src/wire/headers.js'
import { prefix } from '../../src/transforms/prefix.js'
import { unprefix } from '../../src/transforms/unprefix.js'
import { fromItems, rechunk, run, withTimeout } from '../helpers/index.js'

interface Described {
  frames: Array<Omit<Frame, 'data'> & { payloadHex: string }>
  streams: Array<{ file: string; header: HeaderFormat; checksum: boolean; bytes: number; sha256: string }>
}

const dir = new URL('../../fixtures/streams/', import.meta.url)
const described = JSON.parse(await readFile(new URL('frames.json', dir), 'utf8')) as Described
const frames: Frame[] = described.frames.map(({ payloadHex, ...meta }) => ({ data: Buffer.from(payloadHex, 'hex'), ...meta }))

test('frames.json describes the three frames', (t) => {
  t.deepEqual(
    frames.map((f) => f.data.length),
    [0, 16, 300],
  )
  t.is(frames[1]!.data.toString(), 'hello frame-pipe')
  t.deepEqual([...frames[2]!.data.subarray(0, 3)], [0xff, 0xd8, 0xff])
  t.deepEqual(
    described.streams.map((s) => s.file),
    ['u32be.bin', 'u32le.bin', 'ii.bin', 'i64le.bin', 'native.bin', 'native-crc.bin'],
  )
})

for (const s of described.streams) {
  test(`prefix writes ${s.file} byte for byte`, async (t) => {
    const file = await readFile(new URL(s.file, dir))
    t.is(file.length, s.bytes)
    t.is(createHash('sha256').update(file).digest('hex'), s.sha256)
    const packets = await withTimeout(run<Buffer[]>(fromItems(frames), prefix({ header: s.header, checksum: s.checksum })), 5000)
    t.is(Buffer.concat(packets.flat()).toString('hex'), file.toString('hex'))
  })

  test(`unprefix reads ${s.file}`, async (t) => {
    const file = await readFile(new URL(s.file, dir))
    const want =
      s.header === 'native'
        ? frames.map((f) => ({ ...f, data: f.data.toString('hex') }))
        : frames.map((f, i) => ({
            data: f.data.toString('hex'),
            seq: i,
            width: 0,
            height: 0,
            channels: 0,
            format: (['unknown', 'unknown', 'jpeg'] as FrameFormat[])[i],
          }))
    for (const chunks of [[file], rechunk(file, 7, 1), rechunk(file, 7, 50)]) {
      // The fixtures' timestamps are from 2023: taken as sent (maxClockSkew=0), this test is about the wire.
      const got = await withTimeout(run<Frame>(fromItems(chunks), unprefix({ header: s.header, maxClockSkew: 0 })), 5000)
      t.deepEqual(
        got.map((f) => {
          const { data, timestamp, ...meta } = f
          return s.header === 'native' ? { ...meta, timestamp, data: data.toString('hex') } : { ...meta, data: data.toString('hex') }
        }),
        want,
      )
    }
  })
}

// header=auto on the recorded streams: native is recognised by its magic;
// the others carry 'hello frame-pipe', which is not an image, so auto must
// refuse to guess (their lengths fit several formats) rather than pick one.
for (const s of described.streams) {
  test(`unprefix header=auto on ${s.file}`, async (t) => {
    const file = await readFile(new URL(s.file, dir))
    for (const chunks of [[file], rechunk(file, 7, 1)]) {
      const run1 = run<Frame>(fromItems(chunks), unprefix({ header: 'auto' }))
      if (s.header === 'native') {
        const got = await withTimeout(run1, 5000)
        t.deepEqual(
          got.map((f) => f.data.toString('hex')),
          frames.map((f) => f.data.toString('hex')),
        )
        t.deepEqual(
          got.map((f) => f.seq),
          frames.map((f) => f.seq),
        )
      } else {
        const err = await t.throwsAsync(withTimeout(run1, 5000))
        t.like(err, { code: 'ERR_BAD_HEADER' })
        t.regex(err!.message, /^unprefix: header=auto cannot recognise .*; give header= explicitly$/)
      }
    }
  })
}
