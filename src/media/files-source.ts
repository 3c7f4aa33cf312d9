// The files source's engine: image files as frames, a directory of images or
// a file-name glob in natural order (frame-2 before frame-10), optionally
// looped and paced. Each frame is described from its file's header (sharp).
// Globs are picomatch's (bash syntax: * ? [0-4] [!a] {a,b} +(…) …) in the
// file-name part; wildcards in directories are refused as unsupported.

import { readdir, readFile, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import picomatch from 'picomatch'
import sharp from 'sharp'
import { FramePipeError } from '../core/errors.js'
import { now, sniffFormat, type Frame } from '../core/frame.js'
import { PacedSource } from '../core/pacer.js'
import type { StageContext } from '../core/stage.js'

/** The files source's options, resolved (see sources/files.ts for what each means). */
export interface FilesSourceConfig {
  path: string
  loop: boolean
  fps: number
}

const IMAGE_EXT = /\.(jpe?g|png|webp)$/i
const collator = new Intl.Collator(undefined, { numeric: true })

export class FilesSource extends PacedSource {
  private readonly o: FilesSourceConfig
  private list: string[] = []
  private index = 0
  private seq = 0

  constructor(o: FilesSourceConfig, ctx: StageContext) {
    super(o.fps, ctx)
    this.o = o
  }

  override _construct(cb: (err?: Error | null) => void): void {
    listImages(this.o.path, this.ctx.name).then((list) => {
      this.list = list
      cb()
    }, cb)
  }

  protected exhausted(): boolean {
    return !this.o.loop && this.index >= this.list.length
  }

  protected async produce(): Promise<Frame> {
    if (this.index >= this.list.length) this.index = 0
    const file = this.list[this.index++]!
    let data: Buffer
    try {
      data = await readFile(file)
    } catch (err) {
      throw new FramePipeError('ERR_IO', `cannot read '${file}': ${(err as Error).message}`, { stage: this.ctx.name, cause: err })
    }
    const timestamp = now()
    const format = sniffFormat(data)
    let width = 0
    let height = 0
    let channels = 0
    // Only what sniffFormat recognises is described; other files (picked by an
    // explicit glob) travel as 'unknown' with no dimensions.
    if (format !== 'unknown') {
      try {
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
    return { data, format, width, height, channels, seq: this.seq++, timestamp }
  }
}

/**
 * The files `path` names, naturally sorted: a directory's images, a single
 * file, or a glob's matches. A path that exists is taken as it is (a file
 * named `shot[1].jpg` is that file); otherwise a glob in the file-name part is
 * matched with picomatch (like a shell, a leading wildcard does not match
 * dot-files). Wildcards in a directory part are refused.
 */
export async function listImages(path: string, stage = 'files'): Promise<string[]> {
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
    names = (await entries(base, stage, noMatch)).filter((n) => IMAGE_EXT.test(n) && !n.startsWith('.'))
  } else {
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
