// Running one sender/receiver pair for the peers bench: two child processes
// over loopback TCP, the receiver always the listening end.
//
// Order and clock: the receiver is started first and the bench waits until
// its port is in LISTEN state (read from /proc/net/tcp, so no probe
// connection is made that a one-client receiver would take for the sender);
// then the clock starts and the sender is launched. wall = from that launch
// to the later of the two exits, so the sender's start-up is inside it, as in
// issue 9's table.
//
// CPU: each child runs under GNU time (`/usr/bin/time -f '%U %S' -o FILE`),
// which reports the getrusage() of the process it waited for (user + system,
// all threads, including start-up). The time wrapper itself is a fork/exec of
// about a millisecond and is not in the figure. Without /usr/bin/time the CPU
// columns read '?'.

import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import type { Writable } from 'node:stream'

export const TIME_BIN = '/usr/bin/time'
export const haveTime = existsSync(TIME_BIN)

export interface Command {
  file: string
  args: string[]
  env?: NodeJS.ProcessEnv
}

/** What a process printed: matching lines counted on the fly (GStreamer prints one per buffer), and the last lines kept. */
export class Output {
  count = 0
  readonly tail: string[] = []
  private partial = ''

  constructor(
    private readonly match?: RegExp,
    private readonly keep = 40,
  ) {}

  push(chunk: Buffer): void {
    const lines = (this.partial + chunk.toString('utf8')).split('\n')
    this.partial = lines.pop() ?? ''
    for (const line of lines) this.line(line)
  }

  end(): void {
    if (this.partial) this.line(this.partial)
    this.partial = ''
  }

  text(): string {
    return this.tail.join('\n')
  }

  private line(line: string): void {
    if (this.match?.test(line)) this.count++
    this.tail.push(line)
    if (this.tail.length > this.keep) this.tail.shift()
  }
}

export interface Side {
  command: Command
  /** Lines of stdout to count (GStreamer's per-buffer messages). */
  countLines?: RegExp
}

export interface PairOptions {
  port: number
  receiver: Side
  sender: Side
  /** Writes the sender's standard input (frame-pipe's senders read frames from stdin); ends it when done. */
  feed?: (stdin: Writable) => Promise<void>
  timeoutMs: number
  /** Where the rusage files go. */
  tmpDir: string
}

export interface PairResult {
  /** Set when the pair did not run through: the reason. */
  error?: string
  wallMs: number
  sendCpuMs: number | undefined
  recvCpuMs: number | undefined
  /** CPU time of this (the bench) process during the run: the feeder, for frame-pipe's senders. */
  benchCpuMs: number
  receiverOut: Output
  senderOut: Output
}

let serial = 0

/** Children still running: ended with their groups if the bench itself is interrupted (they are detached, so Ctrl-C does not reach them). */
const live = new Set<Running>()
let handlersInstalled = false

function installInterruptHandlers(): void {
  if (handlersInstalled) return
  handlersInstalled = true
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const r of live) killGroup(r)
      process.exit(130)
    })
  }
}

/** After one side has exited, how long the other gets to finish on its own. */
const GRACE_MS = 15_000

interface Running {
  child: ChildProcess
  stdout: Output
  stderr: Output
  timeFile: string
  /** performance.now() at exit, and the exit status. */
  exited: Promise<{ at: number; code: number | null; signal: NodeJS.Signals | null }>
  /** stdout and stderr fully read. */
  closed: Promise<void>
}

function start(side: Side, tmpDir: string, stdin: 'pipe' | 'ignore'): Running {
  const timeFile = join(tmpDir, `rusage-${process.pid}-${serial++}.txt`)
  const { file, args, env } = side.command
  const [bin, argv] = haveTime ? [TIME_BIN, ['-f', '%U %S', '-o', timeFile, file, ...args]] : [file, args]
  // Own process group: a stuck run is ended with its whole group, by id.
  installInterruptHandlers()
  const child = spawn(bin, argv, { stdio: [stdin, 'pipe', 'pipe'], detached: true, env: env ?? process.env })
  const stdout = new Output(side.countLines)
  const stderr = new Output()
  child.stdout!.on('data', (c: Buffer) => stdout.push(c))
  child.stderr!.on('data', (c: Buffer) => stderr.push(c))
  const exited = new Promise<{ at: number; code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ at: performance.now(), code, signal }))
    child.on('error', (err) => {
      stderr.tail.push(`spawn failed: ${err.message}`)
      resolve({ at: performance.now(), code: -1, signal: null })
    })
  })
  const closed = new Promise<void>((resolve) => {
    child.on('close', () => {
      stdout.end()
      stderr.end()
      resolve()
    })
    child.on('error', () => resolve())
  })
  const running: Running = { child, stdout, stderr, timeFile, exited, closed }
  live.add(running)
  void exited.then(() => live.delete(running))
  return running
}

