// `frame-pipe demo`: the main job on built-in defaults, no camera or files
// needed. A sender and a receiver in one process, joined by loopback TCP, and
// a browser viewer on the receiving side:
//
//   testsrc ! jpeg ! prefix header=native ! tcp-server                     (sender)
//   tcp-client ! unprefix header=native ! stats ! http ! files             (receiver)

import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import type { Stream } from 'node:stream'
import { loadPlan, planDescription } from '../plan.js'
import { pipeline, stopPipeline } from '../core/pipeline.js'
import type { StatsSnapshot } from '../transforms/stats.js'
import { handleSignals } from './signals.js'
import { StatusReporter } from './status.js'
import { shows, type LogLevel } from './log.js'

export interface DemoOptions {
  /** Frames to send; 0 runs until Ctrl-C. */
  frames: number
  out: string
  /** Viewer port; when it is taken, a free one is used instead. */
  port: number
  /** Stop after this many milliseconds (--duration), as Ctrl-C does. */
  duration?: number
  level: LogLevel
  json: boolean
}

type Listening = Stream & { address(): AddressInfo | null }

export async function runDemo(options: DemoOptions): Promise<number> {
  const senderText = `testsrc width=640 height=480 fps=30 count=${options.frames} ! jpeg quality=80 ! prefix header=native ! tcp-server port=0 wait=1`
  const sender = await loadPlan(planDescription(senderText))
  const server = sender[sender.length - 1] as unknown as Listening
  const quiet = !shows(options.level, 'info')
  const log = (line: string): void => {
    if (!quiet) process.stderr.write(line + '\n')
  }
  // The server listens as soon as it is created; the receiver needs its port.
  const senderDone = pipeline(...sender)
  const port = await listeningPort(server, senderDone)

  const viewerPort = await freePort(options.port)
  const receiverText = `tcp-client port=${port} ! unprefix header=native ! stats ! http port=${viewerPort} ! files dir=${quoteIfNeeded(options.out)}`
  log(`sender:   frame-pipe '${senderText.replace('port=0', `port=${port}`)}'`)
  log(`receiver: frame-pipe '${receiverText}'`)
  const receiver = await loadPlan(planDescription(receiverText))
  let latency: StatsSnapshot['latencyMs'] = null
  receiver[2]!.on('stats', (s: StatsSnapshot) => {
    if (s.latencyMs) latency = s.latencyMs
  })
  const viewer = receiver[3] as unknown as { url(): string | null }

  const status = new StatusReporter(receiver, {
    log: process.stderr,
    live: process.stderr.isTTY === true,
    json: options.json ? process.stdout : undefined,
    level: options.level,
  })
  const signals = handleSignals([...sender, ...receiver], status)
  const receiverDone = pipeline(...receiver)
  receiver[3]!.once('listening', () => {
    const seconds = options.frames > 0 ? ` for the next ${Math.round(options.frames / 30)} s (--frames 0: until Ctrl-C)` : ' until Ctrl-C'
    status.logLine(`viewer:   open ${viewer.url()} to watch${seconds}`)
  })
  status.start()
  // The sender ending ends the receiver (the TCP connection closes), as with --frames.
  const timer = options.duration === undefined ? undefined : setTimeout(() => stopPipeline(sender), options.duration)
  timer?.unref()
  try {
    await Promise.all([senderDone, receiverDone])
  } catch (err) {
    for (const s of [...sender, ...receiver]) (s as unknown as { destroy(e?: Error): void }).destroy(err as Error)
    if (!signals.aborted) throw err
  } finally {
    clearTimeout(timer)
    signals.dispose()
  }
  const snap = quiet && !options.json ? status.snapshot(true) : status.finish()
  const lat = latency as StatsSnapshot['latencyMs']
  log(
    `wrote ${snap.frames} JPEG frames to ${resolve(options.out)}` +
      (lat
        ? `; capture-to-disk latency p50 ${lat.p50.toFixed(1)} ms, p99 ${lat.p99.toFixed(1)} ms, mean ${lat.mean.toFixed(1)} ms, max ${lat.max.toFixed(1)} ms`
        : ''),
  )
  return signals.aborted ? 130 : 0
}

async function listeningPort(server: Listening, done: Promise<void>): Promise<number> {
  const now = server.address()?.port
  if (now) return now
  await Promise.race([once(server, 'listening'), done])
  const port = server.address()?.port
  if (!port) throw new Error('demo: the sender did not start listening')
  return port
}

/** `wanted` when it can be bound on loopback now, else 0 (the viewer then picks a free port). */
async function freePort(wanted: number): Promise<number> {
  if (wanted === 0) return 0
  const probe = createServer()
  try {
    await new Promise<void>((ok, fail) => {
      probe.once('error', fail)
      probe.listen(wanted, '127.0.0.1', ok)
    })
    return wanted
  } catch {
    return 0
  } finally {
    probe.close()
  }
}

function quoteIfNeeded(path: string): string {
  return /[\s!'"]/.test(path) ? `"${path}"` : path
}
