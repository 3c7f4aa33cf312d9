// Seed 004's protocol pieces, shared by reg-server and reg-client: the
// registration text (a UDP port as ASCII digits over TCP), the UDP replies,
// and the original server's log line format (Python's datetime and tuple repr).

import type { Socket as UdpSocket } from 'node:dgram'

export { MAX_DATAGRAM } from '../../net/udp/native.js'

/** The client's reply after each frame (8 bytes). */
export const CONTINUE = Buffer.from('continue', 'ascii')
/** The client's last reply (3 bytes); the original compares `reply.decode('utf-8') == 'end'`. */
export const END = Buffer.from('end', 'ascii')

export function isEnd(reply: Buffer): boolean {
  return reply.equals(END)
}

/** More bytes than any port text needs, even with whitespace around it. */
export const MAX_REGISTRATION_BYTES = 16

export type Registration = { port: number } | { error: string }

/**
 * Read the registration text received so far. The original parses it with
 * Python's `int(text)`, which allows whitespace around the digits; so do we
 * (a netcat user sends "40000\n"). Returns undefined while more may follow:
 * digits not yet followed by whitespace can still grow ("400" + "00"), unless
 * `final` says nothing more will come (quiet time or end of the connection).
 */
export function parseRegistration(text: string, final: boolean): Registration | undefined {
  if (text.length > MAX_REGISTRATION_BYTES) return { error: `registration longer than ${MAX_REGISTRATION_BYTES} bytes: ${show(text)}` }
  // Python's int() also takes '+', '_' and non-ASCII digits; the original client sends str(int), plain digits.
  if (/[^0-9 \t\n\v\f\r]/.test(text)) return { error: `registration is not a port number: ${show(text)}` }
  if (/[0-9][ \t\n\v\f\r]+[0-9]/.test(text)) return { error: `registration is not one port number: ${show(text)}` }
  const m = /^\s*([0-9]+)(\s*)$/.exec(text)
  if (!m) return final ? { error: `registration is empty: ${show(text)}` } : undefined
  if (!final && m[2] === '') return undefined
  const port = Number(m[1])
  if (port < 1 || port > 65535) return { error: `registered UDP port ${m[1]} is out of range 1..65535` }
  return { port }
}

function show(text: string): string {
  return JSON.stringify(text.length > 40 ? text.slice(0, 40) + '…' : text)
}

/** An IPv4 peer of a dual-stack socket, as the UDP side wants it. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}

/**
 * `str(datetime.now())` for a time in ms since the epoch, in local time:
 * `2022-12-04 23:25:34.123456`, or without `.ffffff` when the microseconds are 0.
 */
export function pythonDatetime(ms: number): string {
  const totalUs = Math.round(ms * 1000)
  const seconds = Math.floor(totalUs / 1e6)
  const us = totalUs - seconds * 1e6
  const d = new Date(seconds * 1000)
  const two = (n: number) => String(n).padStart(2, '0')
  const text = `${String(d.getFullYear()).padStart(4, '0')}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`
  return us === 0 ? text : `${text}.${String(us).padStart(6, '0')}`
}

/** Python's repr of an address tuple: `('127.0.0.1', 40000)`. */
export function pythonAddress(ip: string, port: number): string {
  return `('${ip}', ${port})`
}

/** One line of the original server's log (`ServerLog.txt`), with its newline. */
export function serverLogLine(event: 'join' | 'exit', ip: string, port: number, ms: number): string {
  return `${pythonDatetime(ms)} 客户端${pythonAddress(ip, port)} ${event === 'join' ? '接入' : '退出'}\n`
}

/**
 * A UDP socket whose close waits for the sends in progress: dgram resolves
 * the destination asynchronously (even an IP literal, on the next tick), so a
 * close() right after send() would silently drop the datagram, e.g. the
 * `end` of a client that stops, or a server's last frame.
 */
export class UdpOutbox {
  readonly socket: UdpSocket
  private pending = 0
  private closing: Promise<void> | null = null
  private idle: (() => void) | null = null

  constructor(socket: UdpSocket) {
    this.socket = socket
  }

  /** Send one datagram; `onError` hears of a failed send (the datagram is then as good as lost). */
  send(data: Buffer, port: number, address: string, onError: (err: Error) => void): void {
    if (this.closing) return
    this.pending++
    this.socket.send(data, port, address, (err) => {
      this.pending--
      if (err) onError(err)
      if (this.pending === 0) this.idle?.()
    })
  }

  /** Close once every send has gone out; resolves when closed. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const shut = () => {
        this.idle = null
        try {
          this.socket.close(() => resolve())
        } catch (err) {
          // Already closed (e.g. after a socket error): nothing left to wait for.
          if ((err as NodeJS.ErrnoException).code !== 'ERR_SOCKET_DGRAM_NOT_RUNNING') throw err
          resolve()
        }
      }
      if (this.pending === 0) shut()
      else this.idle = shut
    })
    return this.closing
  }
}
