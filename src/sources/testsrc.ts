// A synthetic camera: numbered test-pattern frames (image/test-pattern.ts
// draws them), paced on an absolute schedule.

import type { PacedSource } from '../core/pacer.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { TESTSRC_FORMATS, TestSource, type TestPatternConfig } from '../image/test-pattern.js'

export { TESTSRC_FORMATS, type TestsrcFormat } from '../image/test-pattern.js'

export type TestsrcOptions = Partial<TestPatternConfig>

export const spec = defineStage<TestsrcOptions, PacedSource>({
  name: 'testsrc',
  kind: 'source',
  input: null,
  output: 'frames',
  description: 'Generate numbered test-pattern frames (colour bars, moving box, frame number)',
  options: {
    width: { type: 'int', min: 16, max: 8192, default: 640, doc: 'Frame width in pixels' },
    height: { type: 'int', min: 16, max: 8192, default: 480, doc: 'Frame height in pixels' },
    fps: {
      type: 'number',
      min: 0,
      max: 1000,
      default: 30,
      doc: 'Frames per second on an absolute schedule; 0 = as fast as downstream takes them. A slow consumer slows the source (one frame buffered); when behind, at most one frame is made up',
    },
    count: { type: 'int', min: 0, default: 0, doc: 'Frames to produce before ending; 0 = endless' },
    format: {
      type: 'enum',
      values: TESTSRC_FORMATS,
      default: 'raw',
      doc: 'raw: RGB pixels (3 channels); jpeg: encoded at `quality` (4:2:0, by libjpeg-turbo like the jpeg stage; by sharp, with optimised tables, when the binding is not available)',
    },
    quality: { type: 'int', min: 1, max: 100, default: 80, doc: 'JPEG quality when format=jpeg' },
  },
  create(o, ctx) {
    return new TestSource(o, ctx)
  },
})

export const testsrc = stageFactory(spec)
