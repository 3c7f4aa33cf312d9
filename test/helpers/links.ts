// Two ends of a TCP link in this process, for the TLS and token tests: frames
// go through prefix header=native and come back through unprefix. 'serve':
// tcp-server sink → tcp-client source (a viewer connects to a camera);
// 'send': tcp-client sink → tcp-server source (a camera sends to a recorder).
// Each returns the frames that arrived, the client's error if it failed, and
// the server's 'client' events (joins, and refusals with their reasons).

import type { ExecutionContext } from 'ava'
import { once } from 'node:events'
import type { EventEmitter } from 'node:events'
import { makeFrame, type Frame } from '../../src/core/frame.js'
import { pipeline } from '../../src/core/pipeline.js'
import type { ClientEvent } from '../../src/net/socket.js'
import { tcpServer as tcpServerSink, type TcpServerSinkOptions } from '../../src/sinks/tcp-server.js'
import { tcpClient as tcpClientSink, type TcpClientSinkOptions } from '../../src/sinks/tcp-client.js'
import { tcpServer as tcpServerSource, type TcpServerSourceOptions } from '../../src/sources/tcp-server.js'
import { tcpClient as tcpClientSource, type TcpClientSourceOptions } from '../../src/sources/tcp-client.js'
import { prefix } from '../../src/transforms/prefix.js'
import { unprefix } from '../../src/transforms/unprefix.js'
import { fromItems, withTimeout } from './index.js'
import { keep } from './seeds.js'

/** `n` small JPEG-shaped frames, each carrying its index. */
export function frames(n: number, size = 2000): Frame[] {
  return Array.from({ length: n }, (_, i) => {
    const data = Buffer.alloc(size, i & 0xff)
    data[0] = 0xff
    data[1] = 0xd8
    data.writeUInt32BE(i, 2)
    return makeFrame(data, { seq: i, width: 64, height: 48, channels: 3, timestamp: 1_700_000_000_000 + i })
  })
}

/** Events of one name, kept, with a wait for one that matches. */
export class Events<T> {
  readonly list: T[] = []
  private waiters: Array<() => void> = []

  constructor(emitter: EventEmitter, name: string) {
    emitter.on(name, (e: T) => {
      this.list.push(e)
      for (const w of this.waiters.splice(0)) w()
    })
  }

  /** The first event (already seen or coming) for which `match` holds. */
  async find(match: (e: T) => boolean, what: string, ms = 8000): Promise<T> {
    return withTimeout(
      (async () => {
        for (;;) {
          const found = this.list.find(match)
          if (found !== undefined) return found
          await new Promise<void>((resolve) => this.waiters.push(resolve))
        }
      })(),
      ms,
      what,
    )
  }
}

export interface LinkResult {
  got: Frame[]
  /** The client side's failure, if it failed. */
  error: Error | undefined
  /** The server's 'client' events. */
  events: Events<ClientEvent>
  port: number
}

/** A refusal among the server's events: its reason (after 'refused: '). */
export async function refusal(events: Events<ClientEvent>): Promise<string> {
  const e = await events.find((x) => x.event === 'leave' && (x.reason ?? '').startsWith('refused: '), 'the server refuses the client')
  return e.reason!.slice('refused: '.length)
}

/** tcp-server sink (serving `n` frames to one client) ← tcp-client source. */
export async function serveLink(
  t: ExecutionContext,
  server: Partial<TcpServerSinkOptions>,
  client: Partial<TcpClientSourceOptions>,
  n = 3,
): Promise<LinkResult> {
  const sink = tcpServerSink({ port: 0, wait: 1, ...server })
  const events = new Events<ClientEvent>(sink, 'client')
  const serving = pipeline(fromItems(frames(n)), prefix({ header: 'native' }), sink)
  serving.catch(() => undefined)
  t.teardown(() => {
    sink.destroy()
  })
  if (!sink.address()) await withTimeout(once(sink, 'listening'), 5000, 'listening')
  const port = sink.address()!.port
  const got: Frame[] = []
  const error = await withTimeout(
    pipeline(tcpClientSource({ port, ...client } as TcpClientSourceOptions), unprefix({ header: 'native' }), keep(got)).then(
      () => undefined,
      (err: Error) => err,
    ),
    15_000,
    'client pipeline',
  )
  return { got, error, events, port }
}

/** tcp-client sink (sending `n` frames) → tcp-server source (one client). */
export async function sendLink(
  t: ExecutionContext,
  server: Partial<TcpServerSourceOptions>,
  client: Partial<TcpClientSinkOptions>,
  n = 3,
): Promise<LinkResult & { received: Promise<Frame[]> }> {
  const source = tcpServerSource({ port: 0, once: true, ...server })
  const events = new Events<ClientEvent>(source, 'client')
  const got: Frame[] = []
  const receiving = pipeline(source, unprefix({ header: 'native' }), keep(got)).then(() => got)
  receiving.catch(() => undefined)
  t.teardown(() => {
    source.destroy()
  })
  await withTimeout(once(source, 'listening'), 5000, 'listening')
  const port = source.address()!.port
  const error = await withTimeout(
    pipeline(fromItems(frames(n)), prefix({ header: 'native' }), tcpClientSink({ port, ...client } as TcpClientSinkOptions)).then(
      () => undefined,
      (err: Error) => err,
    ),
    15_000,
    'client pipeline',
  )
  return { got, error, events, port, received: receiving }
}
