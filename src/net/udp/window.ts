// The sender's window: at most `size` frames sent and not yet acknowledged.
// When it is full a new frame waits in one slot, and a newer one replaces it
// (live video skips to the newest instead of queueing stale frames). A frame
// unanswered for `timeout` ms frees its slot: a lost ack never stalls the
// sender, unlike the seeds' clients that wait in recv() forever.

export interface Flight<T> {
  item: T
  id: number
  /** Infinity until the last datagram is out. */
  deadline: number
}

export class SendWindow<T> {
  readonly size: number
  readonly timeout: number
  /** Oldest first: ids increase in send order. */
  private readonly flights: Array<Flight<T>> = []
  private waiting: T | undefined

  constructor(size: number, timeout: number) {
    this.size = size
    this.timeout = timeout
  }

  get inFlight(): number {
    return this.flights.length
  }

  get full(): boolean {
    return this.flights.length >= this.size
  }

  /** Nothing in flight and nothing waiting. */
  get idle(): boolean {
    return this.flights.length === 0 && this.waiting === undefined
  }

  get hasWaiting(): boolean {
    return this.waiting !== undefined
  }

  /** Take a slot for `item` (the caller checked `full`). */
  open(item: T, id: number): void {
    this.flights.push({ item, id, deadline: Infinity })
  }

  /** Start the ack clock of flight `id`: its last datagram is out. */
  arm(id: number, now: number): void {
    const f = this.flights.find((x) => x.id === id)
    if (f) f.deadline = now + this.timeout
  }

  /** Park `item` until a slot frees; returns the item it replaced, if one was waiting. */
  park(item: T): T | undefined {
    const replaced = this.waiting
    this.waiting = item
    return replaced
  }

  /** The parked item, once a slot is free. */
  unpark(): T | undefined {
    if (this.full || this.waiting === undefined) return undefined
    const item = this.waiting
    this.waiting = undefined
    return item
  }

  /**
   * An ack naming `id`: frees it and every flight sent before it, which the
   * receiver has given up (it never delivers a frame older than one it
   * delivered). Returns undefined when `id` is not in flight (a late ack).
   */
  ackId(id: number): { acked: T; older: T[] } | undefined {
    const i = this.flights.findIndex((f) => f.id === id)
    if (i < 0) return undefined
    const freed = this.flights.splice(0, i + 1)
    return { acked: freed[i]!.item, older: freed.slice(0, i).map((f) => f.item) }
  }

  /** Forget flight `id` alone (it could not be sent). */
  cancel(id: number): void {
    const i = this.flights.findIndex((f) => f.id === id)
    if (i >= 0) this.flights.splice(i, 1)
  }

  /** A seed reply names no frame: it answers the oldest in flight. */
  ackOldest(): T | undefined {
    return this.flights.shift()?.item
  }

  /** Free every flight whose deadline has passed; returns them. */
  expire(now: number): T[] {
    const out: T[] = []
    for (let i = 0; i < this.flights.length;) {
      if (this.flights[i]!.deadline <= now) out.push(this.flights.splice(i, 1)[0]!.item)
      else i++
    }
    return out
  }

  nextDeadline(): number | undefined {
    let min = Infinity
    for (const f of this.flights) min = Math.min(min, f.deadline)
    return min === Infinity ? undefined : min
  }

  /** The end: whatever waits is given back (the caller sends or counts it). */
  takeParked(): T | undefined {
    const item = this.waiting
    this.waiting = undefined
    return item
  }
}
