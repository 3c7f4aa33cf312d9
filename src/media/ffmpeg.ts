// Finding and running ffmpeg/ffprobe as child processes: which binary (an
// option, an environment variable, PATH, then an npm-shipped build the user
// chose to install: frame-pipe installs none itself), a process
// wrapper that keeps ffmpeg's last words for error messages and is always
// killed and awaited, and a probe of a file's video stream.

import { spawn, type ChildProcess } from 'node:child_process'
import { constants } from 'node:fs'
import { access, chmod, stat } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { FramePipeError } from '../core/errors.js'
import type { OptionSpec } from '../core/spec.js'

export type Tool = 'ffmpeg' | 'ffprobe'
export type ToolOrigin = 'option' | 'env' | 'PATH' | 'npm'

export interface FoundTool {
  tool: Tool
  path: string
  /** Where it was found. */
  from: ToolOrigin
  /** For a log line, e.g. `ffmpeg /usr/bin/ffmpeg (from PATH)`. */
  message: string
}

/** The `ffmpeg` option of every stage that runs it (camera, video, mp4). */
export const FFMPEG_OPTION: OptionSpec = {
  type: 'string',
  default: '',
  doc: 'ffmpeg to run (a path, or a name in PATH); empty = FRAME_PIPE_FFMPEG, then PATH, then an npm build you installed (@ffmpeg-installer/ffmpeg, ffmpeg-static)',
}

export const TOOL_ENV: Record<Tool, string> = { ffmpeg: 'FRAME_PIPE_FFMPEG', ffprobe: 'FRAME_PIPE_FFPROBE' }

/**
 * npm packages that ship an ffmpeg/ffprobe, checked in this order when
 * neither the option, the variable nor PATH names one. None is a dependency
 * of frame-pipe: a user opts in by installing one. The first of each pair
 * carries its binary inside the npm package (per-platform optional
 * dependencies), so it installs from a registry mirror or an offline cache;
 * the second downloads its binary in an install script, which fails behind
 * firewalls and offline, but is found when it did install.
 */
export const NPM_PACKAGES: Record<Tool, readonly string[]> = {
  ffmpeg: ['@ffmpeg-installer/ffmpeg', 'ffmpeg-static'],
  ffprobe: ['@ffprobe-installer/ffprobe', 'ffprobe-static'],
}

/** The npm command that opts in to an npm-shipped ffmpeg and ffprobe. */
export const NPM_OPT_IN = 'npm install @ffmpeg-installer/ffmpeg @ffprobe-installer/ffprobe'

/** What to run to install ffmpeg (with ffprobe), per system: the lines of the not-found error. */
export const INSTALL_LINES: readonly string[] = [
  'Debian/Ubuntu/Raspberry Pi OS: sudo apt install ffmpeg',
  'Fedora: sudo dnf install ffmpeg-free (or ffmpeg from RPM Fusion); RHEL/Rocky/Alma: enable EPEL and RPM Fusion, then sudo dnf install ffmpeg',
  'Arch: sudo pacman -S ffmpeg; Alpine: apk add ffmpeg',
  'macOS: brew install ffmpeg',
  'Windows: winget install --id Gyan.FFmpeg (or choco install ffmpeg), then open a new terminal so PATH is updated',
  `or, in your project, the npm build (ffmpeg 4.1, no system install): ${NPM_OPT_IN}`,
]

/** The lookup order, for the README and `inspect`. */
export const DISCOVERY_ORDER =
  'the stage option (`ffmpeg=` / `ffprobe=`: a path, or a name looked up in PATH), then the environment variable ' +
  'FRAME_PIPE_FFMPEG / FRAME_PIPE_FFPROBE, then PATH, then an npm build you installed yourself ' +
  '(@ffmpeg-installer/ffmpeg or ffmpeg-static / @ffprobe-installer/ffprobe or ffprobe-static). ' +
  'An option or variable that names a missing file is an error (no fallback)'

/** Find ffmpeg: option → FRAME_PIPE_FFMPEG → PATH → an npm build (NPM_PACKAGES). */
export function findFfmpeg(option?: string, stage?: string): Promise<FoundTool> {
  return findTool('ffmpeg', option, stage)
}

/** Find ffprobe: option → FRAME_PIPE_FFPROBE → PATH → an npm build (NPM_PACKAGES). */
export function findFfprobe(option?: string, stage?: string): Promise<FoundTool> {
  return findTool('ffprobe', option, stage)
}

