// What TLS and the token check cost, both ends in this process over loopback:
//   handshake: time from dial() to a connection ready for frames, for plain
//              TCP, the token check, TLS, and TLS with the token check
//              (median of many connections; TLS 1.3, P-256 certificate from
//              `frame-pipe cert`);
//   fps:       JPEG frames through prefix header=native ! tcp-server and
//              tcp-client ! unprefix header=native, plain and over TLS, at
//              640x480 and 1920x1080, in alternating slices of the same run.
// The source offers frames as fast as the server takes them; the server drops
// what a slow client cannot take (its fan-out never waits), so fps is what
// the client received, and the drops are in the note. One thread does both
// ends' encryption here; across two machines each end pays only its half.

import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { makeCertificate } from '../src/cli/cert.js'
import { makeFrame, type Frame } from '../src/core/frame.js'
import { pipeline } from '../src/core/pipeline.js'
import { stageInfo } from '../src/core/stage.js'
import { dial } from '../src/net/socket.js'
import { clientSecurity } from '../src/net/security.js'
import { tcpServer } from '../src/sinks/tcp-server.js'
import { tcpClient } from '../src/sources/tcp-client.js'
import { prefix } from '../src/transforms/prefix.js'
import { unprefix } from '../src/transforms/unprefix.js'
import type { Bench, BenchRow } from './types.js'
import { jpegNear } from './jpeg-near.js'

const GROUP = 'tls'
const HANDSHAKES = 40
const SLICE_MS = 2000
const WARMUP_MS = 300
const ROUNDS = 2
const TOKEN = 'bench-token-0123456789abcdef'

interface Pki {
  cert: string
  key: string
  cleanup(): Promise<void>
}

type Mode = 'plain' | 'token' | 'tls' | 'tls+token'

function serverOptions(mode: Mode, pki: Pki): Record<string, unknown> {
  return {
    ...(mode.startsWith('tls') ? { cert: pki.cert, key: pki.key } : {}),
    ...(mode.endsWith('token') ? { token: TOKEN } : {}),
  }
}

function clientOptions(mode: Mode, pki: Pki): Record<string, unknown> {
  return {
    ...(mode.startsWith('tls') ? { ca: pki.cert } : {}),
    ...(mode.endsWith('token') ? { token: TOKEN } : {}),
  }
}

/** Median milliseconds from dial() to a connection ready for frames. */
async function handshake(mode: Mode, pki: Pki): Promise<number> {
  const sink = tcpServer({ port: 0, ...serverOptions(mode, pki) })
  const served = pipeline(new Readable({ objectMode: true, read() {} }), sink)
  served.catch(() => undefined)
  if (!sink.address()) await once(sink, 'listening')
  const port = sink.address()!.port
  const security = clientSecurity(clientOptions(mode, pki), '127.0.0.1', 'bench')
  const times: number[] = []
  for (let i = 0; i < HANDSHAKES; i++) {
    const t0 = performance.now()
    await new Promise<void>((resolve, reject) => {
      const socket = dial(
        '127.0.0.1',
        port,
        5000,
        'bench',
        (err) => {
          if (err) return reject(err)
          times.push(performance.now() - t0)
          socket.destroy()
          resolve()
        },
        security,
      )
    })
  }
  sink.destroy()
  times.sort((a, b) => a - b)
  return times[times.length >> 1]!
}

interface Tally {
  frames: number
  bytes: number
  ms: number
  drops: number
}

