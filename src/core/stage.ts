// Runtime side of a stage: the tag that lets `pipeline` check links, the
// counters the status line reads, and how sinks pass records on.

import type { Readable, Stream } from 'node:stream'
import { resolveOptions, type StageSpec } from './spec.js'

/** Per-stage numbers for the status line and `--json`: frames (or packets), bytes, frames dropped by policy, plus stage-specific gauges such as `clients`. */
export interface Counters {
  frames: number
  bytes: number
  drops: number
  [gauge: string]: number
}

export interface StageInfo {
  name: string
  kind: StageSpec['kind']
  input: StageSpec['input']
  output: StageSpec['output']
  counters: Counters
}

const INFO = Symbol.for('frame-pipe.stage')

export type Staged<S extends Stream = Stream> = S & { [INFO]: StageInfo }

export interface StageContext {
  name: string
  counters: Counters
}

export function newCounters(): Counters {
  return { frames: 0, bytes: 0, drops: 0 }
}

/** Attach stage information to any stream, so hand-made streams can join a checked pipeline too. */
export function tagStage<S extends Stream>(stream: S, info: Omit<StageInfo, 'counters'> & { counters?: Counters }): Staged<S> {
  const tagged = stream as Staged<S>
  tagged[INFO] = { ...info, counters: info.counters ?? newCounters() }
  return tagged
}

export function stageInfo(stream: Stream): StageInfo | undefined {
  return (stream as Partial<Staged>)[INFO]
}

/** Build the typed factory for a stage from its spec: validates options (same rules as the CLI), creates and tags the stream. */
export function stageFactory<O, S extends Stream>(spec: StageSpec<O, S>): (options?: O) => Staged<S> {
  return (options?: O) => {
    const resolved = resolveOptions(spec, options as Partial<O>)
    const counters = newCounters()
    const stream = spec.create(resolved, { name: spec.name, counters })
    return tagStage(stream, { name: spec.name, kind: spec.kind, input: spec.input, output: spec.output, counters })
  }
}

/**
 * A sink that holds frames back on purpose (http lazy=true while nobody
 * watches) implements this method; `stopPipeline` calls it so a stopping
 * pipeline can drain. A symbol, so that no stage's own `release` is hit by accident.
 */
export const RELEASE_HELD = Symbol.for('frame-pipe.release-held')

/**
 * Sinks are Transforms that pass on a record of each thing they did (a file
 * written, a packet sent) so they chain and can be observed. Nobody is obliged
 * to read those records: until something consumes the readable side (pipe,
 * 'data', 'readable', async iteration) records are not kept, so an unread
 * sink never stalls.
 */
export function passOn(sink: Readable, record: unknown): void {
  if (sink.readableFlowing !== null) sink.push(record)
}
