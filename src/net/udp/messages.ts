// Seed 000c's second port: client 2 sends a JSON list (`[0, 0, 0, 1]`) every
// 10 ms and waits for `get the msg`. The server side answers each valid JSON
// datagram; the original's message thread dies on the first non-JSON or
// non-UTF-8 datagram, here that is a counted warning. The client side waits
// for each reply like the original, but only up to a timeout.

import type { Socket } from 'node:dgram'
import type { Counters } from '../../core/stage.js'
import { formatAddress } from '../socket.js'
import { SEED_MSG_REPLY } from './seed.js'

export interface MessageEvent {
  peer: string
  value: unknown
}

export interface MessageHooks {
  counters: Counters
  warn(message: string): void
  message(event: MessageEvent): void
}

const utf8 = new TextDecoder('utf-8', { fatal: true })
const REPLY = Buffer.from(SEED_MSG_REPLY)

/** Answer every JSON datagram on `socket` with `get the msg`; counts `messages` and `badMessages`. */
export function serveMessages(socket: Socket, hooks: MessageHooks): void {
  hooks.counters.messages = 0
  hooks.counters.badMessages = 0
  socket.on('message', (d: Buffer, rinfo) => {
    const peer = formatAddress(rinfo.address, rinfo.port)
    let value: unknown
    try {
      value = JSON.parse(utf8.decode(d))
    } catch (err) {
      hooks.counters.badMessages++
      hooks.warn(`ignored a message of ${d.length} bytes from ${peer}: ${(err as Error).message}`)
      return
    }
    hooks.counters.messages++
    hooks.message({ peer, value })
    socket.send(REPLY, rinfo.port, rinfo.address, (err) => {
      if (err) hooks.warn(`could not answer ${peer}: ${err.message}`)
    })
  })
}

export interface MessageSenderOptions {
  message: Buffer
  /** Pause after each send, like client 2's time.sleep(0.01). */
  interval: number
  /** Give up waiting for a reply after this long (counted in msgUnanswered) and send the next. */
  timeout: number
}

/**
 * Client 2's loop on a socket connected to the message port: send, sleep
 * `interval`, wait for the reply (at most `timeout` after the send), repeat.
 * Counts `messages` sent, `msgReplies` and `msgUnanswered`.
 */
export class MessageSender {
  private readonly socket: Socket
  private readonly o: MessageSenderOptions
  private readonly counters: Counters
  private readonly warn: (message: string) => void
  private timer: NodeJS.Timeout | null = null
  private sentAt = 0
  private answered = false
  private slept = false
  private stopped = false

  constructor(socket: Socket, o: MessageSenderOptions, hooks: { counters: Counters; warn(message: string): void }) {
    this.socket = socket
    this.o = o
    this.counters = hooks.counters
    this.warn = hooks.warn
    this.counters.messages = 0
    this.counters.msgReplies = 0
    this.counters.msgUnanswered = 0
    socket.on('message', () => this.onReply())
  }

  start(): void {
    this.send()
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  private send(): void {
    if (this.stopped) return
    this.answered = false
    this.slept = false
    this.sentAt = Date.now()
    this.counters.messages++
    this.socket.send(this.o.message, (err) => {
      if (err) this.warn(`could not send a message: ${err.message}`)
    })
    this.timer = setTimeout(() => this.afterSleep(), this.o.interval)
  }

  private afterSleep(): void {
    this.slept = true
    if (this.answered) return this.send()
    this.timer = setTimeout(
      () => {
        this.counters.msgUnanswered++
        this.warn(`no answer to a message within ${this.o.timeout} ms`)
        this.send()
      },
      Math.max(0, this.sentAt + this.o.timeout - Date.now()),
    )
  }

  private onReply(): void {
    this.counters.msgReplies++
    if (this.answered || this.stopped) return
    this.answered = true
    if (this.slept) {
      if (this.timer) clearTimeout(this.timer)
      this.send()
    }
  }
}
