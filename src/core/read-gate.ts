// The pause/resume gate of a source fed by a producer it can hold back (a
// socket, an HTTP response, a queue of received frames): when push() says the
// readable buffer is full the producer is paused, and the next _read resumes
// it. So a slow consumer holds the producer back (through TCP, the peer)
// instead of frames piling up in memory.

/** What the gate holds back: pause() when downstream is full, resume() when it asks for more. */
export interface Producer {
  pause(): void
  resume(): void
}

export class ReadGate {
  /** Downstream wants more (cleared when push() says the buffer is full). */
  private wanted = true
  private readonly producer: Producer

  constructor(producer: Producer) {
    this.producer = producer
  }

  /** Whether downstream wants more: a producer that starts now starts paused when it does not. */
  get open(): boolean {
    return this.wanted
  }

  /** Give it what push() returned: false closes the gate and pauses the producer. Returns `more`. */
  pushed(more: boolean): boolean {
    if (!more) {
      this.wanted = false
      this.producer.pause()
    }
    return more
  }

  /** Call from _read: downstream wants more, so the producer resumes. */
  read(): void {
    this.wanted = true
    this.producer.resume()
  }
}
