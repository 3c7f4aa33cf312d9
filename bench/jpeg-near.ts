// Test pictures for the benchmarks: a real JPEG of about a given size, as a
// camera would send it (a smooth background with sensor-like noise).

import sharp from 'sharp'

/**
 * A width×height JPEG whose size is nearest `target` bytes, its quality
 * found by bisection; with `atMost`, the largest one not over `target` (for
 * a frame that must fit one datagram).
 */
export async function jpegNear(width: number, height: number, target: number, o: { atMost?: boolean } = {}): Promise<Buffer> {
  const raw = await sharp({
    create: { width, height, channels: 3, background: { r: 90, g: 120, b: 200 }, noise: { type: 'gaussian', mean: 128, sigma: 35 } },
  })
    .raw()
    .toBuffer()
  let best: Buffer | undefined
  let lo = 1
  let hi = 100
  while (lo <= hi) {
    const q = (lo + hi) >> 1
    const jpeg = await sharp(raw, { raw: { width, height, channels: 3 } })
      .jpeg({ quality: q })
      .toBuffer()
    const fits = !o.atMost || jpeg.length <= target
    if (fits && (!best || Math.abs(jpeg.length - target) < Math.abs(best.length - target))) best = jpeg
    if (jpeg.length < target) lo = q + 1
    else hi = q - 1
  }
  if (!best) throw new Error(`no ${width}x${height} JPEG is as small as ${target} bytes`)
  return best
}
