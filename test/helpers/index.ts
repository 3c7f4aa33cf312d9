// Shared test utilities: collecting streams, re-chunking bytes, timeouts.

import { Readable, type Stream } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { createSocket } from 'node:dgram'

/** Read everything a readable (or the readable side of a duplex) emits. */
export async function collect<T = unknown>(stream: NodeJS.ReadableStream | Readable): Promise<T[]> {
  const out: T[] = []
  for await (const item of stream as AsyncIterable<T>) out.push(item)
  return out
}

/** Run `stages` as a pipeline and collect what the last one emits. */
export async function run<T = unknown>(...stages: Stream[]): Promise<T[]> {
  const out: T[] = []
  await pipeline([
    ...stages,
    new Writable({
      objectMode: true,
      write(chunk: T, _e, cb) {
        out.push(chunk)
        cb()
      },
    }),
  ] as any)
  return out
}

/** An object-mode readable of the given items. */
export function fromItems<T>(items: readonly T[]): Readable {
  return Readable.from(items, { objectMode: true })
}

/** Deterministic PRNG (mulberry32) so failing cases reproduce from their seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Cut `bytes` at random points (seeded); `maxPiece` bounds each piece. maxPiece=1 gives 1-byte chunks. */
export function rechunk(bytes: Buffer, seed: number, maxPiece = 64): Buffer[] {
  const rand = prng(seed)
  const out: Buffer[] = []
  let i = 0
  while (i < bytes.length) {
    const n = 1 + Math.floor(rand() * maxPiece)
    out.push(bytes.subarray(i, i + n))
    i += n
  }
  return out
}

/** Reject after `ms` so a broken stream fails the test instead of hanging it. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms)
    }),
  ])
}

/** A temporary directory removed by the returned cleanup. */
export async function tempDir(prefix = 'frame-pipe-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) }
}

/**
 * A free loopback port for a server that a test starts later (or restarts), in
 * 20000-29999: outside Linux's ephemeral range (32768-60999), so a port-0
 * server of a test running alongside cannot take it in between.
 */
export async function freePort(kind: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000)
    if (await canBind(kind, port)) return port
  }
  throw new Error(`no free ${kind} port between 20000 and 29999`)
}

async function canBind(kind: 'tcp' | 'udp', port: number): Promise<boolean> {
  if (kind === 'udp') {
    const socket = createSocket('udp4')
    return new Promise((resolve) => {
      socket.once('error', () => {
        socket.close()
        resolve(false)
      })
      socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)))
    })
  }
  const server = createServer()
  return new Promise((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}
