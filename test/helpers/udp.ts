// Helpers shared by the UDP tests (udp.test.ts, seed000.test.ts): JPEGs of
// chosen sizes, a udp-server running into an array, a udp-client run, and
// plain sockets that record what they receive.

import type { ExecutionContext } from 'ava'
import dgram, { type RemoteInfo, type Socket } from 'node:dgram'
import { once } from 'node:events'
import { Readable, Writable } from 'node:stream'
import { pipeline as streamPipeline } from 'node:stream/promises'
import { createHash } from 'node:crypto'
import sharp from 'sharp'
import type { Frame } from '../../src/core/frame.js'
import { pipeline } from '../../src/core/pipeline.js'
import { stageInfo, type Counters } from '../../src/core/stage.js'
import { udpServer, type UdpServerSourceOptions } from '../../src/sources/udp-server.js'
import type { UdpServerSource } from '../../src/net/udp/receiver.js'
import { udpClient, type UdpClientSinkOptions } from '../../src/sinks/udp-client.js'
import { freePort as freeLoopbackPort, fromItems, prng, withTimeout } from './index.js'

export function counters(stream: unknown): Counters {
  return stageInfo(stream as never)!.counters
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}

export function randomBytes(n: number, rand: () => number): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256)
  return b
}

/**
 * A structurally valid JPEG of exactly `size` bytes (at least 24): SOI, an
 * APP0 segment carrying `tag`, a scan header, entropy-coded bytes without
 * 0xFF, EOI. What the seeds' chunked receiver checks, without a real encoder.
 */
export function syntheticJpeg(size: number, tag: number, rand: () => number): Buffer {
  const head = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x06, 0, 0, 0, 0, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00])
  head.writeUInt32BE(tag & 0x7f7f7f7f, 6)
  const body = randomBytes(size - head.length - 2, rand)
  for (let i = 0; i < body.length; i++) if (body[i] === 0xff) body[i] = 0xfe
  return Buffer.concat([head, body, Buffer.from([0xff, 0xd9])])
}

/** `jpeg` grown to exactly `size` bytes by a COM segment after SOI: still a valid JPEG (size - jpeg.length >= 4). */
export function padJpeg(jpeg: Buffer, size: number): Buffer {
  const extra = size - jpeg.length
  const com = Buffer.alloc(extra, 0x20)
  com[0] = 0xff
  com[1] = 0xfe
  com.writeUInt16BE(extra - 2, 2)
  return Buffer.concat([jpeg.subarray(0, 2), com, jpeg.subarray(2)])
}

/** The smallest multiple of 1024 that `jpeg` can be padded to. */
export function next1024(jpeg: Buffer): number {
  return Math.ceil((jpeg.length + 4) / 1024) * 1024
}

/** A 160x120 picture: a gradient with some noise, as raw RGB. */
export function picture(seed: number, width = 160, height = 120): { raw: Buffer; width: number; height: number } {
  const rand = prng(seed)
  const raw = Buffer.alloc(width * height * 3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3
      raw[i] = ((x * 255) / width + rand() * 24) & 0xff
      raw[i + 1] = ((y * 255) / height + rand() * 24) & 0xff
      raw[i + 2] = (x + y + seed * 40 + rand() * 24) & 0xff
    }
  }
  return { raw, width, height }
}

export async function pictureJpeg(seed: number): Promise<Buffer> {
  const p = picture(seed)
  return sharp(p.raw, { raw: { width: p.width, height: p.height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer()
}

/** The picture as a PNG file (lossless: a peer's cv2.imread gets exactly these pixels). */
export async function picturePng(seed: number, path: string): Promise<string> {
  const p = picture(seed)
  await sharp(p.raw, { raw: { width: p.width, height: p.height, channels: 3 } })
    .png()
    .toFile(path)
  return path
}

export async function until(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  let done = false
  try {
    await withTimeout(
      new Promise<void>((resolve) => {
        const check = () => {
          if (done) return
          if (cond()) resolve()
          else timer = setTimeout(check, 5)
        }
        check()
      }),
      ms,
      what,
    )
  } finally {
    done = true
    clearTimeout(timer)
  }
}

export interface Received {
  data: Buffer
  rinfo: RemoteInfo
}

export interface RawSocket {
  socket: Socket
  port: number
  got: Received[]
  send(d: Buffer, port: number): Promise<void>
}

/** A plain UDP socket on 127.0.0.1:0 that records what it receives; closed in teardown. */
export async function rawSocket(t: ExecutionContext): Promise<RawSocket> {
  const socket = dgram.createSocket('udp4')
  const got: Received[] = []
  let open = true
  socket.on('message', (data, rinfo) => got.push({ data, rinfo }))
  socket.on('close', () => {
    open = false
  })
  t.teardown(() => {
    if (open) socket.close()
  })
  socket.bind(0, '127.0.0.1')
  await once(socket, 'listening')
  return {
    socket,
    port: socket.address().port,
    got,
    send: (d, port) => new Promise((resolve, reject) => socket.send(d, port, '127.0.0.1', (err) => (err ? reject(err) : resolve()))),
  }
}

/** A port that was free a moment ago (msgPort has no "0 = pick one"). */
export async function freePort(): Promise<number> {
  return freeLoopbackPort('udp')
}

export interface RunningServer {
  server: UdpServerSource
  port: number
  frames: Frame[]
  warnings: string[]
  /** Stop the source and wait for the pipeline to end. */
  stop(): Promise<void>
}

/** A udp-server on port 0 whose frames land in an array; stopped in teardown if the test did not. */
export async function startServer(t: ExecutionContext, options: UdpServerSourceOptions = {}): Promise<RunningServer> {
  const server = udpServer({ port: 0, ...options })
  const frames: Frame[] = []
  const warnings: string[] = []
  server.on('warning', (m: string) => warnings.push(m))
  const done = streamPipeline(
    server,
    new Writable({
      objectMode: true,
      write(f: Frame, _e, cb) {
        frames.push(f)
        cb()
      },
    }),
  )
  let stopped = false
  const stop = async () => {
    stopped = true
    server.stop()
    await withTimeout(done, 5000, 'udp-server end')
  }
  // A test that failed half way still ends its server, and its pipeline's outcome is awaited.
  t.teardown(() => (stopped ? undefined : stop()))
  await withTimeout(once(server, 'listening'), 5000, 'udp-server listening')
  return { server, port: server.address()!.port, frames, warnings, stop }
}

export interface ClientRun {
  counters: Counters
  warnings: string[]
  replies: string[]
}

/**
 * Send `frames` with a udp-client. With `holdUntil`, the source stays open
 * after the last frame until the condition holds on the client's counters
 * (so the message sender gets time to talk).
 */
export async function send(frames: Frame[], options: UdpClientSinkOptions, holdUntil?: (c: Counters) => boolean): Promise<ClientRun> {
  const client = udpClient(options)
  const warnings: string[] = []
  const replies: string[] = []
  client.on('warning', (m: string) => warnings.push(m))
  client.on('reply', (m: string) => replies.push(m))
  const queue = [...frames]
  let holding = false
  const source = holdUntil
    ? new Readable({
        objectMode: true,
        read() {
          const f = queue.shift()
          if (f) return void this.push(f)
          if (holding) return
          holding = true
          until(() => holdUntil(counters(client)), 10_000, 'the hold condition').then(
            () => this.push(null),
            (err: Error) => this.destroy(err),
          )
        },
      })
    : fromItems(frames)
  await withTimeout(pipeline(source, client), 15_000, 'udp-client pipeline')
  return { counters: counters(client), warnings, replies }
}
