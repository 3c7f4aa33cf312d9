// Reassembly of native UDP frames by (sender, stream, frame id). Chunks land
// by index, so loss, repeats and reordering cannot splice frames; every chunk
// must agree with the frame's size and chunk size, so a frame is complete
// only with every byte it announced, and its CRC-32 must match (a datagram
// whose header was damaged cannot slip a wrong chunk in). For live video a frame older than one
// already settled (delivered or given up) is never delivered: each stream
// keeps a floor, and every frame id up to it is accounted for exactly once,
// as delivered or as one of the drop reasons.
//
// Memory is what the options say: each chunk's payload is copied into its
// frame's buffer as it arrives (no datagram is kept), a frame's buffer is its
// announced size (at most maxFrameBytes; pages are touched only as chunks
// land), and the frames in reassembly announce at most maxPendingBytes in
// all: the oldest are given up to make room.

import { crc32 } from 'node:zlib'
import { hex32, type FrameMeta } from '../../wire/headers.js'
import {
  count,
  DEFAULT_PENDING_BYTES,
  initCounters,
  peerKey,
  type Completed,
  type Peer,
  type Receiver,
  type ReceiverHooks,
} from './receive.js'
import { distance, encodeAck, isAfter, parseDatagram, type DataHeader } from './native.js'

export interface NativeReassemblerOptions {
  maxFrameBytes: number
  timeout: number
  /** Frames in reassembly at once over all senders; the oldest is given up when a new one would exceed it. */
  maxPending?: number
  /** Bytes the frames in reassembly may announce in all; the oldest are given up to make room. */
  maxPendingBytes?: number
  /** Sender streams remembered; the least recently heard is forgotten (its frames given up). */
  maxStreams?: number
}

interface StreamState {
  key: string
  stream: number
  /** Every id up to this one (serial order) is settled. */
  floor: number
}

interface Pending {
  key: string
  st: StreamState
  id: number
  total: number
  count: number
  seq: number
  crc: number
  /** Payload bytes of every chunk but the last. */
  per: number
  /** The frame's bytes, filled as chunks arrive. */
  data: Buffer
  /** 1 for each chunk index received. */
  got: Uint8Array
  have: number
  meta: FrameMeta
  peer: Peer
  last: number
}

export class NativeReassembler implements Receiver {
  private readonly o: Required<NativeReassemblerOptions>
  private readonly hooks: ReceiverHooks
  /** In first-arrival order, which is oldest first. */
  private readonly pending = new Map<string, Pending>()
  /** In order of last use. */
  private readonly streams = new Map<string, StreamState>()
  /** Bytes announced by the frames in `pending`. */
  private pendingBytes = 0

  constructor(o: NativeReassemblerOptions, hooks: ReceiverHooks) {
    this.o = { maxPending: 16, maxStreams: 64, maxPendingBytes: DEFAULT_PENDING_BYTES, ...o }
    this.hooks = hooks
    initCounters(hooks.counters, ['incomplete', 'evicted', 'skipped', 'corrupt', 'garbage', 'duplicates', 'late'])
  }

  /** Frames in reassembly now (tests, gauges). */
  get inProgress(): number {
    return this.pending.size
  }

  /** Bytes the frames in reassembly announce (their buffers' sizes). */
  get bytesInProgress(): number {
    return this.pendingBytes
  }

  push(datagram: Buffer, peer: Peer, now: number): Completed | undefined {
    const p = parseDatagram(datagram)
    if (p.kind === 'bad') return this.garbage(peer, p.reason)
    if (p.kind === 'ack') return this.garbage(peer, 'an ack datagram, but this end receives frames')
    const h = p.header
    const payload = p.payload
    if (h.total > this.o.maxFrameBytes) {
      return this.garbage(peer, `frame id ${h.id} announces ${h.total} bytes, more than maxFrameBytes (${this.o.maxFrameBytes})`)
    }
    if (h.total > this.o.maxPendingBytes) {
      return this.garbage(peer, `frame id ${h.id} announces ${h.total} bytes, more than maxPendingBytes (${this.o.maxPendingBytes})`)
    }
    const st = this.streamOf(peer, h)
    if (!isAfter(h.id, st.floor)) {
      count(this.hooks.counters, 'late')
      return undefined
    }
    const key = `${st.key}#${h.id}`
    let f = this.pending.get(key)
    if (!f) {
      const per = chunkSize(h, payload.length)
      if (typeof per === 'string') return this.garbage(peer, `frame id ${h.id}: ${per}`)
      // A frame in one datagram is complete now: a view of it is kept by nobody but the frame.
      if (h.count === 1) return this.complete(st, h.id, h.meta.seq, h.crc, payload, h.meta, peer)
      while (this.pending.size > 0 && (this.pending.size >= this.o.maxPending || this.pendingBytes + h.total > this.o.maxPendingBytes)) {
        const oldest = this.pending.values().next().value as Pending
        const why =
          this.pending.size >= this.o.maxPending
            ? `${this.o.maxPending} frames already in reassembly`
            : `frames in reassembly would announce more than maxPendingBytes (${this.o.maxPendingBytes})`
        this.giveUp(oldest, 'evicted', why)
        // Giving up the oldest may have settled this very id.
        if (!isAfter(h.id, st.floor)) {
          count(this.hooks.counters, 'late')
          return undefined
        }
      }
      f = {
        key,
        st,
        id: h.id,
        total: h.total,
        count: h.count,
        seq: h.meta.seq,
        crc: h.crc,
        per,
        // Uninitialised: every byte is written by a chunk before the frame is complete.
        data: Buffer.allocUnsafeSlow(h.total),
        got: new Uint8Array(h.count),
        have: 0,
        meta: h.meta,
        peer,
        last: now,
      }
      this.pending.set(key, f)
      this.pendingBytes += f.total
    } else {
      if (h.total !== f.total || h.count !== f.count || h.meta.seq !== f.seq || h.crc !== f.crc) {
        return this.garbage(
          peer,
          `frame id ${h.id}: chunk ${h.index} says ${h.total} bytes in ${h.count} chunks (seq ${h.meta.seq}), earlier chunks said ${f.total} in ${f.count} (seq ${f.seq})`,
        )
      }
      if (f.got[h.index]) {
        count(this.hooks.counters, 'duplicates')
        return undefined
      }
      const expected = h.index < f.count - 1 ? f.per : f.total - (f.count - 1) * f.per
      if (payload.length !== expected) {
        return this.garbage(peer, `frame id ${h.id}: chunk ${h.index} holds ${payload.length} bytes, expected ${expected}`)
      }
    }
    // Copied now: a view would keep the whole datagram alive until the frame completes.
    payload.copy(f.data, h.index * f.per)
    f.got[h.index] = 1
    f.have++
    f.last = now
    f.peer = peer
    if (f.have < f.count) return undefined
    this.forgetPending(f)
    return this.complete(st, f.id, f.seq, f.crc, f.data, f.meta, peer)
  }

