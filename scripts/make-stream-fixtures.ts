// Writes fixtures/streams/: the same three frames sent with each header
// format, as prefix produces them, plus frames.json describing the frames.
// Run it only when the wire format changes on purpose:
//   npx tsx scripts/make-stream-fixtures.ts
// test/fixtures-streams.test.ts checks prefix and unprefix against these files
// and never rewrites them.

import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Frame } from '../src/core/frame.js'
import type { HeaderFormat } from '../src/wire/headers.js'
import { prefix } from '../src/transforms/prefix.js'

const dir = new URL('../fixtures/streams/', import.meta.url)

/** 300 bytes that sniff as JPEG: FF D8 FF, a fixed pattern, FF D9. */
function jpegLike(): Buffer {
  const b = Buffer.alloc(300)
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + 7) & 0xff
  b.set([0xff, 0xd8, 0xff], 0)
  b.set([0xff, 0xd9], b.length - 2)
  return b
}

// Sequence numbers cross the 2^32 wrap; timestamps are exact in binary.
const frames: Frame[] = [
  { data: Buffer.alloc(0), seq: 4294967295, timestamp: 1700000000000.5, width: 0, height: 0, format: 'unknown', channels: 0 },
  { data: Buffer.from('hello frame-pipe'), seq: 0, timestamp: 1700000000033.875, width: 2, height: 2, format: 'raw', channels: 4 },
  { data: jpegLike(), seq: 1, timestamp: 1700000000066.25, width: 640, height: 480, format: 'jpeg', channels: 3 },
]

const streams: Array<{ file: string; header: HeaderFormat; checksum: boolean }> = [
  { file: 'u32be.bin', header: 'u32be', checksum: false },
  { file: 'u32le.bin', header: 'u32le', checksum: false },
  { file: 'ii.bin', header: 'ii', checksum: false },
  { file: 'i64le.bin', header: 'i64le', checksum: false },
  { file: 'native.bin', header: 'native', checksum: false },
  { file: 'native-crc.bin', header: 'native', checksum: true },
]

async function prefixed(header: HeaderFormat, checksum: boolean): Promise<Buffer> {
  const parts: Buffer[] = []
  await pipeline(
    Readable.from(frames, { objectMode: true }),
    prefix({ header, checksum }),
    new Writable({
      objectMode: true,
      write(packet: Buffer[], _e, cb) {
        parts.push(...packet)
        cb()
      },
    }),
  )
  return Buffer.concat(parts)
}

await mkdir(dir, { recursive: true })
const described = []
for (const s of streams) {
  const bytes = await prefixed(s.header, s.checksum)
  await writeFile(new URL(s.file, dir), bytes)
  described.push({ ...s, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') })
  console.log(`${s.file}: ${bytes.length} bytes`)
}
const json = {
  about:
    'Three frames sent with each header format by prefix (scripts/make-stream-fixtures.ts). Non-native readers get seq 0, 1, 2 and sniffed formats; native carries the fields below.',
  frames: frames.map(({ data, ...meta }) => ({ payloadHex: data.toString('hex'), ...meta })),
  streams: described,
}
await writeFile(new URL('frames.json', dir), JSON.stringify(json, null, 2) + '\n')
console.log('frames.json written')
