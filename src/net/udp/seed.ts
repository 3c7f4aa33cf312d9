// Seed 000's UDP wires (WIRE.md section 1). 'whole' (000a): one datagram is
// one JPEG. 'chunked' (000b/c): an 8-byte datagram with the little-endian
// signed 64-bit length, then 1024-byte datagrams, the remainder last, and an
// empty datagram when the length is a multiple of 1024.
//
// The originals desynchronise for good after one lost chunk. This receiver
// keeps one image in progress per sender address (a second client's chunks are
// never mixed in), checks every chunk's size against what is left, gives an
// image up when a chunk is missing or its datagrams stop for `timeout`, and
// delivers only a complete JPEG; after any of these it waits for the next
// 8-byte datagram announcing a plausible length. What it cannot see: two
// same-sized middle chunks swapped (the wire has no sequence numbers), or a
// splice of two images when both a chunk of one and the header of the next are
// lost while the sender does not wait for the reply. Seed senders wait.

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
import { isCompleteJpeg } from '../../wire/jpeg.js'

export const SEED_CHUNK = 1024
export const SEED_HEADER_BYTES = 8
export const SEED_REPLY = 'get message!!!'
export const SEED_MSG_REPLY = 'get the msg'
/** Smallest thing that can be a JPEG: SOI + EOI. */
const MIN_IMAGE = 4

/**
 * The datagrams seed 000b's client sends for one image, from its own loop
 * `for i in range(L//1024 + 1): send(data[1024*i : 1024*(i+1)])`: hence the
 * empty last datagram when L % 1024 == 0. Chunks are views of `data`.
 */
export function seedChunks(data: Buffer): Buffer[] {
  const header = Buffer.alloc(SEED_HEADER_BYTES)
  header.writeBigInt64LE(BigInt(data.length), 0)
  const out: Buffer[] = [header]
  const n = Math.floor(data.length / SEED_CHUNK) + 1
  for (let i = 0; i < n; i++) out.push(data.subarray(SEED_CHUNK * i, SEED_CHUNK * (i + 1)))
  return out
}

interface Image {
  key: string
  length: number
  /** The image's bytes, filled as chunks arrive (pages are touched only as they land). */
  data: Buffer
  got: number
  last: number
}

export interface SeedReceiverOptions {
  maxFrameBytes: number
  timeout: number
  /** Senders with an image in progress at once; the oldest image is given up beyond this. */
  maxPeers?: number
  /** Bytes the images in progress may announce in all; the oldest are given up to make room. */
  maxPendingBytes?: number
  /** Whether a reassembled image may be delivered; isCompleteJpeg by default. */
  isComplete?: (image: Buffer) => boolean
}

export class ChunkedReceiver implements Receiver {
  private readonly o: Required<SeedReceiverOptions>
  private readonly hooks: ReceiverHooks
  /** By sender, oldest first. */
  private readonly images = new Map<string, Image>()
  /** Bytes announced by the images in progress. */
  private pendingBytes = 0

  constructor(o: SeedReceiverOptions, hooks: ReceiverHooks) {
    this.o = { maxPeers: 16, maxPendingBytes: DEFAULT_PENDING_BYTES, isComplete: isCompleteJpeg, ...o }
    this.hooks = hooks
    initCounters(hooks.counters, ['incomplete', 'evicted', 'corrupt', 'garbage'])
  }

  get inProgress(): number {
    return this.images.size
  }

  /** Bytes the images in progress announce (their buffers' sizes). */
  get bytesInProgress(): number {
    return this.pendingBytes
  }

  push(d: Buffer, peer: Peer, now: number): Completed | undefined {
    const key = peerKey(peer)
    let img = this.images.get(key)
    // Checked here too, not only by the timer: an image that went quiet never absorbs the next one.
    if (img && now - img.last >= this.o.timeout) {
      this.giveUp(img, 'incomplete', `no datagram for ${this.o.timeout} ms (${img.got} of ${img.length} bytes)`)
      img = undefined
    }
    if (!img) return this.header(d, key, now, false)
    // Nothing an image needs: the 000b sender's empty datagram comes after the image.
    if (d.length === 0) return undefined
    const expected = Math.min(SEED_CHUNK, img.length - img.got)
    if (d.length !== expected) {
      this.giveUp(
        img,
        'incomplete',
        `expected a chunk of ${expected} bytes, got ${d.length} (${img.got} of ${img.length} bytes): a datagram was lost or repeated`,
      )
      // Out of step: this may be the next image's header.
      return this.header(d, key, now, false)
    }
    d.copy(img.data, img.got)
    img.got += d.length
    img.last = now
    if (img.got < img.length) return undefined
    this.forget(img)
    const data = img.data
    if (!this.o.isComplete(data)) {
      this.drop('corrupt')
      this.hooks.warn(`image of ${img.length} bytes from ${key} dropped: not a complete JPEG (a datagram was lost, repeated or reordered)`)
      // Its own last chunk lost, the next image's header may have completed it.
      if (d.length === SEED_HEADER_BYTES) this.header(d, key, now, true)
      return undefined
    }
    return { data, meta: undefined, peer, ack: undefined }
  }