export async function findTool(tool: Tool, option: string | undefined, stage?: string): Promise<FoundTool> {
  const found = (path: string, from: ToolOrigin, how: string): FoundTool => ({ tool, path, from, message: `${tool} ${path} (${how})` })
  const fail = (text: string): FramePipeError => new FramePipeError('ERR_IO', text, { stage })

  // An explicit choice that does not work is an error: silently running another ffmpeg would hide it.
  if (option) {
    const path = await resolveExplicit(option)
    if (typeof path !== 'string') throw fail(`${tool} option '${option}' ${path.why}`)
    return found(path, 'option', 'from the stage option')
  }
  const envName = TOOL_ENV[tool]
  const env = process.env[envName]
  if (env) {
    const path = await resolveExplicit(env)
    if (typeof path !== 'string') throw fail(`${envName}='${env}' ${path.why}`)
    return found(path, 'env', `from ${envName}`)
  }
  const inPath = await searchPath(tool)
  if (inPath) return found(inPath, 'PATH', 'from PATH')
  const why: string[] = []
  for (const name of NPM_PACKAGES[tool]) {
    const npm = await fromNpm(name)
    if (typeof npm === 'string') return found(npm, 'npm', `from ${name}`)
    // "not installed" is the normal case of an opt-in: only real trouble is worth a mention.
    if (npm.why !== 'is not installed') why.push(`${name} ${npm.why}`)
  }
  throw fail(notFoundMessage(tool, why))
}

/** The not-found error: what was looked at, and exactly what to install on each system. */
export function notFoundMessage(tool: Tool, npmTrouble: readonly string[] = []): string {
  const envName = TOOL_ENV[tool]
  return (
    `${tool} not found: ${envName} is not set, there is no ${tool} in PATH and no npm build of it is installed` +
    `${npmTrouble.length > 0 ? ` (${npmTrouble.join('; ')})` : ''}. ` +
    `camera, video and mp4 run ffmpeg (and video ffprobe); install it:\n${INSTALL_LINES.map((l) => `  ${l}`).join('\n')}\n` +
    `or give its path with ${tool}=/path/to/${tool} or ${envName}=/path/to/${tool}`
  )
}

async function isExecutable(path: string): Promise<{ why: string } | true> {
  try {
    const s = await stat(path)
    if (!s.isFile()) return { why: 'is not a file' }
    await access(path, constants.X_OK)
    return true
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return {
      why: code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not executable' : `cannot be used (${code ?? String(err)})`,
    }
  }
}

/** A path (contains a separator) is checked as is; a bare name is looked up in PATH. */
async function resolveExplicit(value: string): Promise<string | { why: string }> {
  if (!/[\\/]/.test(value)) {
    const inPath = await searchPath(value)
    return inPath ?? { why: 'was not found in PATH' }
  }
  const ok = await isExecutable(value)
  return ok === true ? value : ok
}

async function searchPath(name: string): Promise<string | undefined> {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean)
  const exts = process.platform === 'win32' ? ['', ...(process.env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';')] : ['']
  for (const dir of dirs) {
    for (const ext of exts) {
      const candidate = join(dir, name + ext)
      if ((await isExecutable(candidate)) === true) return candidate
    }
  }
  return undefined
}

async function fromNpm(name: string): Promise<string | { why: string }> {
  let path: unknown
  try {
    // A variable specifier: the package is the user's opt-in and usually absent.
    // @…-installer and ffprobe-static export { path }; ffmpeg-static exports the path itself.
    const mod = (await import(name)) as { default?: { path?: unknown } | string | null; path?: unknown }
    path = typeof mod.default === 'string' ? mod.default : (mod.default?.path ?? mod.path)
  } catch (err) {
    const e = err as NodeJS.ErrnoException | string
    if (typeof e === 'object' && e !== null && e.code === 'ERR_MODULE_NOT_FOUND') return { why: 'is not installed' }
    // The packages throw (sometimes a bare string) on platforms they have no binary for.
    return { why: `did not load (${typeof e === 'string' ? e : (e?.message ?? String(e))})` }
  }
  if (typeof path !== 'string') return { why: 'did not give a path' }
  let ok = await isExecutable(path)
  if (ok !== true && ok.why === 'is not executable') {
    // These packages make their binary executable in a postinstall script, which
    // npm may not run (npm 11 asks before running dependencies' install scripts,
    // and --ignore-scripts skips them); the binary is ours to chmod.
    await chmod(path, 0o755).catch(() => undefined)
    ok = await isExecutable(path)
  }
  return ok === true ? path : { why: `gave ${path}, which ${ok.why}` }
}

// ---------------------------------------------------------------------------

/** Arguments every ffmpeg run here starts with: no banner, no keyboard, no progress lines, log lines tagged with their level. */
export const FFMPEG_BASE_ARGS = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'level+info'] as const

export interface FfmpegExit {
  code: number | null
  signal: NodeJS.Signals | null
  /** stop() was called: the exit was asked for. */
  stopped: boolean
  /** The process could not be started at all (ENOENT, EACCES…). */
  spawnError?: Error
}

