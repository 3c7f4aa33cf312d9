// Directories for the files a sink writes (files, avi, mp4), made as needed
// with one clear error.

import { mkdir } from 'node:fs/promises'
import { FramePipeError } from '../core/errors.js'

/** mkdir -p, remembering the last directory made, so that a flat pattern costs no mkdir per file. */
export class Directories {
  private readonly stage: string
  private last: string | undefined

  constructor(stage: string) {
    this.stage = stage
  }

  async make(dir: string): Promise<void> {
    if (dir === this.last) return
    try {
      await mkdir(dir, { recursive: true })
    } catch (err) {
      throw new FramePipeError('ERR_IO', `cannot create directory '${dir}': ${(err as Error).message}`, { stage: this.stage, cause: err })
    }
    this.last = dir
  }
}
