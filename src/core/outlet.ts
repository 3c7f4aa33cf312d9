// What a byte source pushes: its records as they are, or, once pipeline() has
// fused the unprefix after it (see Deframer in core/stage.ts), the frames that
// stage's parser makes of them. The TCP sources share this, so that both
// behave alike fused or not.

import type { Readable } from 'node:stream'
import type { FramePipeError } from './errors.js'
import { handOn, type Boundary } from './frame.js'
import type { Deframer } from './stage.js'

export class SourceOutlet {
  private readonly source: Readable
  private deframer: Deframer | undefined

  constructor(source: Readable) {
    this.source = source
  }

  /**
   * Parse from now on: frames are pushed instead of bytes. The buffer then
   * holds frames (megabytes each, maybe), so the source takes the bound of
   * the stage's own output. pipeline() fuses before anything is read, while
   * the buffer is empty; no public setter of that bound exists.
   */
  fuse(deframer: Deframer): void {
    this.deframer = deframer
    // handOn: a pooled frame's buffer must not go back while a second consumer still reads it.
    deframer.attach((frame) => this.source.push(handOn(this.source, frame)))
    ;(this.source as unknown as { _readableState: { highWaterMark: number } })._readableState.highWaterMark = deframer.buffered
  }

  /** A chunk or Boundary downstream, or through the fused stage. Returns whether downstream wants more. */
  send(record: Buffer | Boundary): boolean {
    const deframer = this.deframer
    if (!deframer) return this.source.push(record)
    const err = deframer.feed(record)
    if (err) return this.fail(err)
    return this.source.readableLength < this.source.readableHighWaterMark
  }

  /** The end of the stream; what the fused stage still holds must be nothing, or that is its error. */
  end(): void {
    const err = this.deframer?.end()
    if (err) this.fail(err)
    else this.source.push(null)
  }

  private fail(err: FramePipeError): false {
    this.source.destroy(err)
    return false
  }
}
