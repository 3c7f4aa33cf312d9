// UDP transports over loopback, sender and receiver in this process, the same
// 40 KB JPEG for the same time in every case: frames/s delivered and how many
// went missing. Baseline: the native TCP path (prefix → tcp-client ⇢
// tcp-server → unprefix), measured in the same run. Ack-paced cases pay one
// round trip per window; window 4 shows what pipelining buys; ack=none shows
// the raw datagram path (and its losses when the receiver falls behind).

import { once } from 'node:events'
import { Readable, Writable, type Stream } from 'node:stream'
import { makeFrame, type Frame } from '../src/core/frame.js'
import { pipeline } from '../src/core/pipeline.js'
import { tcpClient } from '../src/sinks/tcp-client.js'
import { udpClient, type UdpClientSinkOptions } from '../src/sinks/udp-client.js'
import { tcpServer } from '../src/sources/tcp-server.js'
import { udpServer } from '../src/sources/udp-server.js'
import { prefix } from '../src/transforms/prefix.js'
import { unprefix } from '../src/transforms/unprefix.js'
import { stageInfo } from '../src/core/stage.js'
import type { Bench, BenchRow } from './types.js'
import { jpegNear } from './jpeg-near.js'

const GROUP = 'udp'
const CASE_MS = 2000

interface Result {
  fps: number
  sent: number
  got: number
}

/** The same frame, new seq each time, until stopped. */
function endless(frame: Frame): Readable & { halt(): void } {
  let seq = 0
  let halted = false
  const r = new Readable({
    objectMode: true,
    highWaterMark: 1,
    read() {
      this.push(halted ? null : { ...frame, seq: seq++ })
    },
  }) as Readable & { halt(): void }
  r.halt = () => {
    halted = true
  }
  return r
}

function counter(onFrame: () => void): Writable {
  return new Writable({
    objectMode: true,
    highWaterMark: 4,
    write(_f, _e, cb) {
      onFrame()
      cb()
    },
  })
}

interface Run {
  source: Readable & { halt(): void }
  /** The sending stages after the source, ending with the sink. */
  stages: Stream[]
  /** Frames the sink sent. */
  sent(): number
  /** Wait for the receiving side to end. */
  end(): Promise<void>
}

async function measure(start: (count: () => void) => Promise<Run>): Promise<Result> {
  let got = 0
  const run = await start(() => got++)
  const t0 = performance.now()
  const sending = pipeline(run.source, ...run.stages)
  await new Promise((r) => setTimeout(r, CASE_MS))
  run.source.halt()
  await sending
  const ms = performance.now() - t0
  await run.end()
  return { fps: (got * 1000) / ms, sent: run.sent(), got }
}

function udpCase(frame: Frame, proto: 'native' | 'whole' | 'chunked', client: UdpClientSinkOptions): Promise<Result> {
  return measure(async (count) => {
    const server = udpServer({ port: 0, proto })
    const receiving = pipeline(server, counter(count))
    await once(server, 'listening')
    const sink = udpClient({ port: server.address()!.port, proto, whenFull: 'wait', ...client })
    return {
      source: endless(frame),
      stages: [sink],
      sent: () => stageInfo(sink)!.counters.frames,
      end: async () => {
        // Datagrams still in flight when the sender stops get a moment to land.
        await new Promise((r) => setTimeout(r, 100))
        server.stop()
        await receiving
      },
    }
  })
}

function tcpCase(frame: Frame): Promise<Result> {
  return measure(async (count) => {
    const server = tcpServer({ port: 0, once: true })
    const receiving = pipeline(server, unprefix({ header: 'native' }), counter(count))
    await once(server, 'listening')
    const sink = tcpClient({ port: server.address()!.port })
    return {
      source: endless(frame),
      stages: [prefix({ header: 'native' }), sink],
      sent: () => stageInfo(sink)!.counters.frames,
      end: () => receiving,
    }
  })
}

export const bench: Bench = async () => {
  const raw = await jpegNear(640, 480, 40_000, { atMost: true })
  const frame = makeFrame(raw, { width: 640, height: 480, channels: 3 })
  const kb = Math.round(raw.length / 1000)
  const cases: Array<[string, () => Promise<Result>]> = [
    ['tcp native (baseline)', () => tcpCase(frame)],
    ['udp native, window 1', () => udpCase(frame, 'native', {})],
    ['udp native, window 4', () => udpCase(frame, 'native', { window: 4 })],
    ['udp native, mtu 65507', () => udpCase(frame, 'native', { mtu: 65_507 })],
    ['udp native, ack=none', () => udpCase(frame, 'native', { ack: 'none' })],
    ['udp chunked (seed 000b), window 1', () => udpCase(frame, 'chunked', {})],
    ['udp whole (seed 000a), window 1', () => udpCase(frame, 'whole', {})],
  ]
  const rows: BenchRow[] = []
  let base = 0
  for (const [name, run] of cases) {
    const r = await run()
    if (base === 0) base = r.fps
    const lost = r.sent - r.got
    rows.push({
      group: GROUP,
      name: `${kb} KB JPEG, ${name}`,
      value: r.fps,
      unit: 'frames/s',
      note: `${(r.fps / base).toFixed(2)}× tcp; ${r.got} delivered${lost > 0 ? `, ${lost} lost` : ''}`,
    })
  }
  return rows
}
