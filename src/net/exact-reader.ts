// Read exact byte counts from a socket before its owner takes it over: the
// TLS peek and the token check read their own bytes and not one more, so the
// stream that follows starts at its first byte, without a put-back.
//
// It reads with 'readable' and read(n), which leaves nothing flowing: once
// released (and a tick later, when Node has noticed the listener is gone) the
// socket is in the state a new connection is in, so the owner's 'data'
// listener or pause() work as they would on a socket fresh from connect.

import type { Socket } from 'node:net'

export class ExactReader {
  private readonly socket: Socket
  private readonly fail: (why: string, err?: Error) => void
  private want = 0
  private got: ((bytes: Buffer) => void) | null = null
  private released = false

  /** `fail` runs at most once: the peer closed, reset or errored while bytes were awaited. A close by the owner (destroy) is silent. */
  constructor(socket: Socket, fail: (why: string, err?: Error) => void) {
    this.socket = socket
    this.fail = fail
    socket.on('readable', this.onReadable)
    socket.on('end', this.onEnd)
    socket.on('error', this.onError)
  }

  /** Call `got` with exactly `n` bytes once they have arrived (at once when they are there). */
  read(n: number, got: (bytes: Buffer) => void): void {
    if (this.released) return
    if (n === 0) return got(Buffer.alloc(0))
    this.want = n
    this.got = got
    this.onReadable()
  }

  /** Bytes that arrived but were not asked for yet (for messages: what did the peer send?). */
  get buffered(): number {
    return this.socket.readableLength
  }

  /** Stop reading; the socket is the owner's again (see above: call back a tick later). */
  release(): void {
    if (this.released) return
    this.released = true
    this.got = null
    this.socket.off('readable', this.onReadable)
    this.socket.off('end', this.onEnd)
    this.socket.off('error', this.onError)
  }

  private readonly onReadable = (): void => {
    while (this.got && !this.released) {
      const bytes = this.socket.read(this.want) as Buffer | null
      if (bytes === null) return
      if (bytes.length < this.want) {
        // At the end of the stream read(n) hands over what is left.
        return this.lost(`closed the connection after ${bytes.length} of ${this.want} bytes`)
      }
      const got = this.got
      this.got = null
      got(bytes)
    }
  }

  private readonly onEnd = (): void => this.lost('closed the connection')

  private readonly onError = (err: Error): void =>
    this.lost(`connection failed (${(err as NodeJS.ErrnoException).code ?? err.message})`, err)

  private lost(why: string, err?: Error): void {
    if (this.released) return
    this.release()
    this.fail(why, err)
  }
}
