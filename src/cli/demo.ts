// `frame-pipe demo`: the main job on built-in defaults, no camera or files
// needed. A sender and a receiver in one process, joined by loopback TCP:
//
//   testsrc ! jpeg ! prefix header=native ! tcp-server      (sender)
//   tcp-client ! unprefix header=native ! stats ! files      (receiver)

import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import type { Stream } from 'node:stream'
import { launch } from '../launch.js'
import { pipeline } from '../pipeline.js'
import type { StatsSnapshot } from '../transforms/stats.js'
import { handleSignals } from './signals.js'
import { StatusReporter } from './status.js'

export interface DemoOptions { frames: number; out: string; quiet: boolean; json: boolean }

export async function runDemo(options: DemoOptions): Promise<number> {
  const senderText = `testsrc width=640 height=480 fps=30 count=${options.frames} ! jpeg quality=80 ! prefix header=native ! tcp-server port=0 wait=1`
  const sender = launch(senderText)
  const server = sender[sender.length - 1] as unknown as Stream & { address(): AddressInfo | null }
  const log = (line: string): void => { if (!options.quiet) process.stderr.write(line + '\n') }
  // The server listens as soon as it is created; the receiver needs its port.
  const senderDone = pipeline(...sender)
  const port = server.address()?.port ?? (await Promise.race([once(server, 'listening'), senderDone.then(() => [])]), server.address()?.port)
  if (!port) throw new Error('demo: the sender did not start listening')

  const receiverText = `tcp-client port=${port} ! unprefix header=native ! stats ! files dir=${quoteIfNeeded(options.out)}`
  log(`sender:   frame-pipe '${senderText.replace('port=0', `port=${port}`)}'`)
  log(`receiver: frame-pipe '${receiverText}'`)
  const receiver = launch(receiverText)
  let latency: StatsSnapshot['latencyMs'] = null
  receiver[2]!.on('stats', (s: StatsSnapshot) => { if (s.latencyMs) latency = s.latencyMs })

  const status = new StatusReporter(receiver, {
    log: process.stderr,
    live: !options.quiet && process.stderr.isTTY === true,
    json: options.json ? process.stdout : undefined,
  })
  const signals = handleSignals([...sender, ...receiver], status)
  status.start()
  try {
    await Promise.all([senderDone, pipeline(...receiver)])
  } catch (err) {
    for (const s of [...sender, ...receiver]) (s as unknown as { destroy(e?: Error): void }).destroy(err as Error)
    if (!signals.aborted) throw err
  } finally {
    signals.dispose()
  }
  const snap = options.quiet && !options.json ? status.snapshot(true) : status.finish()
  const lat = latency as StatsSnapshot['latencyMs']
  log(`wrote ${snap.frames} JPEG frames to ${resolve(options.out)}` +
    (lat ? `; capture-to-disk latency mean ${lat.mean.toFixed(1)} ms, max ${lat.max.toFixed(1)} ms` : ''))
  return signals.aborted ? 130 : 0
}

function quoteIfNeeded(path: string): string {
  return /[\s!'"]/.test(path) ? `"${path}"` : path
}
