// Real Python + OpenCV peers (Debian's python3-opencv) for the seed-program tests.
// A test that needs them skips only when they are absent, and says why; CI installs them.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ExecutionContext } from 'ava'

/** Debian's interpreter: python3-opencv installs cv2 for /usr/bin/python3, not for other pythons on PATH. */
const CANDIDATES = [process.env.FRAME_PIPE_PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean) as string[]

let cached: string | null | undefined

/** A python3 that can `import cv2, numpy`, or null. */
export function pythonWithOpenCV(): string | null {
  if (cached !== undefined) return cached
  cached = null
  for (const exe of CANDIDATES) {
    const r = spawnSync(exe, ['-c', 'import cv2, numpy'], { stdio: 'ignore', timeout: 20_000 })
    if (r.status === 0) {
      cached = exe
      break
    }
  }
  return cached
}

export const NO_PYTHON_REASON = 'python3 with OpenCV not found (apt-get install python3-opencv); .ci/run installs it'

/** Path of a peer script in test/peers/. */
export function peerScript(name: string): string {
  return fileURLToPath(new URL(`../interop/peers/${name}`, import.meta.url))
}

export interface PeerProcess {
  child: ChildProcess
  /** Everything the peer printed so far (stdout and stderr). */
  output(): string
  /** Resolves with the exit code; rejects after `ms`. */
  exited(ms: number): Promise<number | null>
  /** Resolves when the output matches `pattern`; rejects after `ms` or if the peer exits first. */
  waitFor(pattern: RegExp, ms: number): Promise<RegExpExecArray>
}

/** Start a peer script; it is killed in the test's teardown whatever happens. */
export function startPeer(t: ExecutionContext, script: string, args: string[], options: { cwd?: string } = {}): PeerProcess {
  const python = pythonWithOpenCV()
  if (!python) throw new Error(NO_PYTHON_REASON)
  const child = spawn(python, ['-u', peerScript(script), ...args], { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  let exitCode: number | null | undefined
  const waiters = new Set<() => void>()
  const wake = (): void => {
    for (const w of waiters) w()
  }
  child.stdout!.on('data', (d: Buffer) => {
    out += d
    wake()
  })
  child.stderr!.on('data', (d: Buffer) => {
    out += d
    wake()
  })
  child.on('close', (code) => {
    exitCode = code
    wake()
  })
  t.teardown(() => {
    if (exitCode === undefined) child.kill('SIGKILL')
  })
  const wait = <T>(check: () => T | undefined, ms: number, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const done = (): void => {
        const v = check()
        if (v !== undefined) {
          cleanup()
          resolve(v)
        } else if (exitCode !== undefined && what !== 'exit') {
          cleanup()
          reject(new Error(`${script} exited (${exitCode}) before ${what}; output:\n${out}`))
        }
      }
      const timer = setTimeout(() => {
        cleanup()
        reject(new Error(`${script}: timed out after ${ms} ms waiting for ${what}; output:\n${out}`))
      }, ms)
      const cleanup = (): void => {
        clearTimeout(timer)
        waiters.delete(done)
      }
      waiters.add(done)
      done()
    })
  return {
    child,
    output: () => out,
    exited: (ms) => wait(() => (exitCode === undefined ? undefined : exitCode), ms, 'exit'),
    waitFor: (pattern, ms) => wait(() => pattern.exec(out) ?? undefined, ms, `output matching ${pattern}`),
  }
}
