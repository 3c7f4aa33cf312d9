// Is a buffer a whole JPEG? The seeds' UDP wire carries no sequence numbers,
// so the image itself is the last line of defence against lost, repeated or
// foreign chunks: SOI first, EOI last and nowhere else, every marker segment
// inside the buffer, and in entropy-coded data every 0xFF followed by a stuffed
// 0x00, a restart marker or fill. One pass, no decode, no allocation.

const MARKER = 0xff
const SOI = 0xd8
const EOI = 0xd9
const SOS = 0xda
const TEM = 0x01

function isRestart(m: number): boolean {
  return m >= 0xd0 && m <= 0xd7
}

export function isCompleteJpeg(b: Buffer): boolean {
  const n = b.length
  if (n < 4 || b[0] !== MARKER || b[1] !== SOI || b[n - 2] !== MARKER || b[n - 1] !== EOI) return false
  let pos = 2
  for (;;) {
    if (pos + 1 >= n || b[pos] !== MARKER) return false
    const m = b[pos + 1]!
    if (m === MARKER) {
      // Fill bytes before a marker.
      pos++
      continue
    }
    if (m === EOI) return pos + 2 === n
    if (m === SOI || m === 0x00) return false
    if (m === TEM || isRestart(m)) {
      pos += 2
      continue
    }
    if (pos + 3 >= n) return false
    const length = b.readUInt16BE(pos + 2)
    if (length < 2 || pos + 2 + length > n) return false
    pos += 2 + length
    if (m === SOS) {
      const next = skipEntropyData(b, pos)
      if (next < 0) return false
      pos = next
    }
  }
}

/** Position of the marker that ends the scan starting at `pos`, or -1 when the buffer ends first. */
function skipEntropyData(b: Buffer, pos: number): number {
  const n = b.length
  for (;;) {
    const ff = b.indexOf(MARKER, pos)
    if (ff < 0 || ff + 1 >= n) return -1
    const next = b[ff + 1]!
    if (next === 0x00 || isRestart(next)) pos = ff + 2
    else if (next === MARKER) pos = ff + 1
    else return ff
  }
}
