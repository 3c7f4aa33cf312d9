// Fan-out of JPEG frames to 1, 4 and 16 subscriber processes: through
// nats-server (nats sink ⇢ nats-server ⇢ nats source) against frame-pipe's
// direct TCP fan-out (prefix header=native ! tcp-server ⇢ tcp-client !
// unprefix), in the same run, the same frames, the same subscriber processes
// (forked once: bench/nats-receiver.ts). Each case runs twice:
//   as fast as possible: frames/s each subscriber gets (the publisher never
//     waits for a subscriber in either design: tcp-server drops per client,
//     nats-server cuts off a client that falls too far behind, subscribers
//     drop to the newest frame);
//   at 30 fps, a camera's rate: latency from capture to receipt, p50/p99.
// Notes give the CPU of the publisher (this process) and of nats-server
// (from /proc), as a share of one core.

import { fork, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { once } from 'node:events'
import { delimiter, join } from 'node:path'
import { Readable, type Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { makeFrame, now } from '../src/core/frame.js'
import { pipeline } from '../src/core/pipeline.js'
import { stageInfo } from '../src/core/stage.js'
import { nats } from '../src/sinks/nats.js'
import { tcpServer } from '../src/sinks/tcp-server.js'
import { prefix } from '../src/transforms/prefix.js'
import type { FanReply, FanTally, ReceiverStart, ReceiverStop } from './nats-receiver.js'
import type { Bench, BenchRow } from './types.js'
import { jpegNear } from './jpeg-near.js'

const GROUP = 'nats fan-out'
const SUBSCRIBERS = [1, 4, 16] as const
/** Measured span of each run, after WARMUP_MS that is not counted. */
const RUN_MS = 2000
const WARMUP_MS = 500
const CAMERA_FPS = 30

type Transport = 'nats' | 'tcp'
type Pace = 'max' | 'camera'

function findNatsServer(): string | undefined {
  const dirs = ['/usr/sbin', '/usr/bin', ...(process.env.PATH ?? '').split(delimiter)]
  return dirs.map((d) => join(d, 'nats-server')).find((p) => existsSync(p))
}

/** The subscriber processes, reused by every case; each answers one request at a time. */
class Receivers {
  private readonly children: ChildProcess[] = []
  private readonly waiting: Array<((m: FanReply) => void) | null> = []

  constructor(n: number) {
    const self = fileURLToPath(import.meta.url)
    const ts = self.endsWith('.ts')
    const script = self.replace(/nats\.(ts|js)$/, ts ? 'nats-receiver.ts' : 'nats-receiver.js')
    const execArgv = ts && !process.execArgv.some((a) => a.includes('tsx')) ? [...process.execArgv, '--import', 'tsx'] : process.execArgv
    for (let i = 0; i < n; i++) {
      const child = fork(script, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      child.on('message', (m: FanReply) => {
        const w = this.waiting[i]
        this.waiting[i] = null
        w?.(m)
      })
      this.children.push(child)
      this.waiting.push(null)
    }
  }

  ask(i: number, message: ReceiverStart | ReceiverStop, ms = 20_000): Promise<FanReply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`subscriber ${i} did not answer within ${ms} ms`)), ms)
      this.waiting[i] = (m) => {
        clearTimeout(timer)
        resolve(m)
      }
      this.children[i]!.send(message)
    })
  }

  async close(): Promise<void> {
    await Promise.all(
      this.children.map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null) return
        const exited = once(c, 'exit')
        c.disconnect()
        const timer = setTimeout(() => c.kill(), 2000)
        await exited
        clearTimeout(timer)
      }),
    )
  }
}

