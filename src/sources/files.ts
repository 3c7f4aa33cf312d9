// Image files as frames: a directory of images or a file-name glob, in
// natural order (frame-2 before frame-10), optionally looped and paced; or
// raw pixel files (width/height/channels). The engine is media/files-source.ts.

import type { PacedSource } from '../core/pacer.js'
import { FramePipeError } from '../core/errors.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { FilesSource, type FilesSourceConfig } from '../media/files-source.js'

export interface FilesSourceOptions extends Partial<FilesSourceConfig> {
  /** A directory (every .jpg/.jpeg/.png/.webp in it), a file, or a glob in the file-name part (bash syntax: * ? [0-4] {a,b}), e.g. 'shots/cam-*.jpg'; wildcards in directories are refused (required) */
  path: string
}

export const spec = defineStage<FilesSourceOptions, PacedSource>({
  name: 'files',
  kind: 'source',
  input: null,
  output: 'frames',
  description:
    'Read image files (a directory or a glob such as shots/cam-*.jpg) as frames, in natural order; or raw pixel files with width/height',
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
    count: { type: 'int', min: 0, default: 0, doc: 'Frames before the end; 0 = every file once (endless with loop)' },
    width: {
      type: 'int',
      min: 0,
      max: 65535,
      default: 0,
      doc: 'Raw input (with height): the files hold raw pixels, frame after frame of width×height×channels bytes (rawvideoparse, ffmpeg -f rawvideo); a directory then gives every file. 0: image files',
    },
    height: { type: 'int', min: 0, max: 65535, default: 0, doc: 'Raw input: frame height (with width)' },
    channels: { type: 'int', min: 1, max: 4, default: 3, doc: 'Raw input: bytes per pixel, interleaved (1 grey, 3 RGB, 4 RGBA)' },
  },
  create(o, ctx) {
    if (o.width > 0 !== o.height > 0) {
      throw new FramePipeError('ERR_INVALID_OPTION', `raw input needs both width and height, received ${o.width}x${o.height}`, {
        stage: ctx.name,
      })
    }
    return new FilesSource(o, ctx)
  },
})

export const files = stageFactory(spec)