export interface FfmpegProcessOptions {
  /** The binary (from findFfmpeg / findFfprobe). */
  path: string
  args: readonly string[]
  /** 'pipe' to write into the process (e.g. frames to encode); default 'ignore'. */
  stdin?: 'pipe' | 'ignore'
  /** Called with every stderr line (level tag kept), e.g. to read stream parameters. */
  onStderrLine?: (line: string) => void
  /** stderr lines kept for messages. Default 20. */
  tailLines?: number
}

const LINE_MAX = 2000
const LEVEL = /\[(panic|fatal|error|warning|info|verbose|debug|trace)\] /

/**
 * One ffmpeg (or ffprobe) process: stdout to read, optionally stdin to
 * write, the last stderr lines, and an exit that is always awaited. A
 * process that exits on its own with code 0 ended normally; anything else
 * has a reason (`reason()`: ffmpeg's last error line).
 */
export class FfmpegProcess {
  readonly child: ChildProcess
  readonly stdout: Readable
  readonly stdin: Writable | null
  /** Resolves (never rejects) once the process has exited and its pipes are closed. */
  readonly exited: Promise<FfmpegExit>
  private readonly tail: string[] = []
  private readonly tailMax: number
  private partial = ''
  private stopped = false
  private spawnError: Error | undefined
  private exit: FfmpegExit | undefined
  private readonly onLine: ((line: string) => void) | undefined

  constructor(options: FfmpegProcessOptions) {
    this.tailMax = options.tailLines ?? 20
    this.onLine = options.onStderrLine
    // In a process group of its own (POSIX): a terminal's Ctrl-C goes to frame-pipe
    // alone, which stops ffmpeg in order (an mp4 gets the frames still in flight)
    // instead of ffmpeg quitting under it. If frame-pipe dies, ffmpeg still ends:
    // its stdout pipe breaks, or its stdin reaches EOF.
    this.child = spawn(options.path, options.args, {
      stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
      windowsHide: true,
      detached: process.platform !== 'win32',
    })
    this.stdout = this.child.stdout!
    this.stdin = this.child.stdin
    this.child.stderr!.setEncoding('utf8')
    this.child.stderr!.on('data', (text: string) => this.onStderr(text))
    // Errors on our ends of the pipes (EPIPE after ffmpeg died) are reported through the exit.
    this.child.stderr!.on('error', (err) => this.note(err))
    this.stdout.on('error', (err) => this.note(err))
    this.stdin?.on('error', (err) => this.note(err))
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => {
        this.spawnError ??= err
      })
      this.child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.partial) this.addLine(this.partial)
        this.partial = ''
        this.exit = { code: this.spawnError ? null : code, signal, stopped: this.stopped, spawnError: this.spawnError }
        resolve(this.exit)
      })
    })
  }

  get pid(): number | undefined {
    return this.child.pid
  }

  get running(): boolean {
    return this.exit === undefined
  }

  /** The last stderr lines, level tags removed. */
  stderrTail(): string[] {
    return this.tail.map(stripLevel)
  }

  /** ffmpeg's own reason for a failure: its last error line, else its last line. */
  reason(): string | undefined {
    for (let i = this.tail.length - 1; i >= 0; i--) {
      const m = LEVEL.exec(this.tail[i]!)
      if (m && (m[1] === 'error' || m[1] === 'fatal' || m[1] === 'panic')) return stripLevel(this.tail[i]!)
    }
    const last = this.tail.findLast((l) => !/\[(info|verbose|debug|trace)\] /.test(l))
    return last === undefined ? undefined : stripLevel(last)
  }

  /**
   * Why the process ended, as one line, or undefined when it ended normally
   * (exit code 0) or because stop() asked it to.
   */
  failure(exit: FfmpegExit, what = 'ffmpeg'): string | undefined {
    if (exit.spawnError) {
      const e = exit.spawnError as NodeJS.ErrnoException
      return `cannot run ${what} (${this.child.spawnfile}): ${e.code ?? e.message}`
    }
    if (exit.stopped || exit.code === 0) return undefined
    const reason = this.reason()
    const how = exit.signal ? `${what} was killed by ${exit.signal}` : `${what} exited with code ${exit.code}`
    return reason ? `${how}: ${reason}` : how
  }

  /**
   * Stop the process and wait for it: our end of stdout is closed first (a
   * process blocked writing to a full pipe gets EPIPE instead of sleeping
   * through the signal), then SIGTERM, then SIGKILL after `graceMs`.
   */
  async stop(graceMs = 2000): Promise<FfmpegExit> {
    if (this.exit) return this.exit
    this.stopped = true
    this.stdout.destroy()
    this.stdin?.destroy()
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
    }
  }

  private onStderr(text: string): void {
    const lines = (this.partial + text).split(/\r?\n|\r/)
    this.partial = lines.pop()!.slice(-LINE_MAX)
    for (const line of lines) if (line.trim()) this.addLine(line.slice(0, LINE_MAX))
  }

  private addLine(line: string): void {
    this.tail.push(line)
    if (this.tail.length > this.tailMax) this.tail.shift()
    this.onLine?.(line)
  }

  private note(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code
    // EPIPE/ECONNRESET follow from the process going away, which the exit reports.
    if (code !== 'EPIPE' && code !== 'ECONNRESET' && code !== 'ERR_STREAM_DESTROYED') this.addLine(`[error] pipe: ${err.message}`)
  }
}

