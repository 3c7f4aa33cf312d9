// The receiving end of the relay bench, run in its own process (forked by
// bench/relay.ts) so that sender and receiver each have a JS thread, as in any
// real deployment and in GStreamer's figure. Driven over IPC:
//   parent → { mode }    listen on a fresh port for one run
//   child  → { port }    ready: the parent connects and sends
//   child  → tally       once the sender has closed: frames, bytes and socket
//                        reads, ms from the connection to the last frame, and
//                        cpuMs, this process's user + system CPU time over it
// Disconnecting the IPC channel ends the process.

import { once } from 'node:events'
import net, { type AddressInfo, type Socket } from 'node:net'
import { pipeline } from '../src/core/pipeline.js'
import { nullSink } from '../src/sinks/null.js'
import { tcpServer } from '../src/sources/tcp-server.js'
import { stageInfo } from '../src/core/stage.js'
import { unprefix } from '../src/transforms/unprefix.js'

export type ReceiverMode = 'frame-pipe' | 'bare' | 'bare-nocopy'
export interface ReceiverRequest {
  mode: ReceiverMode
}
export interface ReceiverTally {
  frames: number
  bytes: number
  reads: number
  ms: number
  cpuMs: number
}
export type ReceiverReply = { port: number } | ReceiverTally | { error: string }

/** Marks the start of a run: the connection. */
interface Start {
  t: number
  cpu: NodeJS.CpuUsage
}

const startNow = (): Start => ({ t: performance.now(), cpu: process.cpuUsage() })

function since(start: Start, frames: number, bytes: number, reads: number): ReceiverTally {
  const cpu = process.cpuUsage(start.cpu)
  return { frames, bytes, reads, ms: performance.now() - start.t, cpuMs: (cpu.user + cpu.system) / 1000 }
}

/** tcp-server → unprefix → null, as `frame-pipe tcp-server port=0 once=true ! unprefix ! null` would run. */
async function framePipe(ready: (port: number) => void): Promise<ReceiverTally> {
  const server = tcpServer({ port: 0, once: true })
  const sink = nullSink()
  let start = startNow()
  server.once('client', () => {
    start = startNow()
  })
  const done = pipeline(server, unprefix(), sink)
  await once(server, 'listening')
  ready(server.address()!.port)
  await done
  const { frames, bytes } = stageInfo(sink)!.counters
  // tcp-server counts each chunk it reads as one of its 'frames'.
  return since(start, frames, bytes, stageInfo(server)!.counters.frames)
}

/**
 * A careful hand-written receiver: parse each 4-byte header; when `gather`,
 * hand each frame on whole, as unprefix does (a view when the frame lies in
 * one chunk, else one allocation and a copy per piece); otherwise only count
 * the body bytes as they pass.
 */
async function bareLoop(gather: boolean, ready: (port: number) => void): Promise<ReceiverTally> {
  let frames = 0
  let bytes = 0
  let reads = 0
  let start = startNow()
  // Where a real receiver would use the frame.
  const deliver = (frame: Buffer) => {
    frames++
    bytes += frame.length
  }
  let ended!: (err?: Error) => void
  const done = new Promise<void>((resolve, reject) => {
    ended = (err) => (err ? reject(err) : resolve())
  })
  const server = net.createServer((socket: Socket) => {
    start = startNow()
    server.close()
    const head = Buffer.alloc(4)
    let headFilled = 0
    let length = -1
    let body: Buffer | undefined
    let filled = 0
    socket.on('data', (chunk: Buffer) => {
      reads++
      let pos = 0
      const end = chunk.length
      while (pos < end) {
        if (length < 0) {
          while (headFilled < 4 && pos < end) head[headFilled++] = chunk[pos++]!
          if (headFilled < 4) return
          headFilled = 0
          length = head.readUInt32BE(0)
          filled = 0
        }
        if (!gather) {
          const n = Math.min(length - filled, end - pos)
          filled += n
          pos += n
          if (filled === length) {
            frames++
            bytes += length
            length = -1
          }
          continue
        }
        if (body === undefined) {
          if (end - pos >= length) {
            deliver(chunk.subarray(pos, pos + length))
            pos += length
            length = -1
            continue
          }
          body = Buffer.allocUnsafe(length)
        }
        const n = Math.min(length - filled, end - pos)
        chunk.copy(body, filled, pos, pos + n)
        filled += n
        pos += n
        if (filled === length) {
          deliver(body)
          body = undefined
          length = -1
        }
      }
    })
    let failure: Error | undefined
    socket.on('error', (err) => {
      failure = err
    })
    socket.on('close', () => ended(failure))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  ready((server.address() as AddressInfo).port)
  await done
  return since(start, frames, bytes, reads)
}

function reply(message: ReceiverReply): void {
  process.send!(message)
}

process.on('message', (request: ReceiverRequest) => {
  const ready = (port: number) => reply({ port })
  const run = request.mode === 'frame-pipe' ? framePipe(ready) : bareLoop(request.mode === 'bare', ready)
  run.then(
    (tally) => reply(tally),
    (err: Error) => reply({ error: err.stack ?? err.message }),
  )
})
process.on('disconnect', () => process.exit(0))
