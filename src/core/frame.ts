// The unit that travels between stages. Frames move in object mode; they turn
// into bytes only at a transport boundary (after `prefix`, before `unprefix`).

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
}

/**
 * Bytes on a transport edge. A byte source emits plain Buffers cut anywhere;
 * `prefix` emits one [header, payload] vector per frame, so that transports
 * can write both without joining them and drop whole frames for slow peers.
 */
export type Packet = Buffer | readonly Buffer[]

/**
 * Marks the end of one peer's bytes on a byte edge, e.g. when a client of a
 * `tcp-server` source disconnects and the next one takes over. `unprefix`
 * drops (and counts) a frame cut short by it instead of splicing two peers'
 * bytes together; sinks ignore it.
 */
export interface Boundary {
  readonly boundary: true
  readonly peer: string
  /** 'end': the peer closed cleanly; 'error': the connection failed. */
  readonly reason: 'end' | 'error'
}

/** What travels on a byte edge. */
export type ByteChunk = Packet | Boundary

export function isBoundary(chunk: unknown): chunk is Boundary {
  return typeof chunk === 'object' && chunk !== null && (chunk as Boundary).boundary === true
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
  return performance.timeOrigin + performance.now()
}

export function makeFrame(data: Buffer, init: Partial<Omit<Frame, 'data'>> = {}): Frame {
  return {
    data,
    format: init.format ?? sniffFormat(data),
    width: init.width ?? 0,
    height: init.height ?? 0,
    channels: init.channels ?? 0,
    seq: init.seq ?? 0,
    timestamp: init.timestamp ?? now(),
  }
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
