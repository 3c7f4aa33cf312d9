// The files source's engine: image files as frames, a directory of images or
// a file-name glob in natural order (frame-2 before frame-10), optionally
// looped and paced. Each frame is described from its file's header. With
// width and height the files hold raw pixels instead: frame after frame of
// width × height × channels bytes, as GStreamer's rawvideoparse and FFmpeg's
// `-f rawvideo` read them. Globs are picomatch's (bash syntax: * ? [0-4] [!a]
// {a,b} +(…) …) in the file-name part; wildcards in directories are refused.

import { statSync } from 'node:fs'
import { open, readdir, readFile, stat, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { FramePipeError } from '../core/errors.js'
import { now, sniffFormat, type Frame } from '../core/frame.js'
import { PacedSource } from '../core/pacer.js'
import type { StageContext } from '../core/stage.js'
import { loadSharp } from '../image/sharp-loader.js'
import { jpegSize } from '../wire/jpeg.js'

/** The files source's options, resolved (see sources/files.ts for what each means). */
export interface FilesSourceConfig {
  path: string
  /** Start again from the first file after the last (default false) */
  loop: boolean
  /** Frames per second on an absolute schedule; 0 = as fast as downstream takes them. One file is read per request from downstream (default 0) */
  fps: number
  /** Frames before the end; 0 = every file once (endless with loop). */
  count: number
  /** Raw input when both are > 0: each file holds frames of width × height × channels bytes. */
  width: number
  /** Raw input: frame height (with width) (default 0) */
  height: number
  /** Raw input: bytes per pixel, interleaved (1 grey, 3 RGB, 4 RGBA) (default 3) */
  channels: number
}

/**
 * The one file of a single-file list, kept while its size and modification
 * time stay the same: looping one picture (a benchmark, a still camera)
 * costs a stat now and then instead of a read and a fresh buffer per frame.
 * Frames made from it share that buffer, which no stage writes into.
 */
interface Kept {
  size: number
  mtimeMs: number
  data: Buffer
  /** performance.now() of the last stat. */
  checked: number
  /** What its header says, read once (encoded files only). */
  described?: Description
}

type Description = Pick<Frame, 'format' | 'width' | 'height' | 'channels'>

/**
 * How often a kept file is checked for a change. A stat (and the Stats object
 * Node builds) took about 20 µs, a quarter of the time per frame of an
 * unpaced relay of a 47 KB JPEG; a rewritten file is still seen within this.
 */
const RECHECK_MS = 50

const IMAGE_EXT = /\.(jpe?g|png|webp)$/i
// Made on first use: creating it loads ICU collation data, about 15 ms of every start-up otherwise.
let collator: Intl.Collator | undefined

export class FilesSource extends PacedSource {
  private readonly o: FilesSourceConfig
  private readonly raw: boolean
  private readonly frameBytes: number
  private list: string[] = []
  private index = 0
  private seq = 0
  private kept: Kept | undefined
  /** Raw input: the file being read, and the next frame in it. */
  private rawFile: { name: string; handle: FileHandle; frames: number; next: number } | undefined

  constructor(o: FilesSourceConfig, ctx: StageContext) {
    super(o.fps, ctx)
    this.o = o
    this.raw = o.width > 0 && o.height > 0
    this.frameBytes = o.width * o.height * o.channels
  }

  override _construct(cb: (err?: Error | null) => void): void {
    listImages(this.o.path, this.ctx.name, this.raw).then((list) => {
      this.list = list
      cb()
    }, cb)
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    const handle = this.rawFile?.handle
    this.rawFile = undefined
    this.kept = undefined
    if (!handle) return super._destroy(err, cb)
    handle.close().then(
      () => super._destroy(err, cb),
      () => super._destroy(err, cb),
    )
  }

  protected exhausted(): boolean {
    if (this.o.count > 0 && this.seq >= this.o.count) return true
    if (this.o.loop) return false
    return this.index >= this.list.length && (this.rawFile === undefined || this.rawFile.next >= this.rawFile.frames)
  }

  protected produce(): Frame | null | Promise<Frame | null> {
    if (this.raw) return this.produceRaw()
    if (this.index >= this.list.length) this.index = 0
    const file = this.list[this.index++]!
    // A looped still picture, checked less than RECHECK_MS ago: the frame is
    // made at once, without a promise (the pacer then delivers it in the same turn).
    const fresh = this.keptFresh()
    const described = this.kept?.described
    if (fresh && described) {
      const { format, width, height, channels } = described
      return { data: fresh, format, width, height, channels, seq: this.seq++, timestamp: now() }
    }
    return this.produceFile(file)
  }

  private async produceFile(file: string): Promise<Frame> {
    const data = await this.readWhole(file)
    const timestamp = now()
    const { format, width, height, channels } = await this.describe(file, data)
    return { data, format, width, height, channels, seq: this.seq++, timestamp }
  }

  /** A file's format and dimensions, from its header; the kept file's are read once (a looped still picture). */
  private async describe(file: string, data: Buffer): Promise<Description> {
    // Only a single-file list keeps its file, and then `data` is that file's: a new Kept when it changes.
    const kept = this.kept
    if (kept?.described) return kept.described
    const format = sniffFormat(data)
    let width = 0
    let height = 0
    let channels = 0
    // Only what sniffFormat recognises is described; other files (picked by an
    // explicit glob) travel as 'unknown' with no dimensions.
    // A JPEG's SOF says it all, without loading sharp; PNG and WebP ask sharp.
    const sof = format === 'jpeg' ? jpegSize(data) : undefined
    if (sof && sof.width > 0 && sof.height > 0) {
      width = sof.width
      height = sof.height
      channels = sof.components
    } else if (format !== 'unknown') {
      try {
        const sharp = await loadSharp()
        const meta = await sharp(data).metadata()
        width = meta.width ?? 0
        height = meta.height ?? 0
        channels = meta.channels ?? 0
      } catch (err) {
        throw new FramePipeError('ERR_DECODE', `cannot read the ${format} header of '${file}': ${(err as Error).message}`, {
          stage: this.ctx.name,
          cause: err,
        })
      }
    }
    const described = { format, width, height, channels }
    if (kept) kept.described = described
    return described
  }

  /** A whole file: read again each time, except a single-file list's one file while it is unchanged (Kept). */
  private async readWhole(file: string): Promise<Buffer> {
    if (this.list.length !== 1) {
      try {
        return await readFile(file)
      } catch (err) {
        throw this.cannotRead(file, err)
      }
    }
    return this.keptFresh() ?? this.readKept(file, this.statNow(file))
  }

  /** The kept file when it was checked less than RECHECK_MS ago (no stat at all), else undefined. */
  private keptFresh(): Buffer | undefined {
    return this.kept && performance.now() - this.kept.checked < RECHECK_MS ? this.kept.data : undefined
  }

  private async readKept(file: string, st: { size: number; mtimeMs: number }): Promise<Buffer> {
    const checked = performance.now()
    if (this.kept && this.kept.size === st.size && this.kept.mtimeMs === st.mtimeMs) {
      this.kept.checked = checked
      return this.kept.data
    }
    try {
      const data = await readFile(file)
      this.kept = { size: st.size, mtimeMs: st.mtimeMs, data, checked }
      return data
    } catch (err) {
      throw this.cannotRead(file, err)
    }
  }

  /** A stat of a cached inode takes microseconds: cheaper here than a round trip through the thread pool. */
  private statNow(file: string): { size: number; mtimeMs: number } {
    try {
      return statSync(file)
    } catch (err) {
      throw this.cannotRead(file, err)
    }
  }

  private cannotRead(file: string, err: unknown): FramePipeError {
    return new FramePipeError('ERR_IO', `cannot read '${file}': ${(err as Error).message}`, { stage: this.ctx.name, cause: err })
  }

  /** The next raw frame: the next frameBytes of the current file, the next file when it is used up. */
  private produceRaw(): Frame | null | Promise<Frame | null> {
    // One file of exactly one frame: a still picture, read once while unchanged (see Kept).
    // Kept only ever holds a file of exactly one frame here.
    const fresh = this.list.length === 1 && !this.rawFile ? this.keptFresh() : undefined
    if (fresh) {
      const { width, height, channels } = this.o
      return { data: fresh, format: 'raw', width, height, channels, seq: this.seq++, timestamp: now() }
    }
    return this.readRaw()
  }

  private async readRaw(): Promise<Frame | null> {
    const { width, height, channels } = this.o
    if (this.list.length === 1 && !this.rawFile) {
      const name = this.list[0]!
      const st = this.statNow(name)
      if (st.size === this.frameBytes) {
        const data = await this.readKept(name, st)
        this.index = 1
        return { data, format: 'raw', width, height, channels, seq: this.seq++, timestamp: now() }
      }
    }
    while (!this.rawFile || this.rawFile.next >= this.rawFile.frames) {
      await this.closeRaw()
      if (this.index >= this.list.length) {
        if (!this.o.loop) return null
        this.index = 0
      }
      await this.openRaw(this.list[this.index++]!)
    }
    const f = this.rawFile
    const data = Buffer.allocUnsafe(this.frameBytes)
    try {
      const { bytesRead } = await f.handle.read(data, 0, this.frameBytes, f.next * this.frameBytes)
      if (bytesRead !== this.frameBytes)
        throw new Error(`read ${bytesRead} of ${this.frameBytes} bytes at frame ${f.next} (did the file shrink?)`)
    } catch (err) {
      throw this.cannotRead(f.name, err)
    }
    f.next++
    return { data, format: 'raw', width, height, channels, seq: this.seq++, timestamp: now() }
  }

  private async openRaw(name: string): Promise<void> {
    let handle: FileHandle
    try {
      handle = await open(name, 'r')
    } catch (err) {
      throw this.cannotRead(name, err)
    }
    const { size } = await handle.stat()
    if (size === 0 || size % this.frameBytes !== 0) {
      await handle.close()
      const { width, height, channels } = this.o
      throw new FramePipeError(
        'ERR_BAD_FRAME',
        `'${name}' is ${size} bytes, not a whole number of ${width}x${height}x${channels} = ${this.frameBytes}-byte raw frames`,
        { stage: this.ctx.name },
      )
    }
    this.rawFile = { name, handle, frames: size / this.frameBytes, next: 0 }
  }

  private async closeRaw(): Promise<void> {
    const f = this.rawFile
    this.rawFile = undefined
    await f?.handle.close()
  }
}

/**
 * The files `path` names, naturally sorted: a directory's images (every file
 * but dot-files with `raw`), a single file, or a glob's matches. A path that
 * exists is taken as it is (a file named `shot[1].jpg` is that file);
 * otherwise a glob in the file-name part is matched with picomatch (like a
 * shell, a leading wildcard does not match dot-files). Wildcards in a
 * directory part are refused.
 */
export async function listImages(path: string, stage = 'files', raw = false): Promise<string[]> {
  const noMatch = () => new FramePipeError('ERR_IO', `no images match '${path}'`, { stage })
  let isDir: boolean | undefined
  try {
    isDir = (await stat(path)).isDirectory()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new FramePipeError('ERR_IO', `cannot read '${path}': ${(err as Error).message}`, { stage, cause: err })
    }
  }
  if (isDir === false) return [path]
  let names: string[]
  let base: string
  if (isDir) {
    base = path
    // Raw files have no one extension (.rgb, .raw, .gray, .yuv…): a directory of them gives every file but dot-files.
    names = (await entries(base, stage, noMatch)).filter((n) => (raw || IMAGE_EXT.test(n)) && !n.startsWith('.'))
  } else {
    // Loaded only for a path that does not exist as it is (about 14 ms of a start-up otherwise).
    const { default: picomatch } = await import('picomatch')
    const dir = dirname(path)
    const name = basename(path)
    if (picomatch.scan(dir).isGlob || /[\\/]/.test(picomatch.scan(path).glob)) {
      throw new FramePipeError(
        'ERR_INVALID_OPTION',
        `unsupported pattern '${path}': wildcards are only supported in the file-name part of path (e.g. 'shots/cam-*.jpg')`,
        { stage },
      )
    }
    if (!picomatch.scan(name).isGlob) throw noMatch()
    base = dir
    // posix: bash's [!a] negation and [[:digit:]] classes.
    const matches = picomatch(name, { posix: true })
    names = (await entries(base, stage, noMatch)).filter((n) => matches(n))
  }
  if (names.length === 0) throw noMatch()
  collator ??= new Intl.Collator(undefined, { numeric: true })
  return names.sort(collator.compare).map((n) => join(base, n))
}

async function entries(dir: string, stage: string, noMatch: () => Error): Promise<string[]> {
  try {
    const list = await readdir(dir, { withFileTypes: true })
    return list.filter((e) => e.isFile() || e.isSymbolicLink()).map((e) => e.name)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw noMatch()
    throw new FramePipeError('ERR_IO', `cannot list '${dir}': ${(err as Error).message}`, { stage, cause: err })
  }
}
