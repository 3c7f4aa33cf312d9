// The peers bench's test picture: deterministic, with the kinds of content a
// codec meets in a camera picture (smooth gradients, fine rings whose
// frequency rises outwards, a hard-edged checker block and mild noise), so
// that JPEG costs and sizes are realistic; a flat test pattern would flatter
// every encoder. The same picture at every size: features scale with the width.

/** Raw RGB, row-major, 3 bytes per pixel. */
export function makePicture(width: number, height: number): Buffer {
  const out = Buffer.allocUnsafe(width * height * 3)
  // xorshift32 with a fixed seed: the same noise on every run and machine.
  let state = 0x9e3779b9
  const noise = (): number => {
    state ^= state << 13
    state >>>= 0
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    return (state & 0xff) / 255 - 0.5
  }
  const cx = width * 0.34
  const cy = height * 0.52
  const ringScale = width / 640
  const checkX0 = Math.round(width * 0.62)
  const checkX1 = Math.round(width * 0.92)
  const checkY0 = Math.round(height * 0.12)
  const checkY1 = Math.round(height * 0.5)
  const cell = Math.max(2, Math.round(width / 48))
  const clamp = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v))
  let o = 0
  for (let y = 0; y < height; y++) {
    const v = y / height
    for (let x = 0; x < width; x++) {
      const u = x / width
      let r = 40 + 180 * u
      let g = 30 + 190 * v
      let b = 128 + 90 * Math.sin(2 * Math.PI * (u * 1.5 + v))
      const dx = (x - cx) / ringScale
      const dy = (y - cy) / ringScale
      const d = Math.sqrt(dx * dx + dy * dy)
      if (d < 190) {
        // Rings tighten outwards (chirp) and fade at the rim.
        const ring = Math.sin((d * d) / 900) * (1 - d / 190)
        r += 70 * ring
        g += 50 * ring
        b -= 60 * ring
      }
      if (x >= checkX0 && x < checkX1 && y >= checkY0 && y < checkY1) {
        const on = ((Math.floor((x - checkX0) / cell) + Math.floor((y - checkY0) / cell)) & 1) === 1
        r = g = b = on ? 230 : 25
      }
      const n = 16 * noise()
      out[o++] = clamp(r + n)
      out[o++] = clamp(g + n * 0.8 + 6 * noise())
      out[o++] = clamp(b + n * 0.9 + 6 * noise())
    }
  }
  return out
}