/** One slice: frames of `jpeg` through prefix ! tcp-server → tcp-client ! unprefix for SLICE_MS after a warm-up. */
async function slice(jpeg: Buffer, mode: Mode, pki: Pki): Promise<Tally> {
  let seq = 0
  let stop = false
  const source = new Readable({
    objectMode: true,
    highWaterMark: 2,
    read() {
      this.push(stop ? null : makeFrame(jpeg, { seq: seq++, format: 'jpeg' }))
    },
  })
  const sink = tcpServer({ port: 0, wait: 1, maxQueue: 4, linger: 0, ...serverOptions(mode, pki) })
  const serving = pipeline(source, prefix({ header: 'native' }), sink)
  serving.catch(() => undefined)
  if (!sink.address()) await once(sink, 'listening')
  const client = tcpClient({ port: sink.address()!.port, ...clientOptions(mode, pki) })
  let frames = 0
  let bytes = 0
  let counting = false
  const counted = new Writable({
    objectMode: true,
    write(f: Frame, _e, cb) {
      if (counting) {
        frames++
        bytes += f.data.length
      }
      cb()
    },
  })
  const receiving = pipeline(client, unprefix({ header: 'native' }), counted)
  receiving.catch(() => undefined)
  await new Promise((r) => setTimeout(r, WARMUP_MS))
  const drops0 = stageInfo(sink)!.counters.drops
  counting = true
  const t0 = performance.now()
  await new Promise((r) => setTimeout(r, SLICE_MS))
  counting = false
  const ms = performance.now() - t0
  const drops = stageInfo(sink)!.counters.drops - drops0
  stop = true
  client.destroy()
  sink.destroy()
  await Promise.allSettled([serving, receiving])
  return { frames, bytes, ms, drops }
}

export const bench: Bench = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'frame-pipe-bench-tls-'))
  let pki: Pki
  try {
    const made = await makeCertificate({ dir, days: 1 })
    pki = { cert: made.cert, key: made.key, cleanup: () => rm(dir, { recursive: true, force: true }) }
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    return [{ group: GROUP, name: 'skipped', value: 0, unit: '-', note: (err as Error).message }]
  }
  const rows: BenchRow[] = []
  try {
    const modes: Mode[] = ['plain', 'token', 'tls', 'tls+token']
    // Warm-up: JIT, TLS contexts, the first ephemeral key.
    for (const m of modes) await handshake(m, pki)
    const median: Record<string, number> = {}
    for (const m of modes) median[m] = await handshake(m, pki)
    for (const m of modes) {
      rows.push({
        group: GROUP,
        name: `handshake: ${m === 'plain' ? 'plain TCP connect' : m === 'token' ? 'TCP + token check' : m === 'tls' ? 'TLS 1.3' : 'TLS 1.3 + token check'}`,
        value: round(median[m]!),
        unit: 'ms',
        note: `median of ${HANDSHAKES}, dial() to ready${m === 'plain' ? '' : `; +${round(median[m]! - median.plain!)} ms over plain`}`,
      })
    }
    for (const [label, width, height, target] of [
      ['640x480', 640, 480, 60_000],
      ['1920x1080', 1920, 1080, 300_000],
    ] as const) {
      const jpeg = await jpegNear(width, height, target)
      const sum: Record<'plain' | 'tls', Tally> = {
        plain: { frames: 0, bytes: 0, ms: 0, drops: 0 },
        tls: { frames: 0, bytes: 0, ms: 0, drops: 0 },
      }
      for (let r = 0; r < ROUNDS; r++) {
        for (const m of r % 2 === 0 ? (['plain', 'tls'] as const) : (['tls', 'plain'] as const)) {
          const t = await slice(jpeg, m, pki)
          for (const k of Object.keys(t) as Array<keyof Tally>) sum[m][k] += t[k]
        }
      }
      const fps = (t: Tally) => (t.frames / t.ms) * 1000
      const mbps = (t: Tally) => t.bytes / 1e6 / (t.ms / 1000)
      for (const m of ['plain', 'tls'] as const) {
        rows.push({
          group: GROUP,
          name: `${label} JPEG (${Math.round(jpeg.length / 1000)} KB), ${m === 'plain' ? 'plain TCP' : 'TLS'}`,
          value: round(fps(sum[m])),
          unit: 'frames/s',
          note:
            `${round(mbps(sum[m]))} MB/s received, ${sum[m].drops} dropped by the server for the client` +
            (m === 'tls' ? `; ${Math.round((fps(sum.tls) / fps(sum.plain)) * 100)}% of plain` : '') +
            `; ${ROUNDS} slices of ${SLICE_MS / 1000} s`,
        })
      }
    }
  } finally {
    await pki.cleanup()
  }
  return rows
}

function round(n: number): number {
  return Math.round(n * 100) / 100
}