  /** Every chunk of frame `id` is in `data`: deliver it when its CRC-32 matches, else give it up. */
  private complete(
    st: StreamState,
    id: number,
    seq: number,
    expected: number,
    data: Buffer,
    meta: FrameMeta,
    peer: Peer,
  ): Completed | undefined {
    const crc = crc32(data)
    if (crc !== expected) {
      this.settle(st, id)
      this.drop('corrupt')
      this.hooks.warn(
        `frame id ${id} (seq ${seq}) from ${peerKey(peer)} dropped: CRC-32 ${hex32(crc)} does not match the header's ${hex32(expected)}`,
      )
      return undefined
    }
    this.settle(st, id)
    return { data, meta, peer, ack: encodeAck(st.stream, id) }
  }

  expire(now: number): void {
    for (const f of this.pending.values()) {
      if (now - f.last >= this.o.timeout) {
        this.giveUp(f, 'incomplete', `incomplete after ${this.o.timeout} ms (${f.have} of ${f.count} datagrams)`)
      }
    }
  }

  flush(): void {
    for (const f of this.pending.values()) this.giveUp(f, 'incomplete', `incomplete at the end (${f.have} of ${f.count} datagrams)`)
  }

  private streamOf(peer: Peer, h: DataHeader): StreamState {
    const key = `${peerKey(peer)}/${h.stream}`
    let st = this.streams.get(key)
    if (st) {
      // Re-insert: the Map's order is the order of last use.
      this.streams.delete(key)
    } else {
      if (this.streams.size >= this.o.maxStreams) this.forget(this.streams.values().next().value as StreamState)
      // Frames before the first one heard of are not ours to count.
      st = { key, stream: h.stream, floor: (h.id - 1) >>> 0 }
    }
    this.streams.set(key, st)
    return st
  }

  private forget(st: StreamState): void {
    this.streams.delete(st.key)
    for (const f of this.pending.values()) {
      if (f.st === st) {
        this.forgetPending(f)
        this.drop('evicted')
      }
    }
  }

  /** `id` is delivered or given up: every earlier id not yet settled is skipped for good. */
  private settle(st: StreamState, id: number): void {
    const gap = distance(id, st.floor) - 1
    if (gap > 0) {
      count(this.hooks.counters, 'skipped', gap)
      this.hooks.counters.drops += gap
    }
    for (const f of this.pending.values()) {
      if (f.st === st && !isAfter(f.id, id)) this.forgetPending(f)
    }
    st.floor = id
  }

  private forgetPending(f: Pending): void {
    if (this.pending.delete(f.key)) this.pendingBytes -= f.total
  }

  private giveUp(f: Pending, reason: 'incomplete' | 'evicted' | 'corrupt', why: string): void {
    this.forgetPending(f)
    this.settle(f.st, f.id)
    this.drop(reason)
    this.hooks.warn(`frame id ${f.id} (seq ${f.seq}) from ${peerKey(f.peer)} dropped: ${why}`)
  }

  private drop(reason: 'incomplete' | 'evicted' | 'corrupt'): void {
    count(this.hooks.counters, reason)
    this.hooks.counters.drops++
  }

  private garbage(peer: Peer, reason: string): undefined {
    count(this.hooks.counters, 'garbage')
    this.hooks.warn(`ignored a datagram from ${peerKey(peer)}: ${reason}`)
    return undefined
  }
}

/**
 * The chunk size a first-seen chunk implies, or why it cannot belong to a
 * frame of `h.total` bytes in `h.count` chunks: all chunks but the last hold
 * the same number of bytes, and the last holds the rest (1 or more).
 */
function chunkSize(h: DataHeader, len: number): number | string {
  if (h.count === 1) return len === h.total ? len : `a single chunk of ${len} bytes for a frame of ${h.total}`
  if (h.index < h.count - 1) {
    if (len > 0 && (h.count - 1) * len < h.total && h.total <= h.count * len) return len
    return `chunk ${h.index} of ${h.count} holds ${len} bytes, which cannot make ${h.total}`
  }
  const rest = h.total - len
  const per = rest / (h.count - 1)
  if (len > 0 && rest > 0 && Number.isInteger(per) && len <= per) return per
  return `last chunk of ${h.count} holds ${len} bytes, which cannot end a frame of ${h.total}`
}
