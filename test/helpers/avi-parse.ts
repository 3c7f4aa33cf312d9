// A strict AVI reader for tests: walks the RIFF tree by the sizes it states
// (as a careful player does) and checks that chunks tile their parents exactly.

export interface Chunk {
  id: string
  /** Position of the chunk header. */
  pos: number
  /** Size field: bytes of data after the 8-byte header. */
  size: number
  /** For RIFF and LIST: their form/list type and children. */
  type?: string
  children?: Chunk[]
}

export function walk(buf: Buffer, start: number, end: number): Chunk[] {
  const out: Chunk[] = []
  let pos = start
  while (pos < end) {
    if (pos + 8 > end) throw new Error(`chunk header at ${pos} runs past its parent's end ${end}`)
    const id = buf.toString('latin1', pos, pos + 4)
    const size = buf.readUInt32LE(pos + 4)
    const next = pos + 8 + size + (size & 1)
    if (pos + 8 + size > end) throw new Error(`chunk '${id}' at ${pos} (${size} bytes) runs past its parent's end ${end}`)
    const chunk: Chunk = { id, pos, size }
    if (id === 'RIFF' || id === 'LIST') {
      chunk.type = buf.toString('latin1', pos + 8, pos + 12)
      chunk.children = walk(buf, pos + 12, pos + 8 + size)
    }
    out.push(chunk)
    pos = Math.min(next, end)
  }
  return out
}

export interface ParsedAvi {
  riffs: Chunk[]
  /** Frame payloads, in file order over every RIFF. */
  frames: Buffer[]
  framesPerRiff: number[]
  avih: { usPerFrame: number; flags: number; totalFrames: number; width: number; height: number }
  strh: { handler: string; scale: number; rate: number; length: number }
  strf: { width: number; height: number; compression: string }
  /** 'indx' (OpenDML) or 'JUNK' (reserved). */
  indxId: string
  superIndex: Array<{ offset: number; size: number; frames: number }>
  /** dmlh total frames, when the odml list is a LIST (not JUNK). */
  dmlhFrames: number | undefined
  idx1: Array<{ id: string; flags: number; offset: number; size: number }> | undefined
  /** Bytes after the last RIFF that belong to no RIFF (a crashed file's unflushed tail). */
  trailing: number
}

function find(chunks: Chunk[] | undefined, id: string, type?: string): Chunk | undefined {
  return chunks?.find((c) => c.id === id && (type === undefined || c.type === type))
}

/**
 * Parse an AVI written by frame-pipe. Top-level chunks after the RIFFs are
 * counted as `trailing` (what a crash leaves after the last flush) instead of
 * failing, exactly as a reader that honours sizes would ignore them.
 */
export function parseAvi(buf: Buffer): ParsedAvi {
  const riffs: Chunk[] = []
  let pos = 0
  while (pos + 12 <= buf.length && buf.toString('latin1', pos, pos + 4) === 'RIFF') {
    const size = buf.readUInt32LE(pos + 4)
    if (pos + 8 + size > buf.length) throw new Error(`RIFF at ${pos} states ${size} bytes, the file has ${buf.length - pos - 8}`)
    const [riff] = walk(buf, pos, pos + 8 + size)
    riffs.push(riff!)
    pos += 8 + size
  }
  if (riffs.length === 0 || riffs[0]!.type !== 'AVI ') throw new Error('not an AVI: no RIFF AVI at 0')
  riffs.slice(1).forEach((r, i) => {
    if (r.type !== 'AVIX') throw new Error(`RIFF ${i + 1} is '${r.type}', expected AVIX`)
  })
  const hdrl = find(riffs[0]!.children, 'LIST', 'hdrl')
  const avihC = find(hdrl?.children, 'avih')
  const strl = find(hdrl?.children, 'LIST', 'strl')
  const strhC = find(strl?.children, 'strh')
  const strfC = find(strl?.children, 'strf')
  if (!avihC || !strhC || !strfC || !strl) throw new Error('header incomplete')
  const indxC = strl.children![2]
  if (!indxC || (indxC.id !== 'indx' && indxC.id !== 'JUNK')) throw new Error(`expected indx or JUNK after strf, found ${indxC?.id}`)
  const a = avihC.pos + 8
  const s = strhC.pos + 8
  const f = strfC.pos + 8
  const superIndex: ParsedAvi['superIndex'] = []
  if (indxC.id === 'indx') {
    const n = buf.readUInt32LE(indxC.pos + 8 + 4)
    for (let i = 0; i < n; i++) {
      const at = indxC.pos + 8 + 24 + 16 * i
      superIndex.push({ offset: Number(buf.readBigUInt64LE(at)), size: buf.readUInt32LE(at + 8), frames: buf.readUInt32LE(at + 12) })
    }
  }
  const odml = find(hdrl!.children, 'LIST', 'odml')
  const dmlh = find(odml?.children, 'dmlh')
  const frames: Buffer[] = []
  const framesPerRiff: number[] = []
  for (const r of riffs) {
    const movi = find(r.children, 'LIST', 'movi')
    if (!movi) throw new Error(`RIFF at ${r.pos} has no movi list`)
    let n = 0
    for (const c of movi.children!) {
      if (c.id === '00dc') {
        frames.push(buf.subarray(c.pos + 8, c.pos + 8 + c.size))
        n++
      } else if (c.id !== 'ix00') {
        throw new Error(`unexpected chunk '${c.id}' in movi at ${c.pos}`)
      }
    }
    framesPerRiff.push(n)
  }
  const idx1C = find(riffs[0]!.children, 'idx1')
  let idx1: ParsedAvi['idx1']
  if (idx1C) {
    idx1 = []
    for (let at = idx1C.pos + 8; at < idx1C.pos + 8 + idx1C.size; at += 16) {
      idx1.push({
        id: buf.toString('latin1', at, at + 4),
        flags: buf.readUInt32LE(at + 4),
        offset: buf.readUInt32LE(at + 8),
        size: buf.readUInt32LE(at + 12),
      })
    }
  }
  return {
    riffs,
    frames,
    framesPerRiff,
    avih: {
      usPerFrame: buf.readUInt32LE(a),
      flags: buf.readUInt32LE(a + 12),
      totalFrames: buf.readUInt32LE(a + 16),
      width: buf.readUInt32LE(a + 32),
      height: buf.readUInt32LE(a + 36),
    },
    strh: {
      handler: buf.toString('latin1', s + 4, s + 8),
      scale: buf.readUInt32LE(s + 20),
      rate: buf.readUInt32LE(s + 24),
      length: buf.readUInt32LE(s + 32),
    },
    strf: { width: buf.readInt32LE(f + 4), height: buf.readInt32LE(f + 8), compression: buf.toString('latin1', f + 16, f + 20) },
    indxId: indxC.id,
    superIndex,
    dmlhFrames: dmlh ? buf.readUInt32LE(dmlh.pos + 8) : undefined,
    idx1,
    trailing: buf.length - pos,
  }
}

/** Where the first RIFF's 'movi' fourcc is: idx1 offsets count from it. */
export function moviFourcc(riff: Chunk): number {
  const movi = find(riff.children, 'LIST', 'movi')
  if (!movi) throw new Error('no movi')
  return movi.pos + 8
}
