// The unit that travels between stages. Frames move in object mode; they turn
// into bytes only at a transport boundary (after `prefix`, before `unprefix`).

import type { Readable } from 'node:stream'

export const FRAME_FORMATS = ['raw', 'jpeg', 'png', 'webp', 'unknown'] as const
export type FrameFormat = (typeof FRAME_FORMATS)[number]

export interface Frame {
  /** Encoded image bytes, or raw interleaved pixels when format is 'raw'. */
  data: Buffer
  format: FrameFormat
  /** Pixel dimensions; 0 when not known (e.g. a JPEG that came off a seed's wire). */
  width: number
  height: number
  /** Channels of raw pixels (1, 2, 3 or 4); 0 when not known. */
  channels: number
  /** Sequence number given by the source; wraps at 2^32 on the native wire. */
  seq: number
  /** Capture time in milliseconds since the Unix epoch (fractional: sub-ms precision). */
  timestamp: number
  /**
   * The network peer the frame came from (`127.0.0.1:53712`, a URL), set where
   * frames enter from a network; absent for frames made in this process. A
   * sink drops (and counts) a peer's frame it cannot take, but fails on a
   * local one: that is a mistake in the pipeline, not a peer's fault.
   */
  peer?: string
  /**
   * Set on a frame whose pixels belong to a buffer pool (decode's output):
   * the last holder calls it (through releaseFrame) when done with `data`,
   * and the buffer is decoded into again. Pooling spares V8 a multi-megabyte
   * external allocation per frame, whose garbage collections were the 20-30 ms
   * latency spikes of a paced decode. Only a stream with one consumer hands a
   * frame on with it (handOn), so a tee never sees pixels change under it;
   * code that keeps `data` after passing a frame on should delete `release`
   * first. A frame never released is simply collected.
   */
  release?: () => void
}

/**
 * Bytes on a transport edge. A byte source emits plain Buffers cut anywhere;
 * `prefix` emits one [header, payload] vector per frame, so that transports
 * can write both without joining them and drop whole frames for slow peers.
 */
export type Packet = Buffer | readonly Buffer[]

/**
 * Marks where one peer's bytes end on a byte edge, e.g. when a client of a
 * `tcp-server` source disconnects and the next one takes over. `unprefix`
 * drops (and counts) a frame cut short by it instead of splicing two peers'
 * bytes together; sinks ignore it.
 *
 * A byte source that can end one peer alone (tcp-server, tcp-client with
 * reconnect) also marks where a peer's bytes start, with `reason: 'start'`
 * and `hangUp`: a stage that finds the peer's bytes bad (`unprefix`: a bad
 * header, CRC or size) calls it, drops the rest of that peer's bytes up to
 * its end Boundary and serves the next peer, instead of failing the pipeline.
 */
export interface Boundary {
  readonly boundary: true
  readonly peer: string
  /** 'start': the peer's bytes follow; 'end': the peer closed cleanly; 'error': the connection failed (or was cut for a fault). */
  readonly reason: 'start' | 'end' | 'error'
  /** On a 'start' marker: end this peer's connection for `why` (logged); the source then serves the next peer. */
  readonly hangUp?: (why: string) => void
}

/** What travels on a byte edge. */
export type ByteChunk = Packet | Boundary

export function isBoundary(chunk: unknown): chunk is Boundary {
  return typeof chunk === 'object' && chunk !== null && (chunk as Boundary).boundary === true
}

/** A 'start' Boundary that carries a way to hang up on its peer. */
export function isPeerStart(chunk: unknown): chunk is Boundary & { reason: 'start'; hangUp: (why: string) => void } {
  return isBoundary(chunk) && chunk.reason === 'start' && typeof chunk.hangUp === 'function'
}

export function packetLength(packet: ByteChunk): number {
  if (Buffer.isBuffer(packet)) return packet.length
  if (isBoundary(packet)) return 0
  let n = 0
  for (const b of packet) n += b.length
  return n
}

/** Wall-clock milliseconds with sub-millisecond precision. */
export function now(): number {
  return TIME_ORIGIN + performance.now()
}

// Read once: the getter asks the runtime every time (about a microsecond), and
// receivers stamp or check every frame.
const TIME_ORIGIN = performance.timeOrigin

/** Give a pooled frame's buffer back (see Frame.release), at most once: only the frame's last holder calls this. */
export function releaseFrame(frame: Frame): void {
  const release = frame.release
  if (!release) return
  frame.release = undefined
  release()
}

/**
 * The frame to push on `stream`: itself, or, when the stream's output goes to
 * more than one consumer (two pipes, or a pipe and a 'data' listener), the
 * frame without its release, so that no consumer can give its buffer back
 * while another still reads it.
 */
export function handOn(stream: Readable, frame: Frame): Frame {
  if (!frame.release) return frame
  if (stream.listenerCount('data') <= 1 && stream.listenerCount('readable') === 0) return frame
  frame.release = undefined
  return frame
}

export function makeFrame(data: Buffer, init: Partial<Omit<Frame, 'data'>> = {}): Frame {
  const frame: Frame = {
    data,
    format: init.format ?? sniffFormat(data),
    width: init.width ?? 0,
    height: init.height ?? 0,
    channels: init.channels ?? 0,
    seq: init.seq ?? 0,
    timestamp: init.timestamp ?? now(),
  }
  if (init.peer !== undefined) frame.peer = init.peer
  return frame
}

/** How far a peer's clock may be from ours before its timestamps are replaced by arrival time (the default of `maxClockSkew`). */
export const DEFAULT_CLOCK_SKEW = 3_600_000

/**
 * A peer's capture time, or `arrival` when it is not a finite number within
 * `maxSkew` ms of `arrival`: a peer's clock must not drive file names and
 * rotation (NaN, a year off, ±1 day on alternate frames).
 */
export function saneTimestamp(timestamp: number, arrival: number, maxSkew: number): number {
  // Written so that NaN fails the test.
  return Math.abs(timestamp - arrival) <= maxSkew ? timestamp : arrival
}

/** Recognise an encoded image from its first bytes; cheap enough for every frame. */
export function sniffFormat(data: Buffer): FrameFormat {
  if (data.length >= 3 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return 'jpeg'
  if (data.length >= 8 && data.readUInt32BE(0) === 0x89504e47 && data.readUInt32BE(4) === 0x0d0a1a0a) return 'png'
  if (data.length >= 12 && data.toString('latin1', 0, 4) === 'RIFF' && data.toString('latin1', 8, 12) === 'WEBP') return 'webp'
  return 'unknown'
}

export function isFrame(value: unknown): value is Frame {
  return (
    typeof value === 'object' && value !== null && Buffer.isBuffer((value as Frame).data) && typeof (value as Frame).format === 'string'
  )
}
