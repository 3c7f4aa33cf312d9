// Relay throughput over loopback TCP, both ends in this process: pre-encoded
// JPEG frames through prefix → tcp-client (sink) → tcp-server (source) →
// unprefix → null. Beside it, in the same run, a bare Node socket loop doing
// the same work by hand (4-byte length, header and payload in one writev,
// parse and gather each frame into one buffer on receipt) as the baseline.
// Reference points on this kind of machine: GStreamer ~30,000 frames/s of
// 47 KB, the bare loop ~70,000.

import { once } from 'node:events'
import net, { type AddressInfo, type Socket } from 'node:net'
import { Readable, type Stream } from 'node:stream'
import sharp from 'sharp'
import { makeFrame, type Frame } from '../src/frame.js'
import { pipeline } from '../src/pipeline.js'
import { nullSink } from '../src/sinks/null.js'
import { tcpClient } from '../src/sinks/tcp-client.js'
import { tcpServer } from '../src/sources/tcp-server.js'
import { stageInfo } from '../src/stage.js'
import { prefix } from '../src/transforms/prefix.js'
import { unprefix } from '../src/transforms/unprefix.js'
import type { Bench, BenchRow } from './types.js'

const GROUP = 'relay'
const SECONDS = 2.5

interface Run { frames: number; bytes: number; ms: number; drops: number }

/** A real JPEG of about `target` bytes: noise at `width`×`height`, quality searched to fit. */
async function jpegNear(width: number, height: number, target: number): Promise<Buffer> {
  const raw = await sharp({ create: { width, height, channels: 3, background: { r: 90, g: 120, b: 200 }, noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).raw().toBuffer()
  let best: Buffer | undefined
  let lo = 1
  let hi = 100
  while (lo <= hi) {
    const q = (lo + hi) >> 1
    const jpeg = await sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: q }).toBuffer()
    if (!best || Math.abs(jpeg.length - target) < Math.abs(best.length - target)) best = jpeg
    if (jpeg.length < target) lo = q + 1
    else hi = q - 1
  }
  return best!
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

async function framePipe(jpeg: Buffer): Promise<Run> {
  const server = tcpServer({ port: 0, once: true })
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  const sink = nullSink()
  const received = pipeline(server, unprefix(), sink)
  const client = tcpClient({ port, reconnect: false })
  const t0 = performance.now()
  await pipeline(repeat(makeFrame(jpeg), SECONDS * 1000), prefix(), client)
  await received
  const ms = performance.now() - t0
  return { frames: counters(sink).frames, bytes: counters(sink).bytes, ms, drops: counters(client).drops }
}

/**
 * The baseline: what a careful hand-written Node program does, with no
 * streams in between. It gathers each frame into one buffer, as unprefix
 * must when a frame spans chunks: a receiver needs the frame whole.
 */
async function bareLoop(jpeg: Buffer): Promise<Run> {
  let frames = 0
  let bytes = 0
  let received!: () => void
  const done = new Promise<void>((r) => { received = r })
  const server = net.createServer((socket) => {
    const head = Buffer.alloc(4)
    let headFilled = 0
    let body: Buffer | undefined
    let bodyFilled = 0
    socket.on('data', (chunk: Buffer) => {
      let pos = 0
      while (pos < chunk.length) {
        if (!body) {
          while (headFilled < 4 && pos < chunk.length) head[headFilled++] = chunk[pos++]!
          if (headFilled < 4) break
          body = Buffer.allocUnsafe(head.readUInt32BE(0))
          bodyFilled = 0
          headFilled = 0
        }
        const n = Math.min(body.length - bodyFilled, chunk.length - pos)
        chunk.copy(body, bodyFilled, pos, pos + n)
        bodyFilled += n
        pos += n
        if (bodyFilled === body.length) {
          frames++
          bytes += body.length
          body = undefined
        }
      }
    })
    socket.on('end', () => {
      server.close()
      received()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const socket: Socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1')
  await once(socket, 'connect')
  socket.setNoDelay(true)
  const header = Buffer.alloc(4)
  header.writeUInt32BE(jpeg.length, 0)
  const t0 = performance.now()
  const until = t0 + SECONDS * 1000
  let n = 0
  while ((n++ & 63) !== 0 || performance.now() < until) {
    socket.cork()
    socket.write(header)
    const ok = socket.write(jpeg)
    socket.uncork()
    if (!ok) await once(socket, 'drain')
  }
  socket.end()
  await done
  return { frames, bytes, ms: performance.now() - t0, drops: 0 }
}

const fps = (r: Run) => r.frames / (r.ms / 1000)
const mbps = (r: Run) => r.bytes / 1e6 / (r.ms / 1000)

export const bench: Bench = async () => {
  const rows: BenchRow[] = []
  for (const [width, height, target] of [[320, 240, 47_000], [1280, 720, 270_000]] as const) {
    const jpeg = await jpegNear(width, height, target)
    const name = `${Math.round(jpeg.length / 1000)} KB JPEG (${width}×${height})`
    const base = await bareLoop(jpeg)
    const fp = await framePipe(jpeg)
    const ratio = (fps(fp) / fps(base)).toFixed(2)
    const drops = fp.drops > 0 ? `; ${fp.drops} dropped by tcp-client (maxQueue 8)` : '; no drops'
    rows.push(
      { group: GROUP, name: `${name}: prefix → tcp-client → tcp-server → unprefix → null`, value: fps(fp), unit: 'frames/s', note: `${ratio}× the bare loop${drops}` },
      { group: GROUP, name: `${name}: same, throughput`, value: mbps(fp), unit: 'MB/s', note: `${fp.frames} frames in ${(fp.ms / 1000).toFixed(1)} s` },
      { group: GROUP, name: `${name}: bare Node socket loop, gathering frames (baseline)`, value: fps(base), unit: 'frames/s', note: `${mbps(base).toFixed(0)} MB/s` },
    )
  }
  return rows
}
