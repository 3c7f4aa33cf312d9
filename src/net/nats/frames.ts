// A Frame as a NATS message: the payload is the image bytes, untouched (any
// NATS client can take a JPEG straight off the subject), and the metadata
// travels in NATS headers, readable with `nats sub` too:
//   Frame-Seq: 42
//   Frame-Time: 1733140000123.456     capture time, ms since the Unix epoch
//   Frame-Format: jpeg
//   Frame-Width: 640 / Frame-Height: 480 / Frame-Channels: 3   (omitted when 0: unknown)
// A message without them (published by another tool) becomes a frame whose
// format is sniffed from its bytes, numbered on arrival and timed on receipt.

import { headers, type MsgHdrs } from '@nats-io/transport-node'
import { InvalidOptionError } from '../../core/errors.js'
import { FRAME_FORMATS, makeFrame, now, type Frame, type FrameFormat } from '../../core/frame.js'

export const HEADER_SEQ = 'Frame-Seq'
export const HEADER_TIME = 'Frame-Time'
export const HEADER_FORMAT = 'Frame-Format'
export const HEADER_WIDTH = 'Frame-Width'
export const HEADER_HEIGHT = 'Frame-Height'
export const HEADER_CHANNELS = 'Frame-Channels'

/** The headers carrying a frame's metadata. */
export function frameHeaders(frame: Frame): MsgHdrs {
  const h = headers()
  h.set(HEADER_SEQ, String(frame.seq))
  // Microseconds are enough for latency; more digits are noise on the wire.
  h.set(HEADER_TIME, frame.timestamp.toFixed(3))
  h.set(HEADER_FORMAT, frame.format)
  if (frame.width > 0) h.set(HEADER_WIDTH, String(frame.width))
  if (frame.height > 0) h.set(HEADER_HEIGHT, String(frame.height))
  if (frame.channels > 0) h.set(HEADER_CHANNELS, String(frame.channels))
  return h
}

/** Bytes the headers add to a message: they count against the server's max_payload. */
export function headerBytes(h: MsgHdrs): number {
  return (h as MsgHdrs & { encode(): Uint8Array }).encode().length
}

/** The frame a message carries; `nextSeq` numbers messages that came without metadata. */
export function messageFrame(data: Uint8Array, h: MsgHdrs | undefined, nextSeq: () => number): Frame {
  // A view, not a copy: the client gave this message its own bytes.
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  if (!h || !h.has(HEADER_SEQ)) return makeFrame(bytes, { seq: nextSeq(), timestamp: now() })
  const format = h.get(HEADER_FORMAT)
  const time = Number(h.get(HEADER_TIME))
  return makeFrame(bytes, {
    format: (FRAME_FORMATS as readonly string[]).includes(format) ? (format as FrameFormat) : undefined,
    seq: whole(h.get(HEADER_SEQ), 2 ** 53) ?? nextSeq(),
    timestamp: h.has(HEADER_TIME) && Number.isFinite(time) ? time : now(),
    width: whole(h.get(HEADER_WIDTH), 2 ** 31) ?? 0,
    height: whole(h.get(HEADER_HEIGHT), 2 ** 31) ?? 0,
    channels: whole(h.get(HEADER_CHANNELS), 5) ?? 0,
  })
}

/** A header's value as a whole number below `limit`, else undefined (absent or malformed). */
function whole(text: string, limit: number): number | undefined {
  if (!/^\d{1,16}$/.test(text)) return undefined
  const n = Number(text)
  return n < limit ? n : undefined
}

/**
 * Check a subject: dot-separated tokens, no spaces. A publisher needs a
 * literal subject; a subscriber may use `*` (one token) and `>` (the rest).
 */
export function checkSubject(stage: string, subject: string, wildcards: boolean): void {
  const bad = (why: string): never => {
    throw new InvalidOptionError(stage, 'subject', `subject '${subject}' ${why}`)
  }
  if (subject === '') bad('is empty')
  if (/\s/.test(subject)) bad('has a space in it')
  const tokens = subject.split('.')
  tokens.forEach((t, i) => {
    if (t === '') bad('has an empty token (two dots, or a dot at an end)')
    if (t.includes('*') || t.includes('>')) {
      if (!wildcards) bad('has a wildcard: a publisher needs one subject such as frames.cam1 (subscribers may use frames.*)')
      if (t.length > 1) bad(`has '${t}': * and > stand alone as a token`)
      if (t === '>' && i !== tokens.length - 1) bad('has > before its end: > stands for the rest of the subject')
    }
  })
}
