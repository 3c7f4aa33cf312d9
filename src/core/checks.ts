// What arrived on an edge, checked the same way by every stage: one sentence
// for a record that is not a Frame where frames flow, one for a record that is
// not bytes where bytes flow, each naming what did arrive and what to insert.

import { describeValue, FramePipeError, type ErrorCode } from './errors.js'
import type { Counters } from './spec.js'
import { isBoundary, isFrame, type Frame } from './frame.js'

/** Name what arrived on an edge: `a Buffer of 5 bytes`, `a Frame (seq 3, 1 bytes)`, `a Boundary (peer …)`. */
export function describeRecord(value: unknown): string {
  if (Buffer.isBuffer(value)) return `a Buffer of ${value.length} bytes`
  if (value instanceof Uint8Array) return `a Uint8Array of ${value.length} bytes`
  if (Array.isArray(value)) return `an array of ${value.length} items`
  if (isFrame(value)) return `a Frame (seq ${value.seq}, ${value.data.length} bytes)`
  if (isBoundary(value)) return `a Boundary (peer ${value.peer})`
  return describeValue(value)
}

/** Bytes as they travel on a byte edge: a Buffer, a [header, payload] packet, or a Boundary. */
export function isByteChunk(value: unknown): boolean {
  return Buffer.isBuffer(value) || Array.isArray(value) || isBoundary(value)
}

/**
 * The record as a Frame, or the error saying what arrived instead. `fix`
 * says what to change when bytes arrive; by default, insert unprefix.
 */
export function expectFrame(stage: string, value: unknown, fix = `insert unprefix before ${stage}`): Frame | FramePipeError {
  if (isFrame(value)) return value
  const hint = isByteChunk(value) ? `; ${fix}` : ''
  return new FramePipeError('ERR_BAD_FRAME', `expected a Frame but received ${describeRecord(value)}${hint}`, { stage })
}

/**
 * The error for a record that is not bytes, or undefined for bytes. `fix`
 * says what to change when a Frame arrives; by default, insert prefix.
 */
export function notBytes(stage: string, value: unknown, fix = `insert prefix before ${stage}`): FramePipeError | undefined {
  if (isByteChunk(value)) return undefined
  const hint = isFrame(value) ? `; ${fix}` : ''
  return new FramePipeError('ERR_BAD_FRAME', `expected bytes (Buffer, Buffer[] or Boundary) but received ${describeRecord(value)}${hint}`, {
    stage,
  })
}

/**
 * Whether a frame a stage cannot take is a peer's fault rather than a mistake
 * in the pipeline: it came from a network peer (Frame.peer). A sink drops
 * such a frame (see rejectFrame) and goes on; a frame made in this process
 * that it cannot take (raw pixels with no `jpeg` stage before it) is an error.
 */
export function fromPeer(frame: Frame): frame is Frame & { peer: string } {
  return frame.peer !== undefined
}

/**
 * Drop a peer's frame that `err` says the stage cannot take: counted in
 * drops and `rejected`, and warned about through `warn` (rate-limited).
 */
export function rejectFrame(
  counters: Counters,
  warn: (message: string, code?: ErrorCode, key?: string) => void,
  frame: Frame & { peer: string },
  err: FramePipeError,
): void {
  counters.drops++
  counters.rejected = (counters.rejected ?? 0) + 1
  const stage = err.stage
  const why = stage && err.message.startsWith(`${stage}: `) ? err.message.slice(stage.length + 2) : err.message
  warn(`dropped a frame from ${frame.peer}: ${why} (counted in rejected)`, err.code, 'rejected')
}
