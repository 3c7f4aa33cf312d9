// Composition: a checked pipeline of stages, and a chain of stages packaged
// as one Duplex.

import type { Duplex, Stream } from 'node:stream'
import { pipeline as streamPipeline } from 'node:stream/promises'
import { createRequire } from 'node:module'
import type Pumpify from 'pumpify'
import { FramePipeError } from './errors.js'
import {
  DEFRAMER,
  FRAMER,
  joinPipeline,
  RELEASE_HELD,
  stageInfo,
  TAKES_DEFRAMER,
  TAKES_FRAMER,
  tagStage,
  type Fusable,
  type StageInfo,
} from './stage.js'

export interface PipelineOptions {
  /** Aborting tears the whole pipeline down (use `stop()` on the source for a clean end instead). */
  signal?: AbortSignal
}

/** What the link check needs of a stage: its name, kind and ports. */
export type LinkEnd = Pick<StageInfo, 'name' | 'kind' | 'input' | 'output'>

/** Why a run of stages cannot work, and which stage (by index) the reason points at. */
export interface LinkProblem {
  index: number
  message: string
}

/**
 * The first reason `stages` cannot run as one pipeline: bytes into a stage
 * that takes frames, a source in the middle, no source first, a transform
 * last. Undefined entries are streams without a stage tag (your own): they are
 * trusted. `pipeline()` and `launch()` both check with this, so the API and
 * the CLI refuse the same things in the same words.
 */
export function linkProblem(stages: readonly (LinkEnd | undefined)[]): LinkProblem | undefined {
  const first = stages[0]
  if (first && first.kind !== 'source') {
    return { index: 0, message: `a pipeline starts with a source; ${first.name} is a ${first.kind}` }
  }
  if (stages.length < 2) {
    const message = first
      ? `${first.name} needs somewhere to go: add '! <sink>' (null discards)`
      : `a pipeline needs a source and at least one more stage, got ${stages.length}`
    return { index: 0, message }
  }
  for (let i = 1; i < stages.length; i++) {
    const b = stages[i]
    if (b?.kind === 'source') return { index: i, message: `${b.name} is a source: it can only start a pipeline` }
    const message = portProblem(stages[i - 1], b)
    if (message) return { index: i, message }
  }
  const last = stages[stages.length - 1]
  if (last?.kind === 'transform') {
    return { index: stages.length - 1, message: `the pipeline ends with the transform ${last.name}: end it with a sink (null discards)` }
  }
  return undefined
}

/** Why `a` cannot feed `b` (frames into a byte stage or the reverse), with what to insert; undefined when it can. */
function portProblem(a: LinkEnd | undefined, b: LinkEnd | undefined): string | undefined {
  if (!a || !b || a.output === null || b.input === null) return undefined
  if (a.output === b.input || a.output === 'any' || b.input === 'any') return undefined
  const fix =
    a.output === 'frames'
      ? `insert 'prefix' before ${b.name} to put frames on the wire`
      : `insert 'unprefix' before ${b.name} to cut the bytes into frames`
  return `cannot link ${a.name} to ${b.name}: ${a.name} produces ${a.output} but ${b.name} takes ${b.input}; ${fix}`
}

/** Refuse links that cannot work (see linkProblem), before anything starts. */
export function checkLinks(stages: readonly Stream[]): void {
  const problem = linkProblem(stages.map(stageInfo))
  if (problem) throw new FramePipeError('ERR_LINK', problem.message)
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
  joinPipeline(stages)
  const { running, fused } = fuseEdges(stages)
  try {
    await streamPipeline(running as unknown as Parameters<typeof streamPipeline>[0][], options)
  } finally {
    // A fused stage never ran as a stream: end it with the pipeline, so that it closes like the others.
    for (const s of fused) (s as Partial<Duplex>).destroy?.()
  }
}

/**
 * Fuse byte edges. A stage that makes each frame into one packet (prefix)
 * right before a transport that writes packets itself (the TCP sinks) hands
 * its work to that transport, which then takes the frames directly; a stage
 * that cuts bytes into frames (unprefix) right after a source that can feed
 * it (the TCP sources) is driven by that source, which then pushes frames. Each frame
 * crosses one stream fewer, which is most of what an unpaced relay costs
 * before V8 has optimised the streams' code. Stages, counters, events and
 * errors stay as written; only the streams that run change. A stage already
 * piped or read by hand is left as it is.
 */
function fuseEdges(stages: readonly Stream[]): { running: Stream[]; fused: Stream[] } {
  const running: Stream[] = []
  const fused: Stream[] = []
  for (let i = 0; i < stages.length; i++) {
    const stage = stages[i] as Stream & Fusable
    const next = stages[i + 1] as (Stream & Fusable) | undefined
    const before = running[running.length - 1] as (Stream & Fusable) | undefined
    const framer = stage[FRAMER]
    const deframer = stage[DEFRAMER]
    if (framer && next?.[TAKES_FRAMER] && untouched(stage) && untouched(next)) {
      next[TAKES_FRAMER](framer)
      fused.push(stage)
    } else if (deframer && before?.[TAKES_DEFRAMER] && untouched(stage) && untouched(before)) {
      before[TAKES_DEFRAMER](deframer)
      fused.push(stage)
    } else running.push(stage)
  }
  return { running, fused }
}

/** Nothing written to it or read from it yet: its work can move elsewhere, or take more on. */
function untouched(stream: Stream): boolean {
  const d = stream as Partial<Duplex>
  return !d.destroyed && !d.writableEnded && !d.writableLength && d.readableFlowing === null && !d.readableLength
}

/**
 * Package a run of stages (e.g. `jpeg ! prefix`) as one Duplex, which can be
 * used anywhere a single stage can. Needs at least two stages.
 */
export function chain(...stages: Duplex[]): Duplex {
  if (stages.length < 2) throw new FramePipeError('ERR_LINK', 'chain() needs at least two stages')
  for (let i = 1; i < stages.length; i++) {
    const problem = portProblem(stageInfo(stages[i - 1]!), stageInfo(stages[i]!))
    if (problem) throw new FramePipeError('ERR_LINK', problem)
  }
  // Required here, not imported at the top: pumpify and its readable-stream copy are a dozen
  // modules that every start-up (`--help`, `inspect`, any pipeline) would load for a rare call.
  const pumpify = createRequire(import.meta.url)('pumpify') as typeof Pumpify
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
