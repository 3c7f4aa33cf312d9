// Composition: a checked pipeline of stages, and a chain of stages packaged
// as one Duplex.

import type { Duplex, Stream } from 'node:stream'
import { pipeline as streamPipeline } from 'node:stream/promises'
import pumpify from 'pumpify'
import { FramePipeError } from './errors.js'
import { RELEASE_HELD, stageInfo, tagStage, type StageInfo } from './stage.js'

export interface PipelineOptions {
  /** Aborting tears the whole pipeline down (use `stop()` on the source for a clean end instead). */
  signal?: AbortSignal
}

/**
 * Refuse links that cannot work, before anything starts: bytes into a stage
 * that takes frames, a source in the middle, a pipeline without a source.
 * Streams that carry no stage tag (your own) are trusted.
 */
export function checkLinks(stages: readonly Stream[]): void {
  if (stages.length < 2) {
    throw new FramePipeError('ERR_LINK', `a pipeline needs a source and at least one more stage, got ${stages.length}`)
  }
  stages.forEach((stream, i) => {
    const info = stageInfo(stream)
    if (!info) return
    if (info.kind === 'source' && i > 0) {
      throw new FramePipeError('ERR_LINK', `${info.name} is a source: it can only start a pipeline`)
    }
    if (i === 0 && info.input !== null) {
      throw new FramePipeError('ERR_LINK', `${info.name} is a ${info.kind}, a pipeline must start with a source`)
    }
    if (i === stages.length - 1 && info.kind === 'transform') {
      throw new FramePipeError('ERR_LINK', `the pipeline ends with the transform ${info.name}: end it with a sink (null discards)`)
    }
  })
  for (let i = 0; i + 1 < stages.length; i++) {
    const a = stageInfo(stages[i]!)
    const b = stageInfo(stages[i + 1]!)
    if (a && b) assertLink(a, b)
  }
}

function assertLink(a: StageInfo, b: StageInfo): void {
  if (a.output === null) throw new FramePipeError('ERR_LINK', `${a.name} produces nothing to link to ${b.name}`)
  if (b.input === null) throw new FramePipeError('ERR_LINK', `${b.name} is a source and cannot follow ${a.name}`)
  if (a.output === b.input || a.output === 'any' || b.input === 'any') return
  const fix = a.output === 'frames'
    ? `insert 'prefix' between them to put frames on the wire`
    : `insert 'unprefix' between them to cut the bytes into frames`
  throw new FramePipeError('ERR_LINK', `cannot link ${a.name} to ${b.name}: ${a.name} produces ${a.output} but ${b.name} takes ${b.input}; ${fix}`)
}

/**
 * Run stages from source to sink. Resolves once the source has ended and
 * every sink has flushed; on the first error every stage is destroyed and the
 * promise rejects with that error.
 */
export async function pipeline(...args: Array<Stream | PipelineOptions>): Promise<void> {
  const last = args[args.length - 1]
  const options: PipelineOptions = last && !isStream(last) ? (args.pop() as PipelineOptions) : {}
  const stages = args as Stream[]
  try {
    checkLinks(stages)
  } catch (err) {
    // Sources may already hold sockets or timers: release them.
    for (const s of stages) (s as Partial<Duplex>).destroy?.()
    throw err
  }
  await streamPipeline(stages as unknown as Parameters<typeof streamPipeline>[0][], options)
}

/**
 * Package a run of stages (e.g. `jpeg ! prefix`) as one Duplex, which can be
 * used anywhere a single stage can. Needs at least two stages.
 */
export function chain(...stages: Duplex[]): Duplex {
  if (stages.length < 2) throw new FramePipeError('ERR_LINK', 'chain() needs at least two stages')
  for (let i = 0; i + 1 < stages.length; i++) {
    const a = stageInfo(stages[i]!)
    const b = stageInfo(stages[i + 1]!)
    if (a && b) assertLink(a, b)
  }
  const duplex = new pumpify.obj(...stages) as unknown as Duplex
  const first = stageInfo(stages[0]!)
  const tail = stageInfo(stages[stages.length - 1]!)
  if (first && tail) {
    const name = stages.map((s) => stageInfo(s)?.name ?? '?').join(' ! ')
    tagStage(duplex, { name, kind: tail.kind === 'sink' ? 'sink' : 'transform', input: first.input, output: tail.output })
  }
  return duplex
}

/** Ask a source to end cleanly: it stops producing, what is in flight drains and sinks flush. */
export function stopSource(source: Stream): void {
  const s = source as Stream & { stop?: () => void; push?: (c: null) => boolean; destroyed?: boolean }
  if (s.destroyed) return
  if (typeof s.stop === 'function') s.stop()
  else s.push?.(null)
}

/**
 * End a running pipeline cleanly: stop its source, and let go of frames that a
 * sink holds back on purpose (`http lazy=true` with no viewer), so everything
 * in flight drains and the sinks flush. What Ctrl-C does in the CLI.
 */
export function stopPipeline(stages: readonly Stream[]): void {
  if (stages.length > 0) stopSource(stages[0]!)
  for (const s of stages) (s as Stream & { [RELEASE_HELD]?: () => void })[RELEASE_HELD]?.()
}

function isStream(value: unknown): value is Stream {
  return typeof value === 'object' && value !== null && typeof (value as Stream).pipe === 'function'
}
