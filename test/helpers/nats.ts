// A real nats-server for the tests: its own config in a temp dir, a free
// loopback port (kept across restarts), JetStream with a temp store when
// asked. Ready once it prints "Server is ready"; stopped and its files
// removed in the test's teardown.

import type { ExecutionContext } from 'ava'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import { freePort, tempDir } from './index.js'

/** Debian's package puts it in /usr/sbin; a hand-installed one may be anywhere on PATH. */
function findNatsServer(): string | undefined {
  const dirs = ['/usr/sbin', '/usr/bin', ...(process.env.PATH ?? '').split(delimiter)]
  return dirs.map((d) => join(d, 'nats-server')).find((p) => existsSync(p))
}

export const NATS_SERVER = findNatsServer() ?? 'nats-server'
export const HAVE_NATS_SERVER = NATS_SERVER !== 'nats-server'
export const NO_NATS_SERVER =
  'nats-server is not installed (not in /usr/sbin, /usr/bin or PATH; Debian package nats-server, which .ci/run installs)'

export interface NatsServerOptions {
  jetstream?: boolean
  /** Bytes; the server's default is 1 MB. */
  maxPayload?: number
  /** Bytes the server buffers for a client before cutting it off as a slow consumer (default 64 MB). */
  maxPending?: number
  /** How long a write to a client may block before the server cuts it off (default 10s in 2.9). */
  writeDeadline?: string
  /** More config text, e.g. an authorization block or tls. */
  extra?: string
}

export class TestNatsServer {
  readonly port: number
  readonly url: string
  readonly dir: string
  private readonly conf: string
  private child: ChildProcess | null = null
  /** The server's log (stderr) since it was last started, for failure messages. */
  log = ''

  constructor(port: number, dir: string) {
    this.port = port
    this.url = `nats://127.0.0.1:${port}`
    this.dir = dir
    this.conf = join(dir, 'nats-server.conf')
  }

  async configure(o: NatsServerOptions): Promise<void> {
    const lines = [`listen: "127.0.0.1:${this.port}"`, 'server_name: frame_pipe_test']
    if (o.maxPayload !== undefined) lines.push(`max_payload: ${o.maxPayload}`)
    if (o.maxPending !== undefined) lines.push(`max_pending: ${o.maxPending}`)
    if (o.writeDeadline !== undefined) lines.push(`write_deadline: "${o.writeDeadline}"`)
    if (o.jetstream)
      lines.push(
        `jetstream { store_dir: ${JSON.stringify(join(this.dir, 'js'))}, max_memory_store: 268435456, max_file_store: 1073741824 }`,
      )
    if (o.extra) lines.push(o.extra)
    await writeFile(this.conf, lines.join('\n') + '\n')
  }

  /** Start (again); resolves once the server accepts clients. */
  async start(timeoutMs = 20_000): Promise<void> {
    this.log = ''
    const child = spawn(NATS_SERVER, ['-c', this.conf], { stdio: ['ignore', 'ignore', 'pipe'] })
    this.child = child
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`nats-server not ready after ${timeoutMs} ms:\n${this.log}`)), timeoutMs)
      const fail = (err: Error) => {
        clearTimeout(timer)
        child.kill('SIGKILL')
        reject(err)
      }
      child.stderr!.on('data', (d: Buffer) => {
        // Keep the tail only: a long test must not grow this without bound.
        this.log = (this.log + d.toString()).slice(-20_000)
        if (this.log.includes('Server is ready')) {
          clearTimeout(timer)
          resolve()
        }
      })
      child.once('error', fail)
      child.once('exit', (code, signal) =>
        fail(new Error(`nats-server exited (code ${code}, signal ${signal}) before it was ready:\n${this.log}`)),
      )
    })
  }

  /** Stop the server: SIGTERM is a clean shutdown, SIGKILL a crash. Resolves once it has exited. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child
    this.child = null
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }

  async restart(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.stop(signal)
    await this.start()
  }
}

/** A running nats-server for this test, stopped and cleaned up in its teardown. */
export async function startNatsServer(t: ExecutionContext, o: NatsServerOptions = {}): Promise<TestNatsServer> {
  const { dir, cleanup } = await tempDir('frame-pipe-nats-')
  const server = new TestNatsServer(await freePort(), dir)
  t.teardown(async () => {
    await server.stop()
    await cleanup()
  })
  await server.configure(o)
  await server.start()
  return server
}
