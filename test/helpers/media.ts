// ffprobe/ffmpeg checks for recordings (AVI, MP4): the real tools, Debian's
// first (CI installs them with apt), else the npm-shipped builds.

import type { ExecutionContext } from 'ava'
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { FfmpegProcess } from '../../src/media/ffmpeg.js'
import { withTimeout } from './index.js'

const run = promisify(execFile)

function locate(debian: string, npmPackage: string): string | undefined {
  if (existsSync(debian)) return debian
  try {
    const path = (createRequire(import.meta.url)(npmPackage) as { path?: string }).path
    return path && existsSync(path) ? path : undefined
  } catch {
    // The optional dependency is not installed: the tool is absent.
    return undefined
  }
}

export const FFPROBE = locate('/usr/bin/ffprobe', '@ffprobe-installer/ffprobe')
export const FFMPEG = locate('/usr/bin/ffmpeg', '@ffmpeg-installer/ffmpeg')
export const FFPLAY = existsSync('/usr/bin/ffplay') ? '/usr/bin/ffplay' : undefined
export const NO_FFMPEG_REASON = 'ffmpeg/ffprobe not found (apt-get install ffmpeg); .ci/run installs them'

export interface Probe {
  /** Frames counted by reading the whole stream (-count_frames). */
  frames: number
  /** Frames the container header declares. */
  declared: number | undefined
  width: number
  height: number
  /** r_frame_rate as a number, and as ffprobe printed it. */
  fps: number
  rate: string
  duration: number
  codec: string
}

export async function probe(file: string): Promise<Probe> {
  const { stdout } = await run(
    FFPROBE!,
    [
      '-v',
      'error',
      '-count_frames',
      '-select_streams',
      'v:0',
      '-show_entries',
      'stream=nb_read_frames,nb_frames,width,height,r_frame_rate,codec_name',
      '-show_entries',
      'format=duration',
      '-of',
      'json',
      file,
    ],
    { timeout: 20_000 },
  )
  const j = JSON.parse(stdout) as { streams: Array<Record<string, string | number>>; format: { duration?: string } }
  const s = j.streams[0]
  if (!s) throw new Error(`ffprobe found no video stream in ${file}`)
  const [num, den] = String(s.r_frame_rate).split('/').map(Number)
  return {
    frames: Number(s.nb_read_frames),
    declared: s.nb_frames === undefined || s.nb_frames === 'N/A' ? undefined : Number(s.nb_frames),
    width: Number(s.width),
    height: Number(s.height),
    fps: num! / (den ?? 1),
    rate: String(s.r_frame_rate),
    duration: Number(j.format.duration),
    codec: String(s.codec_name),
  }
}

/** Decode every frame; resolves with what ffmpeg printed at level error (empty: clean). */
export async function decodeErrors(file: string): Promise<string> {
  const { stdout, stderr } = await run(FFMPEG!, ['-nostdin', '-v', 'error', '-i', file, '-f', 'null', '-'], { timeout: 30_000 })
  return (stdout + stderr).trim()
}

/**
 * Play `file` with ffplay (SDL's dummy video and audio drivers: no display
 * needed) in real time to its end; resolves with the last clock ffplay showed
 * and the frames it dropped (fd=).
 */
export async function play(file: string): Promise<{ clock: number; dropped: number }> {
  const env = { ...process.env, SDL_VIDEODRIVER: 'dummy', SDL_AUDIODRIVER: 'dummy' }
  const { stderr } = await run(FFPLAY!, ['-hide_banner', '-autoexit', '-stats', '-an', '-i', file], { env, timeout: 30_000 })
  const stats = [...stderr.matchAll(/(-?[\d.]+) M-V:\s*-?[\d.]+ fd=\s*(\d+)/g)]
  const last = stats[stats.length - 1]
  if (!last) throw new Error(`ffplay printed no stats for ${file}: ${stderr.slice(-500)}`)
  return { clock: Number(last[1]), dropped: Number(last[2]) }
}

// ---------------------------------------------------------------------------
// A recording in a child process (test/record-child.ts), to be killed.

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CHILD = fileURLToPath(new URL('./record-child.ts', import.meta.url))

export interface Recorder {
  /** Every JSON line the child printed so far. */
  lines: Array<Record<string, any>>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  kill(signal: NodeJS.Signals): void
  /** Resolves once `ok(lines)`; rejects if the child exits first or after 20 s. */
  waitFor(ok: (lines: Array<Record<string, any>>) => boolean, what: string): Promise<void>
}

/**
 * Run test/record-child.ts. With `group`, the child leads a process group of
 * its own and kill() signals the whole group, as a terminal's Ctrl-C does
 * (ffmpeg children included).
 */
export function startRecorder(t: ExecutionContext, kind: 'avi' | 'mp4', dir: string, flushMs = 250, group = false): Recorder {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, kind, dir, String(flushMs)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: group,
  })
  const signal = (sig: NodeJS.Signals): void => {
    if (group) process.kill(-child.pid!, sig)
    else child.kill(sig)
  }
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) signal('SIGKILL')
  })
  const lines: Array<Record<string, any>> = []
  const waiters = new Set<() => void>()
  let partial = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    partial += text
    const parts = partial.split('\n')
    partial = parts.pop()!
    for (const line of parts) if (line) lines.push(JSON.parse(line))
    for (const w of waiters) w()
  })
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    // 'close', not 'exit': after 'exit' the last lines may still be in the stdout pipe.
    child.on('close', (code, signal) => {
      resolve({ code, signal })
      for (const w of waiters) w()
    })
  })
  return {
    lines,
    exited,
    kill: signal,
    waitFor: (ok, what) => {
      let check: () => void = () => undefined
      return withTimeout(
        new Promise<void>((resolve, reject) => {
          check = () => {
            if (ok(lines)) resolve()
            else if (child.exitCode !== null || child.signalCode !== null) reject(new Error(`recorder exited before ${what}: ${stderr}`))
          }
          waiters.add(check)
          check()
        }),
        20_000,
        `${what} (recorder stderr: ${stderr})`,
      ).finally(() => waiters.delete(check))
    },
  }
}

/** Run ffmpeg (the binary at `path`) to completion; its stdout as one Buffer, or an error with ffmpeg's reason. */
export async function ffmpegOutput(path: string, args: string[]): Promise<Buffer> {
  const proc = new FfmpegProcess({ path, args: ['-hide_banner', '-loglevel', 'error', '-y', ...args] })
  const out: Buffer[] = []
  proc.stdout.on('data', (c: Buffer) => out.push(c))
  const exit = await proc.exited
  const failure = proc.failure(exit)
  if (failure) throw new Error(`ffmpeg ${args.join(' ')}: ${failure}`)
  return Buffer.concat(out)
}

/** Whether a process with this pid still exists. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false
    throw err
  }
}
