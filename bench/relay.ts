// Relay throughput over loopback TCP with sender and receiver in separate
// processes, as in a real deployment and in GStreamer's figure: this process
// sends pre-encoded JPEG frames, a forked bench/relay-receiver process
// receives them and measures frames/s and MB/s from the connection to the
// last frame. Cases, all with the same frames for the same time:
//   frame-pipe:  prefix → tcp-client  ⇢  tcp-server → unprefix → null
//   bare loop:   hand-written socket code on both ends (4-byte length, header
//                and payload corked into one writev; the receiver gathers
//                each frame whole as unprefix does: a view when the frame
//                lies in one chunk, else one allocation and copies) — the
//                baseline
//   bare loop, no copy: the receiver only parses headers and counts bytes,
//                to show what gathering costs
//   and the two mixed pairs (frame-pipe on one end, bare on the other), which
//   tell which end the machinery costs on.
// Cases run in alternating slices so a change in machine load hits all alike.
// Notes give each end's CPU (user + system, share of one core), the
// receiver's CPU time and socket reads per frame, and what tcp-client
// dropped: it never waits for the server (drop-oldest), so a source as fast
// as this one keeps the sender busy making frames that are dropped.
// Reference points on this kind of machine: GStreamer ~30,000 frames/s of
// 47 KB, the bare loop ~70,000.

import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import net, { type Socket } from 'node:net'
import { Readable, type Stream } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { makeFrame, type Frame } from '../src/core/frame.js'
import { pipeline } from '../src/core/pipeline.js'
import { tcpClient } from '../src/sinks/tcp-client.js'
import { stageInfo } from '../src/core/stage.js'
import { prefix } from '../src/transforms/prefix.js'
import type { ReceiverMode, ReceiverReply, ReceiverTally } from './relay-receiver.js'
import type { Bench, BenchRow } from './types.js'
import { jpegNear } from './jpeg-near.js'

const GROUP = 'relay'
const CASE_MS = 2500
const ROUNDS = 5
const WARMUP_MS = 300

/** Measured at the receiver, plus each end's CPU time (user + system) and tcp-client's drops. */
interface Tally {
  frames: number
  bytes: number
  reads: number
  ms: number
  recvCpuMs: number
  sendCpuMs: number
  sendMs: number
  drops: number
}

const emptyTally = (): Tally => ({ frames: 0, bytes: 0, reads: 0, ms: 0, recvCpuMs: 0, sendCpuMs: 0, sendMs: 0, drops: 0 })

function addTally(sum: Tally, t: Tally): void {
  for (const k of Object.keys(sum) as Array<keyof Tally>) sum[k] += t[k]
}
type Sender = 'frame-pipe' | 'bare'
interface Case {
  key: string
  sender: Sender
  receiver: ReceiverMode
}

const CASES: readonly Case[] = [
  { key: 'fp', sender: 'frame-pipe', receiver: 'frame-pipe' },
  { key: 'bare', sender: 'bare', receiver: 'bare' },
  { key: 'nocopy', sender: 'bare', receiver: 'bare-nocopy' },
  { key: 'bare→fp', sender: 'bare', receiver: 'frame-pipe' },
  { key: 'fp→bare', sender: 'frame-pipe', receiver: 'bare' },
]

/** The forked receiver process, one run at a time. */
class Receiver {
  private readonly child: ChildProcess
  private waiter: { resolve: (m: ReceiverReply) => void; reject: (e: Error) => void } | null = null

