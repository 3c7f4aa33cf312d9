// What arrived on an edge, checked the same way by every stage: one sentence
// for a record that is not a Frame where frames flow, one for a record that is
// not bytes where bytes flow, each naming what did arrive and what to insert.

import { describeValue, FramePipeError } from './errors.js'
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
