// Payload buffers for frames that a receiver assembles from pieces (a body
// spanning socket chunks). Every such frame used to get a fresh buffer of its
// length: for a 640x480 JPEG relay at 10,000 frames a second that is half a
// gigabyte of external memory a second, and V8 answers external memory with a
// scavenge every few milliseconds, plus a page fault per fresh page. A frame's
// buffer comes back here when its last holder releases it (Frame.release), and
// the next frame of about the same size is read into it.
//
// Sizes vary from frame to frame (every JPEG is its own size), so a buffer is
// made with some headroom and serves any length it can hold without wasting
// more than half of itself. Bounded: at most MAX_BUFFERS buffers and MAX_BYTES
// bytes are kept; a buffer given back past either bound is left to the garbage
// collector. When nothing kept fits (the frames changed size), the oldest kept
// buffer is let go, so the pool turns over to the new size.

const MAX_BUFFERS = 8
const MAX_BYTES = 16 * 1024 * 1024
/** Below this Buffer.allocUnsafe takes a slice of Node's shared 8 KiB slab, which costs less than pooling. */
export const MIN_POOLED_BYTES = 4096

export class BodyPool {
  private readonly free: Buffer[] = []
  private freeBytes = 0

  /** A buffer of at least `length` bytes (more when taken from the pool or made with headroom); read into its first `length`. */
  take(length: number): Buffer {
    const free = this.free
    for (let i = free.length - 1; i >= 0; i--) {
      const buf = free[i]!
      if (buf.length >= length && buf.length <= length * 2) {
        free[i] = free[free.length - 1]!
        free.pop()
        this.freeBytes -= buf.length
        return buf
      }
    }
    const oldest = free.shift()
    if (oldest) this.freeBytes -= oldest.length
    // An eighth more: the next frames of a stream are a few percent larger or smaller.
    return Buffer.allocUnsafeSlow(length + (length >>> 3))
  }

  /** Back from a frame's last holder: kept for the next frame, within the bounds. */
  give(buf: Buffer): void {
    if (this.free.length >= MAX_BUFFERS || this.freeBytes + buf.length > MAX_BYTES) return
    this.free.push(buf)
    this.freeBytes += buf.length
  }

  /** Buffers kept now (for tests and stats). */
  get size(): number {
    return this.free.length
  }
}