  constructor() {
    // Compiled (dist/bench/*.js) or run through tsx (bench/*.ts): fork the sibling of this very file.
    const self = fileURLToPath(import.meta.url)
    const ts = self.endsWith('.ts')
    const script = self.replace(/relay\.(ts|js)$/, ts ? 'relay-receiver.ts' : 'relay-receiver.js')
    const execArgv = ts && !process.execArgv.some((a) => a.includes('tsx')) ? [...process.execArgv, '--import', 'tsx'] : process.execArgv
    this.child = fork(script, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.child.on('message', (m: ReceiverReply) => {
      const w = this.waiter
      this.waiter = null
      if (!w) return
      if ('error' in m) w.reject(new Error(`relay receiver: ${m.error}`))
      else w.resolve(m)
    })
    this.child.on('error', (err) => {
      this.waiter?.reject(new Error(`relay receiver: ${err.message}`))
      this.waiter = null
    })
    this.child.on('exit', (code, signal) => {
      this.waiter?.reject(new Error(`relay receiver exited (code ${code}, signal ${signal})`))
      this.waiter = null
    })
  }

  private next(): Promise<ReceiverReply> {
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject }
    })
  }

  /** Start a run: resolves with the port to send to, and a promise of the receiver's tally. */
  async start(mode: ReceiverMode): Promise<{ port: number; result: Promise<ReceiverTally> }> {
    const ready = this.next()
    this.child.send({ mode })
    const m = await ready
    if (!('port' in m)) throw new Error('relay receiver: expected a port')
    const result = this.next().then((r) => {
      if (!('frames' in r)) throw new Error('relay receiver: expected a tally')
      return r
    })
    return { port: m.port, result }
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = once(this.child, 'exit')
    this.child.disconnect()
    const timer = setTimeout(() => this.child.kill(), 2000)
    await exited
    clearTimeout(timer)
  }
}

/** The same Frame again and again for `ms`, as fast as downstream takes it. */
function repeat(frame: Frame, ms: number): Readable {
  const until = performance.now() + ms
  let n = 0
  return new Readable({
    objectMode: true,
    highWaterMark: 4,
    read() {
      // Checking the clock every frame would cost more than the frame.
      while ((n++ & 63) !== 0 || performance.now() < until) {
        if (!this.push(frame)) return
      }
      this.push(null)
    },
  })
}

function counters(stream: Stream) {
  return stageInfo(stream)!.counters
}

/** repeat → prefix → tcp-client; returns the frames tcp-client dropped (its queue is drop-oldest). */
async function sendFramePipe(jpeg: Buffer, port: number, ms: number): Promise<number> {
  const client = tcpClient({ port, reconnect: false })
  await pipeline(repeat(makeFrame(jpeg), ms), prefix(), client)
  return counters(client).drops
}

/** What a careful hand-written sender does: header and payload corked into one writev, wait for 'drain' when told. */
async function sendBare(jpeg: Buffer, port: number, ms: number): Promise<number> {
  const socket: Socket = net.connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.setNoDelay(true)
  const header = Buffer.alloc(4)
  header.writeUInt32BE(jpeg.length, 0)
  const until = performance.now() + ms
  let n = 0
  while ((n++ & 63) !== 0 || performance.now() < until) {
    socket.cork()
    socket.write(header)
    const ok = socket.write(jpeg)
    socket.uncork()
    if (!ok) await once(socket, 'drain')
  }
  socket.end()
  // The receiver closes once it has read everything; 'close' follows its FIN.
  socket.resume()
  await once(socket, 'close')
  return 0
}

async function runCase(receiver: Receiver, c: Case, jpeg: Buffer, ms: number): Promise<Tally> {
  const { port, result } = await receiver.start(c.receiver)
  const send = c.sender === 'frame-pipe' ? sendFramePipe : sendBare
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const sent = send(jpeg, port, ms).then((drops) => {
    const cpu = process.cpuUsage(cpu0)
    return { drops, sendCpuMs: (cpu.user + cpu.system) / 1000, sendMs: performance.now() - t0 }
  })
  const [s, r] = await Promise.all([sent, result])
  return { frames: r.frames, bytes: r.bytes, reads: r.reads, ms: r.ms, recvCpuMs: r.cpuMs, ...s }
}