/** nats-server on a random loopback port; resolves with its port once it listens. */
async function startNatsServer(path: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(path, ['-a', '127.0.0.1', '-p', '-1'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server did not start:\n${log}`)), 10_000)
    child.stderr!.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-10_000)
      const m = /Listening for client connections on [^\s]+:(\d+)/.exec(log)
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    })
    child.once('exit', () => {
      clearTimeout(timer)
      reject(new Error(`nats-server exited:\n${log}`))
    })
  })
  // Keep draining its log so that it never blocks on a full pipe.
  child.stderr!.resume()
  return { child, port }
}

/** CPU time (user + system) of a process, in ms, from /proc. */
function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10
}

function selfCpuMs(): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

/** Frames of one JPEG, stamped with their capture time when made: as fast as read, or at a camera's rate (a frame not taken in time is skipped, as a camera drops it). */
function frames(jpeg: Buffer, width: number, height: number, pace: Pace, until: number): Readable {
  let seq = 0
  const make = () => makeFrame(jpeg, { format: 'jpeg', width, height, channels: 3, seq: seq++, timestamp: now() })
  if (pace === 'max') {
    return new Readable({
      objectMode: true,
      highWaterMark: 1,
      read() {
        this.push(now() < until ? make() : null)
      },
    })
  }
  const start = now()
  let k = 0
  let timer: NodeJS.Timeout | undefined
  const r = new Readable({
    objectMode: true,
    highWaterMark: 1,
    read() {},
    destroy(err, cb) {
      clearTimeout(timer)
      cb(err)
    },
  })
  const tick = () => {
    if (now() >= until) return void r.push(null)
    // A camera does not wait: when the pipeline still holds the last frame, this one is lost.
    if (r.readableLength === 0) r.push(make())
    k++
    timer = setTimeout(tick, Math.max(0, start + (k * 1000) / CAMERA_FPS - now()))
  }
  tick()
  return r
}

interface CaseResult {
  tallies: FanTally[]
  pubCpu: number
  serverCpu: number | null
  publisherDrops: number
}

async function runCase(
  receivers: Receivers,
  transport: Transport,
  n: number,
  pace: Pace,
  jpeg: Buffer,
  width: number,
  height: number,
  natsServer: { child: ChildProcess; port: number },
  caseNo: number,
): Promise<CaseResult> {
  const ids = Array.from({ length: n }, (_, i) => i)
  const subject = `bench.case${caseNo}`
  let sink: Writable
  let listening: Promise<unknown[]> | undefined
  if (transport === 'nats') {
    await Promise.all(ids.map((i) => receivers.ask(i, { start: 'nats', server: `127.0.0.1:${natsServer.port}`, subject })))
    sink = nats({ server: `127.0.0.1:${natsServer.port}`, subject })
  } else {
    // The first frame waits for every subscriber (wait=n); then tcp-server never waits for one.
    sink = tcpServer({ port: 0, wait: n, maxQueue: 8 })
    listening = once(sink, 'listening')
  }
  const serverPid = natsServer.child.pid!
  const from = now() + WARMUP_MS
  const to = from + RUN_MS
  // CPU over the measured span: sampled when it starts, and when it ends or the run does, whichever is first.
  let start: { t: number; self: number; server: number } | null = null
  let pubCpu = 0
  let serverCpu: number | null = null
  const sampleStart = setTimeout(() => {
    start = { t: now(), self: selfCpuMs(), server: cpuMsOf(serverPid) }
  }, WARMUP_MS)
  const sampleEnd = () => {
    if (!start) return
    const span = now() - start.t
    pubCpu = (selfCpuMs() - start.self) / span
    if (transport === 'nats') serverCpu = (cpuMsOf(serverPid) - start.server) / span
    start = null
  }
  const endTimer = setTimeout(sampleEnd, WARMUP_MS + RUN_MS)
  const source = frames(jpeg, width, height, pace, to)
  const run = transport === 'nats' ? pipeline(source, sink) : pipeline(source, prefix({ header: 'native' }), sink)
  if (listening) {
    const [address] = (await listening) as [{ port: number }]
    await Promise.all(ids.map((i) => receivers.ask(i, { start: 'tcp', port: address.port })))
  }
  await run
  sampleEnd()
  clearTimeout(sampleStart)
  clearTimeout(endTimer)
  const replies = await Promise.all(ids.map((i) => receivers.ask(i, { stop: true, from, to })))
  const tallies = replies.map((r, i) => {
    if ('error' in r) throw new Error(`subscriber ${i}: ${r.error}`)
    if (!('frames' in r)) throw new Error(`subscriber ${i}: expected a tally`)
    return r
  })
  return { tallies, pubCpu, serverCpu, publisherDrops: stageInfo(sink)!.counters.drops }
}

const pct = (share: number) => `${Math.round(share * 100)}%`

export const bench: Bench = async () => {
  const path = findNatsServer()
  if (!path) {
    process.stderr.write('nats bench skipped: nats-server is not installed (Debian package nats-server)\n')
    return []
  }
  const rows: BenchRow[] = []
  const receivers = new Receivers(Math.max(...SUBSCRIBERS))
  const server = await startNatsServer(path)
  let caseNo = 0
  try {
    for (const [label, width, height, target] of [
      ['640x480', 640, 480, 50_000],
      ['1080p', 1920, 1080, 250_000],
    ] as const) {
      const jpeg = await jpegNear(width, height, target)
      const what = `${label} JPEG (${Math.round(jpeg.length / 1000)} KB)`
      // Warm both paths up before the clock counts.
      await runCase(receivers, 'nats', 1, 'max', jpeg, width, height, server, caseNo++)
      await runCase(receivers, 'tcp', 1, 'max', jpeg, width, height, server, caseNo++)
      for (const n of SUBSCRIBERS) {
        for (const pace of ['max', 'camera'] as const) {
          for (const transport of ['nats', 'tcp'] as const) {
            const r = await runCase(receivers, transport, n, pace, jpeg, width, height, server, caseNo++)
            const fpsEach = r.tallies.map((t) => t.frames / (RUN_MS / 1000))
            const mean = fpsEach.reduce((a, b) => a + b, 0) / fpsEach.length
            const p50 = median(r.tallies.map((t) => t.p50))
            const p99 = Math.max(...r.tallies.map((t) => t.p99))
            const drops = r.tallies.reduce((a, t) => a + t.drops, 0)
            const via = transport === 'nats' ? 'nats ⇢ nats-server' : 'tcp-server direct'
            const cpu = `CPU publisher ${pct(r.pubCpu)}${r.serverCpu !== null ? `, nats-server ${pct(r.serverCpu)}` : ''}`
            const dropNote = `${drops > 0 ? `; subscribers dropped ${drops}` : ''}${r.publisherDrops > 0 ? `; publisher dropped ${r.publisherDrops}` : ''}`
            const name = `${what} → ${n} sub${n === 1 ? '' : 's'}, ${via}, ${pace === 'max' ? 'max rate' : `${CAMERA_FPS} fps`}`
            if (pace === 'max') {
              rows.push({
                group: GROUP,
                name,
                value: mean,
                unit: 'frames/s per sub',
                note: `min ${Math.min(...fpsEach).toFixed(0)}; latency p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms; ${cpu}${dropNote}`,
              })
            } else {
              rows.push({
                group: GROUP,
                name,
                value: p50,
                unit: 'ms latency p50',
                note: `p99 ${p99.toFixed(1)} ms; ${mean.toFixed(1)} frames/s per sub; ${cpu}${dropNote}`,
              })
            }
          }
        }
      }
    }
  } finally {
    await receivers.close()
    server.child.kill()
  }
  return rows
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? NaN
}