function killGroup(r: Running): void {
  if (r.child.pid === undefined || r.child.exitCode !== null || r.child.signalCode !== null) return
  try {
    process.kill(-r.child.pid, 'SIGKILL')
  } catch {
    // Already gone between the check and the kill.
  }
}

/** user + system CPU ms from GNU time's file (its last line; earlier lines may say 'Command exited with non-zero status'). */
function readCpu(file: string): number | undefined {
  if (!haveTime || !existsSync(file)) return undefined
  const lines = readFileSync(file, 'utf8').trim().split('\n')
  const m = /^([\d.]+) ([\d.]+)$/.exec(lines[lines.length - 1] ?? '')
  return m ? (Number(m[1]) + Number(m[2])) * 1000 : undefined
}

/** Sockets in LISTEN state on `port` (IPv4 or IPv6), from /proc/net/tcp*. */
function listening(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string
    try {
      text = readFileSync(table, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/)
      if (f[1]?.endsWith(':' + hex) && f[3] === '0A') return true
    }
  }
  return false
}

export const canSeeListeners = existsSync('/proc/net/tcp')

async function waitListening(port: number, r: Running, timeoutMs: number): Promise<string | undefined> {
  if (!canSeeListeners) {
    // No /proc (not Linux): give the receiver a fixed head start instead.
    await delay(2000)
    return undefined
  }
  let gone = false
  void r.exited.then(() => {
    gone = true
  })
  const until = performance.now() + timeoutMs
  while (performance.now() < until) {
    if (listening(port)) return undefined
    if (gone) return 'receiver exited before listening'
    await delay(5)
  }
  return `receiver not listening on port ${port} after ${timeoutMs} ms`
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** A port that was free a moment ago (the receivers need a number before they start). */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject))
  const port = (server.address() as { port: number }).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

function describeExit(who: string, e: { code: number | null; signal: NodeJS.Signals | null }, out: Output): string | undefined {
  if (e.code === 0) return undefined
  const why = e.signal ? `killed by ${e.signal}` : `exit ${e.code}`
  // The last two lines that say something (not GNU time's own, not a syntax error's ^ pointer).
  const last = out.tail
    .filter((l) => /[^\s^]/.test(l) && !/^Command (exited|terminated)/.test(l))
    .slice(-2)
    .map((l) => l.trim())
    .join(' / ')
  return `${who} ${why}${last ? `: ${last.slice(0, 240)}` : ''}`
}

export async function runPair(o: PairOptions): Promise<PairResult> {
  const recv = start(o.receiver, o.tmpDir, 'ignore')
  const notReady = await waitListening(o.port, recv, 20_000)
  if (notReady) {
    killGroup(recv)
    await recv.closed
    const exit = await recv.exited
    return {
      error: describeExit('receiver', exit, recv.stderr) ?? notReady,
      wallMs: 0,
      sendCpuMs: undefined,
      recvCpuMs: undefined,
      benchCpuMs: 0,
      receiverOut: recv.stdout,
      senderOut: new Output(),
    }
  }
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const send = start(o.sender, o.tmpDir, o.feed ? 'pipe' : 'ignore')
  let feedError: string | undefined
  if (o.feed) {
    const stdin = send.child.stdin!
    // EPIPE when the sender dies early: its exit status tells why.
    stdin.on('error', (err) => {
      feedError ??= `feeding the sender: ${err.message}`
    })
    o.feed(stdin).catch((err: Error) => {
      feedError ??= `feeding the sender: ${err.message}`
    })
  }
  let stuck: string | undefined
  const timers: NodeJS.Timeout[] = []
  const giveUp = (why: string): void => {
    stuck ??= why
    killGroup(send)
    killGroup(recv)
  }
  timers.push(setTimeout(() => giveUp(`timed out after ${o.timeoutMs / 1000} s`), o.timeoutMs))
  // A sender that failed leaves a receiver waiting for a client forever; a side that finished gives the other GRACE_MS.
  void send.exited.then((e) => {
    if (e.code !== 0) killGroup(recv)
    else timers.push(setTimeout(() => giveUp(`receiver still running ${GRACE_MS / 1000} s after the sender ended`), GRACE_MS))
  })
  void recv.exited.then(() =>
    timers.push(setTimeout(() => giveUp(`sender still running ${GRACE_MS / 1000} s after the receiver ended`), GRACE_MS)),
  )
  const [se, re] = await Promise.all([send.exited, recv.exited])
  for (const t of timers) clearTimeout(t)
  await Promise.all([send.closed, recv.closed])
  const cpu = process.cpuUsage(cpu0)
  const error = describeExit('sender', se, send.stderr) ?? stuck ?? describeExit('receiver', re, recv.stderr) ?? feedError
  return {
    error,
    wallMs: Math.max(se.at, re.at) - t0,
    sendCpuMs: readCpu(send.timeFile),
    recvCpuMs: readCpu(recv.timeFile),
    benchCpuMs: (cpu.user + cpu.system) / 1000,
    receiverOut: recv.stdout,
    senderOut: send.stdout,
  }
}
