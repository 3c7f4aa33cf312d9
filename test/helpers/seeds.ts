// Shared by the seed 001–003 tests: small JPEG frames, files for the Python
// peers, raw sockets, polling.

import type { ExecutionContext } from 'ava'
import net, { type AddressInfo, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { Frame } from '../../src/core/frame.js'
import { testsrc } from '../../src/sources/testsrc.js'
import { collect, tempDir, withTimeout } from './index.js'

/** `n` distinct 160x120 JPEGs (about 5 KB each), frame number drawn in. */
export async function jpegFrames(n: number, width = 160, height = 120): Promise<Frame[]> {
  return withTimeout(collect<Frame>(testsrc({ width, height, fps: 0, count: n, format: 'jpeg', quality: 80 })), 20_000, 'testsrc')
}

export async function tempDirFor(t: ExecutionContext): Promise<string> {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  return dir
}

/** Write frames as frame-<i>.jpg; returns the paths in order. */
export async function writeJpegs(dir: string, frames: readonly Frame[]): Promise<string[]> {
  const paths = frames.map((_, i) => join(dir, `frame-${i}.jpg`))
  await Promise.all(frames.map((f, i) => writeFile(paths[i]!, f.data)))
  return paths
}

/** The files of `dir` whose names start with `prefix`, sorted by name, as Buffers. */
export async function readFiles(dir: string, prefix: string): Promise<Buffer[]> {
  const names = (await readdir(dir)).filter((n) => n.startsWith(prefix)).sort()
  return Promise.all(names.map((n) => readFile(join(dir, n))))
}

/** Poll (every 5 ms) until `cond` holds. */
export function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  return withTimeout(
    (async () => {
      while (!cond()) await new Promise((r) => setTimeout(r, 5))
    })(),
    ms,
    what,
  )
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** A Writable that keeps what reaches it. */
export function keep<T>(into: T[]): Writable {
  return new Writable({
    objectMode: true,
    write(chunk: T, _e, cb) {
      into.push(chunk)
      cb()
    },
  })
}

/** A loopback server of our own, closed (with its sockets) in teardown. */
export async function rawServer(t: ExecutionContext, onConnection: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const sockets = new Set<Socket>()
  const server = net.createServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    onConnection(s)
  })
  t.teardown(() => {
    server.close()
    for (const s of sockets) s.destroy()
  })
  server.listen(0, '127.0.0.1')
  await withTimeout(once(server, 'listening'), 5000, 'raw server listening')
  return { server, port: (server.address() as AddressInfo).port }
}

export async function rawClient(t: ExecutionContext, port: number): Promise<Socket> {
  const socket = net.connect({ host: '127.0.0.1', port })
  t.teardown(() => {
    socket.destroy()
  })
  await withTimeout(once(socket, 'connect'), 5000, 'connect')
  return socket
}

/** Index of the frame whose bytes equal `data`, or -1. */
export function indexOfBytes(frames: readonly { data: Buffer }[], data: Buffer): number {
  return frames.findIndex((f) => f.data.equals(data))
}
