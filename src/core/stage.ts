// Runtime side of a stage: the tag that lets `pipeline` check links, the
// counters the status line reads, how a stage is built from its spec (the
// one construction path of the API and the CLI) and how sinks pass records on.

import type { Readable, Stream } from 'node:stream'
import { resolveOptions, type Counters, type StageSpec } from './spec.js'
import type { WithEvents } from './events.js'
import type { FramePipeError } from './errors.js'
import { isFrame, type Frame, type Packet } from './frame.js'

export type { Counters, StageContext } from './spec.js'

export interface StageInfo {
  name: string
  kind: StageSpec['kind']
  input: StageSpec['input']
  output: StageSpec['output']
  counters: Counters
}

const INFO = Symbol.for('frame-pipe.stage')

export type Staged<S extends Stream = Stream> = S & { [INFO]: StageInfo }

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

/**
 * Create a stage's stream from options already resolved against its spec
 * (defaults filled, values checked), tagged with the stage's ports and fresh
 * counters. The TypeScript factories and `launch` both build stages here.
 */
export function createStage<O, S extends Stream>(spec: StageSpec<O, S>, resolved: Required<O>): Staged<S> {
  const counters = newCounters()
  const stream = spec.create(resolved, { name: spec.name, counters })
  return tagStage(stream, { name: spec.name, kind: spec.kind, input: spec.input, output: spec.output, counters })
}

/**
 * Build the typed factory for a stage from its spec: validates options (same
 * rules as the CLI), creates and tags the stream. `E`, the stage's events map
 * (event name → what a listener gets), types `on('name', …)` on what it returns.
 */
export function stageFactory<O, S extends Stream, E = {}>(spec: StageSpec<O, S>): (options?: O) => Staged<WithEvents<S, E>> {
  return (options?: O) => createStage(spec, resolveOptions(spec, options as Partial<O>)) as Staged<WithEvents<S, E>>
}

const PIPELINE = Symbol.for('frame-pipe.pipeline')

/**
 * The streams of the pipeline `stream` runs in, source first, once
 * `pipeline()` has started it (undefined before, or for a stream piped by
 * hand). How a stage sees its neighbours' counters: the http sink's /metrics
 * reports every stage of its pipeline.
 */
export function pipelineOf(stream: Stream): readonly Stream[] | undefined {
  return (stream as { [PIPELINE]?: readonly Stream[] })[PIPELINE]
}

/** pipeline()'s half of pipelineOf: every stage learns the list it is part of. */
export function joinPipeline(streams: readonly Stream[]): void {
  const list = Object.freeze([...streams])
  for (const s of streams) (s as { [PIPELINE]?: readonly Stream[] })[PIPELINE] = list
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
  if (sink.readableFlowing === null) return
  // The sink may still use the frame's bytes (a write in flight, the viewer's
  // latest frame): nothing after it may give them back to a pool.
  if (isFrame(record)) record.release = undefined
  sink.push(record)
}

/**
 * What `prefix` does to each record, as a function: a frame in, its
 * [header, payload] packet (or the stage's error) out. Counts in prefix's own
 * counters, so a fused prefix still shows its frames and bytes.
 */
export type Framer = (record: unknown) => Packet | FramePipeError

/** Set by a stage that turns each frame into one packet and can hand that work on (prefix). */
export const FRAMER = Symbol.for('frame-pipe.framer')
/** A transport that can take a Framer and then frames instead of bytes (the TCP sinks). */
export const TAKES_FRAMER = Symbol.for('frame-pipe.takes-framer')

/**
 * What `unprefix` does to a byte stream, as an object a byte source can drive:
 * records (bytes, Boundaries) in, frames out through the function given to
 * attach(). feed() and end() return the stage's error when it is fatal; a
 * fault of one peer is handled inside (that peer is hung up on, counted and
 * logged on the unprefix stage's own events).
 */
export interface Deframer {
  /** Frames the stage's own output buffer holds: the bound a source that fuses it takes. */
  readonly buffered: number
  feed(record: unknown): FramePipeError | undefined
  end(): FramePipeError | undefined
  attach(out: (frame: Frame) => void): void
}

/** Set by a stage that turns a byte stream into frames and can hand that work on (unprefix). */
export const DEFRAMER = Symbol.for('frame-pipe.deframer')
/** A byte source that can take a Deframer and then push frames instead of bytes (the TCP sources). */
export const TAKES_DEFRAMER = Symbol.for('frame-pipe.takes-deframer')

export interface Fusable {
  [FRAMER]?: Framer
  [TAKES_FRAMER]?: (framer: Framer) => void
  [DEFRAMER]?: Deframer
  [TAKES_DEFRAMER]?: (deframer: Deframer) => void
}
