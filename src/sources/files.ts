// Image files as frames: a directory of images or a file-name glob, in
// natural order (frame-2 before frame-10), optionally looped and paced. The
// engine is media/files-source.ts.

import type { PacedSource } from '../core/pacer.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { FilesSource, type FilesSourceConfig } from '../media/files-source.js'

export interface FilesSourceOptions extends Partial<FilesSourceConfig> {
  path: string
}

export const spec = defineStage<FilesSourceOptions, PacedSource>({
  name: 'files',
  kind: 'source',
  input: null,
  output: 'frames',
  description: 'Read image files (a directory or a glob such as shots/cam-*.jpg) as frames, in natural order',
  options: {
    path: {
      type: 'string',
      required: true,
      doc: "A directory (every .jpg/.jpeg/.png/.webp in it), a file, or a glob in the file-name part (bash syntax: * ? [0-4] {a,b}), e.g. 'shots/cam-*.jpg'; wildcards in directories are refused",
    },
    loop: { type: 'boolean', default: false, doc: 'Start again from the first file after the last' },
    fps: {
      type: 'number',
      min: 0,
      default: 0,
      doc: 'Frames per second on an absolute schedule; 0 = as fast as downstream takes them. One file is read per request from downstream',
    },
  },
  create(o, ctx) {
    return new FilesSource(o, ctx)
  },
})

export const files = stageFactory(spec)
