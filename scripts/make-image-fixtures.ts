// Makes the small images in fixtures/images/. Run once by hand
// (`npx tsx scripts/make-image-fixtures.ts`) and commit the output: tests read
// the committed files and never regenerate them, so a change in sharp or
// libvips cannot silently change what the tests see.
//
// What is there (all 64x48, 3 channels, each under 1 KB; the directory holds
// only images, so a source reading it needs no filter):
//   frame-1.jpg, frame-2.jpg, frame-3.jpg, frame-10.jpg: JPEG q80 4:2:0, a
//     stepped gradient with a 16x16 square whose place and colour depend on
//     the number; frame-10 tests natural sorting (1, 2, 3, 10)
//   pattern.png: the same pattern for n=4
//   pattern.webp: the same pattern for n=5, WebP q80

import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import sharp from 'sharp'

const WIDTH = 64
const HEIGHT = 48
const OUT = fileURLToPath(new URL('../fixtures/images/', import.meta.url))

/**
 * A stepped gradient (4-pixel steps keep the PNG small) with a solid square
 * whose place and colour depend on `n`, so every fixture differs visibly and
 * in its bytes.
 */
function pattern(n: number): Buffer {
  const data = Buffer.alloc(WIDTH * HEIGHT * 3)
  const sx = (n * 13) % (WIDTH - 16)
  const sy = (n * 7) % (HEIGHT - 16)
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) {
      const i = (y * WIDTH + x) * 3
      const inSquare = x >= sx && x < sx + 16 && y >= sy && y < sy + 16
      data[i] = inSquare ? (n * 67) % 256 : Math.floor(x / 4) * 17
      data[i + 1] = inSquare ? (n * 151) % 256 : Math.floor(y / 4) * 21
      data[i + 2] = inSquare ? 255 - ((n * 31) % 256) : (n * 40) % 256
    }
  }
  return data
}

const raw = (n: number) => sharp(pattern(n), { raw: { width: WIDTH, height: HEIGHT, channels: 3 } })

await mkdir(OUT, { recursive: true })
// frame-10 sorts before frame-2 as text: it exists to test natural sorting.
for (const n of [1, 2, 3, 10]) {
  await writeFile(join(OUT, `frame-${n}.jpg`), await raw(n).jpeg({ quality: 80 }).toBuffer())
}
await writeFile(join(OUT, 'pattern.png'), await raw(4).png({ compressionLevel: 9 }).toBuffer())
await writeFile(join(OUT, 'pattern.webp'), await raw(5).webp({ quality: 80 }).toBuffer())
