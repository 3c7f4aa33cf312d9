// What the attack tests share: the frame-pipe command run as a child process
// (from source), its log lines and --json counters, and the process's
// resident memory and open file descriptors read from /proc.

import type { ExecutionContext } from 'ava'
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Counters } from '../../src/core/stage.js'
import { withTimeout } from '../helpers/index.js'

const CHILD = fileURLToPath(new URL('./cli-child.ts', import.meta.url))

export interface Cli {
  child: ChildProcess
  pid: number
  /** stderr, one entry per line (log lines, warnings, the summary). */
  lines: string[]
  /** The --json snapshots so far (stdout). */
  snapshots: Array<{ stages: Array<{ name: string; counters: Counters }>; badPeers?: number; final: boolean }>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Whether the process is still running. */
  alive(): boolean
  /** The port a stage logged `listening on host:port` for (the first such line). */
  port(stage: string): Promise<number>
  /** The latest counters of the stage at `index` in the pipeline. */
  counters(index: number): Counters | undefined
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * Run `frame-pipe --json '<pipeline>'` from source; killed at teardown. With
 * `fdLimit`, the child runs under that RLIMIT_NOFILE (`ulimit -n`), as a
 * default shell would give it.
 */
export function startCli(t: ExecutionContext, pipeline: string, o: { fdLimit?: number; interval?: number } = {}): Cli {
  const argv = [process.execPath, '--import', 'tsx', CHILD, '--json', pipeline]
  const child =
    o.fdLimit === undefined
      ? spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('/bin/sh', ['-c', `ulimit -n ${o.fdLimit} && exec "$@"`, 'sh', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  const snapshots: Cli['snapshots'] = []
  let errBuf = ''
  let outBuf = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    errBuf += d
    const parts = errBuf.split('\n')
    errBuf = parts.pop()!
    lines.push(...parts)
  })
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    outBuf += d
    const parts = outBuf.split('\n')
    outBuf = parts.pop()!
    for (const p of parts) if (p.startsWith('{')) snapshots.push(JSON.parse(p))
  })
  let running = true
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => {
      running = false
      resolve({ code, signal })
    })
  })
  t.teardown(() => {
    if (running) child.kill('SIGKILL')
  })
  const cli: Cli = {
    child,
    pid: child.pid!,
    lines,
    snapshots,
    exited,
    alive: () => running,
    async port(stage) {
      // Servers say `listening on HOST:PORT`; the http sink gives its URL (`viewer at http://HOST:PORT/`).
      const re = new RegExp(`^${stage}: (?:listening on .*|viewer at https?://[^/]*):(\\d+)`)
      await until(() => lines.some((l) => re.test(l)) || !running, 20_000, `${stage} listening`)
      const line = lines.find((l) => re.test(l))
      if (!line) throw new Error(`${stage} did not listen:\n${lines.join('\n')}`)
      return Number(re.exec(line)![1])
    },
    counters(index) {
      return snapshots.at(-1)?.stages[index]?.counters
    },
    async stop() {
      if (running) child.kill('SIGINT')
      return withTimeout(exited, 15_000, 'frame-pipe to exit')
    },
  }
  return cli
}

/** Resident memory (KiB) and open file descriptors of a process, from /proc. */
export function procStats(pid: number): { rssKiB: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(status)
  return { rssKiB: rss ? Number(rss[1]) : NaN, fds: readdirSync(`/proc/${pid}/fd`).length }
}

/** Wait until `cond` holds (checked every 10 ms), or fail after `ms`. */
export async function until(cond: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** A figure for docs/reliability.md: logged by the test (ava --verbose shows it) as one `FIGURE` line. */
export function figure(t: ExecutionContext, item: string, values: Record<string, unknown>): void {
  t.log(`FIGURE ${item} ${JSON.stringify(values)}`)
}