const fps = (t: Tally) => t.frames / (t.ms / 1000)
const mbps = (t: Tally) => t.bytes / 1e6 / (t.ms / 1000)
/** Share of one core each end used and the receiver's CPU and socket reads per frame, e.g. 'CPU send 100% / recv 62% (21 µs, 1.4 reads per frame)'. */
const cpu = (t: Tally) =>
  `CPU send ${Math.round((t.sendCpuMs / t.sendMs) * 100)}% / recv ${Math.round((t.recvCpuMs / t.ms) * 100)}% (${((t.recvCpuMs * 1000) / t.frames).toFixed(1)} µs, ${(t.reads / t.frames).toFixed(1)} reads per frame)`

export const bench: Bench = async () => {
  const rows: BenchRow[] = []
  const receiver = new Receiver()
  try {
    for (const [width, height, target] of [
      [320, 240, 47_000],
      [1280, 720, 270_000],
    ] as const) {
      const jpeg = await jpegNear(width, height, target)
      const size = `${Math.round(jpeg.length / 1000)} KB JPEG`
      // Warm up both processes' JIT on every path before the clock starts.
      for (const c of CASES) await runCase(receiver, c, jpeg, WARMUP_MS)
      const tallies = new Map(CASES.map((c) => [c.key, emptyTally()]))
      for (let round = 0; round < ROUNDS; round++) {
        for (const c of CASES) addTally(tallies.get(c.key)!, await runCase(receiver, c, jpeg, CASE_MS / ROUNDS))
      }
      const fp = tallies.get('fp')!
      const bare = tallies.get('bare')!
      const nocopy = tallies.get('nocopy')!
      const fpRecv = tallies.get('bare→fp')!
      const fpSend = tallies.get('fp→bare')!
      const vs = (t: Tally) => `${(fps(t) / fps(bare)).toFixed(2)}× the gathering bare loop`
      const dropped = (t: Tally) => (t.drops > 0 ? `; tcp-client dropped ${t.drops} (drop-oldest, maxQueue 8)` : '')
      rows.push(
        {
          group: GROUP,
          name: `${size}: frame-pipe prefix → tcp-client ⇢ tcp-server → unprefix → null`,
          value: fps(fp),
          unit: 'frames/s',
          note: `${vs(fp)}, ${(fps(fp) / fps(nocopy)).toFixed(2)}× the no-copy loop; ${cpu(fp)}${dropped(fp)}`,
        },
        {
          group: GROUP,
          name: `${size}: frame-pipe, throughput at the receiver`,
          value: mbps(fp),
          unit: 'MB/s',
          note: `${fp.frames} frames in ${(fp.ms / 1000).toFixed(1)} s`,
        },
        {
          group: GROUP,
          name: `${size}: bare socket loop, gathering frames (baseline)`,
          value: fps(bare),
          unit: 'frames/s',
          note: `${mbps(bare).toFixed(0)} MB/s; ${cpu(bare)}`,
        },
        {
          group: GROUP,
          name: `${size}: bare socket loop, no copy (headers only)`,
          value: fps(nocopy),
          unit: 'frames/s',
          note: `${mbps(nocopy).toFixed(0)} MB/s, gathering costs ${((1 - fps(bare) / fps(nocopy)) * 100).toFixed(0)}%; ${cpu(nocopy)}`,
        },
        {
          group: GROUP,
          name: `${size}: bare sender ⇢ frame-pipe receiver`,
          value: fps(fpRecv),
          unit: 'frames/s',
          note: `${vs(fpRecv)} (the receiving end's share); ${cpu(fpRecv)}`,
        },
        {
          group: GROUP,
          name: `${size}: frame-pipe sender ⇢ bare gathering receiver`,
          value: fps(fpSend),
          unit: 'frames/s',
          note: `${vs(fpSend)} (the sending end's share); ${cpu(fpSend)}${dropped(fpSend)}`,
        },
      )
    }
  } finally {
    await receiver.close()
  }
  return rows
}