  expire(now: number): void {
    for (const img of this.images.values()) {
      if (now - img.last >= this.o.timeout)
        this.giveUp(img, 'incomplete', `no datagram for ${this.o.timeout} ms (${img.got} of ${img.length} bytes)`)
    }
  }

  flush(): void {
    for (const img of this.images.values()) this.giveUp(img, 'incomplete', `stream ended (${img.got} of ${img.length} bytes)`)
  }

  /** A datagram while no image is in progress for its sender: a header starts one. */
  private header(d: Buffer, key: string, now: number, quiet: boolean): undefined {
    // WIRE 000b fragility 5: the empty datagram after an image of a multiple of 1024 bytes.
    if (d.length === 0) return undefined
    if (d.length !== SEED_HEADER_BYTES) {
      if (!quiet) this.garbage(key, `expected an 8-byte header, got ${d.length} bytes`)
      return undefined
    }
    const length = d.readBigInt64LE(0)
    const limit = Math.min(this.o.maxFrameBytes, this.o.maxPendingBytes)
    if (length < MIN_IMAGE || length > limit) {
      const which = limit === this.o.maxFrameBytes ? 'maxFrameBytes' : 'maxPendingBytes'
      if (!quiet) this.garbage(key, `header announces ${length} bytes; expected ${MIN_IMAGE}..${limit} (${which})`)
      return undefined
    }
    const n = Number(length)
    while (this.images.size > 0 && (this.images.size >= this.o.maxPeers || this.pendingBytes + n > this.o.maxPendingBytes)) {
      const oldest = this.images.values().next().value as Image
      const why =
        this.images.size >= this.o.maxPeers
          ? `${this.o.maxPeers} senders already have an image in progress`
          : `images in progress would announce more than maxPendingBytes (${this.o.maxPendingBytes})`
      this.giveUp(oldest, 'evicted', why)
    }
    // Uninitialised: every byte is written by a chunk before the image is complete.
    this.images.set(key, { key, length: n, data: Buffer.allocUnsafeSlow(n), got: 0, last: now })
    this.pendingBytes += n
    return undefined
  }

  private forget(img: Image): void {
    if (this.images.delete(img.key)) this.pendingBytes -= img.length
  }

  private giveUp(img: Image, reason: 'incomplete' | 'evicted', why: string): void {
    this.forget(img)
    this.drop(reason)
    this.hooks.warn(`image from ${img.key} dropped: ${why}`)
  }

  private drop(reason: 'incomplete' | 'evicted' | 'corrupt'): void {
    count(this.hooks.counters, reason)
    this.hooks.counters.drops++
  }

  private garbage(key: string, reason: string): void {
    count(this.hooks.counters, 'garbage')
    this.hooks.warn(`ignored a datagram from ${key}: ${reason}`)
  }
}

/** Seed 000a: each datagram is one whole JPEG. */
export class WholeReceiver implements Receiver {
  private readonly maxFrameBytes: number
  private readonly hooks: ReceiverHooks
  private readonly isComplete: (image: Buffer) => boolean

  constructor(o: { maxFrameBytes: number; isComplete?: (image: Buffer) => boolean }, hooks: ReceiverHooks) {
    this.maxFrameBytes = o.maxFrameBytes
    this.isComplete = o.isComplete ?? isCompleteJpeg
    this.hooks = hooks
    initCounters(hooks.counters, ['corrupt', 'garbage'])
  }

  push(d: Buffer, peer: Peer): Completed | undefined {
    const key = peerKey(peer)
    if (d.length === 0) {
      count(this.hooks.counters, 'garbage')
      this.hooks.warn(`ignored an empty datagram from ${key}`)
      return undefined
    }
    if (d.length > this.maxFrameBytes || !this.isComplete(d)) {
      count(this.hooks.counters, 'corrupt')
      this.hooks.counters.drops++
      this.hooks.warn(
        `datagram of ${d.length} bytes from ${key} dropped: ${d.length > this.maxFrameBytes ? `more than maxFrameBytes (${this.maxFrameBytes})` : 'not a complete JPEG'}`,
      )
      return undefined
    }
    return { data: d, meta: undefined, peer, ack: undefined }
  }

  expire(): void {}

  flush(): void {}
}