function stripLevel(line: string): string {
  return line
    .replace(LEVEL, '')
    .replace(/^\[[^\]]+ @ 0x[0-9a-f]+\] /i, '')
    .trim()
}

/**
 * What ffmpeg's log says about its streams: the codec of the first input
 * video stream (`Input #0, …` then `Stream #0:0: Video: mjpeg …`) and the
 * size of the first output video stream (`Output #0, …` then
 * `Stream #0:0: Video: rawvideo …, 640x480 …`). Feed it every stderr line.
 */
export class StreamLog {
  inputCodec: string | undefined
  outputSize: { width: number; height: number } | undefined
  private section: 'none' | 'input' | 'output' = 'none'

  /** Returns what this line told, if anything new. */
  line(line: string): 'inputCodec' | 'outputSize' | undefined {
    const text = line.replace(LEVEL, '')
    if (/^\s*Input #0\b/.test(text)) this.section = 'input'
    else if (/^\s*Output #0\b/.test(text)) this.section = 'output'
    else if (/^\s*(Input|Output) #\d/.test(text)) this.section = 'none'
    if (!/^\s*Stream #0:\d+.*?: Video: /.test(text)) return undefined
    if (this.section === 'input' && this.inputCodec === undefined) {
      this.inputCodec = /: Video: ([\w-]+)/.exec(text)?.[1]
      return this.inputCodec === undefined ? undefined : 'inputCodec'
    }
    if (this.section === 'output' && this.outputSize === undefined) {
      const m = /, ([1-9]\d{0,5})x([1-9]\d{0,5})\b/.exec(text)
      if (!m) return undefined
      this.outputSize = { width: Number(m[1]), height: Number(m[2]) }
      return 'outputSize'
    }
    return undefined
  }
}

// ---------------------------------------------------------------------------

export interface VideoProbe {
  codec: string
  width: number
  height: number
  /** Frames per second (avg_frame_rate, else r_frame_rate); 0 when unknown. */
  fps: number
  /** Seconds; 0 when unknown (live input, some containers). */
  duration: number
}

const PROBE_OUTPUT_MAX = 1 << 20

/** Codec, size and rate of the first video stream of `file`, by ffprobe. */
export async function probeVideo(ffprobe: string, file: string, stage: string): Promise<VideoProbe> {
  const proc = new FfmpegProcess({
    path: ffprobe,
    args: [
      '-hide_banner',
      '-v',
      'error',
      '-select_streams',
      'v:0',
      '-show_entries',
      'stream=codec_name,width,height,avg_frame_rate,r_frame_rate:format=duration',
      '-of',
      'json',
      file,
    ],
  })
  const chunks: Buffer[] = []
  let size = 0
  proc.stdout.on('data', (c: Buffer) => {
    size += c.length
    if (size <= PROBE_OUTPUT_MAX) chunks.push(c)
  })
  const exit = await proc.exited
  const failure = proc.failure(exit, 'ffprobe')
  if (failure) throw new FramePipeError('ERR_IO', `cannot read ${file}: ${failure}`, { stage })
  let parsed: { streams?: Array<Record<string, unknown>>; format?: Record<string, unknown> }
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch (err) {
    throw new FramePipeError('ERR_IO', `cannot read ${file}: ffprobe gave output that is not JSON (${(err as Error).message})`, {
      stage,
      cause: err,
    })
  }
  const s = parsed.streams?.[0]
  if (!s) throw new FramePipeError('ERR_IO', `${file} has no video stream`, { stage })
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : Number(v) || 0)
  return {
    codec: String(s.codec_name ?? 'unknown'),
    width: num(s.width),
    height: num(s.height),
    fps: rate(s.avg_frame_rate) || rate(s.r_frame_rate),
    duration: num(parsed.format?.duration),
  }
}

/** '30000/1001' → 29.97; '0/0' or junk → 0. */
function rate(v: unknown): number {
  const m = /^(\d+)(?:\/(\d+))?$/.exec(String(v ?? ''))
  if (!m) return 0
  const d = m[2] === undefined ? 1 : Number(m[2])
  return d > 0 ? Number(m[1]) / d : 0
}
