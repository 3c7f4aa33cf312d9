// One subscriber of the nats fan-out bench, in its own process (forked by
// bench/nats.ts, 16 of them at most) so that subscribers compete for CPU as
// real ones on one machine would. Driven over IPC:
//   parent → { start: 'nats', server, subject }   nats subject=… ! measure
//   parent → { start: 'tcp', port }               tcp-client port=… ! unprefix header=native ! measure
//   child  → { ready: true }                      subscribed / connected
//   parent → { stop: true, from, to }             end the pipeline; count what arrived in [from, to]
//   child  → tally                                frames, latency p50/p99 (capture → receipt), drops
// Disconnecting the IPC channel ends the process.

import { Writable, type Readable } from 'node:stream'
import { now, type Frame } from '../src/core/frame.js'
import { pipeline, stopSource } from '../src/core/pipeline.js'
import { stageInfo } from '../src/core/stage.js'
import { nats } from '../src/sources/nats.js'
import { tcpClient } from '../src/sources/tcp-client.js'
import { unprefix } from '../src/transforms/unprefix.js'

export type ReceiverStart = { start: 'nats'; server: string; subject: string } | { start: 'tcp'; port: number }
export interface ReceiverStop {
  stop: true
  from: number
  to: number
}
export interface FanTally {
  frames: number
  p50: number
  p99: number
  drops: number
}
export type FanReply = { ready: true } | FanTally | { error: string }

let arrivals: Float64Array = new Float64Array(1 << 16)
let latencies: Float64Array = new Float64Array(1 << 16)
let count = 0
let source: Readable | null = null
let done: Promise<void> | null = null

function record(frame: Frame): void {
  if (count === arrivals.length) {
    const grow = (a: Float64Array) => {
      const b = new Float64Array(a.length * 2)
      b.set(a)
      return b
    }
    arrivals = grow(arrivals)
    latencies = grow(latencies)
  }
  const t = now()
  arrivals[count] = t
  latencies[count] = t - frame.timestamp
  count++
}

const measure = () =>
  new Writable({
    objectMode: true,
    highWaterMark: 1,
    write(frame: Frame, _e, cb) {
      record(frame)
      cb()
    },
  })

function reply(m: FanReply): void {
  process.send!(m)
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}

process.on('message', (m: ReceiverStart | ReceiverStop) => {
  if ('start' in m) {
    count = 0
    if (m.start === 'nats') {
      const s = nats({ server: m.server, subject: m.subject })
      source = s
      s.once('info', () => reply({ ready: true }))
      done = pipeline(s, measure())
    } else {
      const s = tcpClient({ port: m.port })
      source = s
      s.once('connect', () => reply({ ready: true }))
      done = pipeline(s, unprefix({ header: 'native' }), measure())
    }
    done.catch((err: Error) => reply({ error: err.message }))
    return
  }
  const s = source!
  const drops = stageInfo(s)!.counters.drops
  stopSource(s)
  const finish = () => {
    const picked: number[] = []
    for (let i = 0; i < count; i++) if (arrivals[i]! >= m.from && arrivals[i]! <= m.to) picked.push(latencies[i]!)
    const sorted = Float64Array.from(picked).sort()
    reply({ frames: picked.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), drops })
  }
  done!.then(finish, finish)
})
process.on('disconnect', () => process.exit(0))
