// The `frame-pipe` command: run a pipeline description, inspect stages, run the demo.

import { parseArgs } from 'node:util'
import { FramePipeError } from '../core/errors.js'
import { PipelineSyntaxError } from '../launch-error.js'
import { pipeline } from '../core/pipeline.js'
import { stageInfo } from '../core/stage.js'
import { isReaderGone } from '../sinks/stdout.js'
import { StatusReporter } from './status.js'
import { handleSignals } from './signals.js'
import { parseDuration } from '../core/spec.js'
import { applyLimits, checkFrameLimit } from './limits.js'
import { isLogLevel, LOG_LEVELS, shows, type LogLevel } from './log.js'
import { disableSharpCache } from '../image/sharp-loader.js'

const USAGE = `Usage:
  frame-pipe [options] '<source> [key=value…] ! <stage> … ! <sink>'
  frame-pipe inspect [--json] [stage] list stages, or show one stage's options
  frame-pipe cert [--out DIR] [--name HOST]… [--days N] [--force]
                                      a self-signed certificate (cert.pem) and key (key.pem) for trying TLS
  frame-pipe demo [--frames N] [-t T] [--out DIR] [--port P]
                                      test pattern → jpeg → TCP (native header) → browser viewer and files,
                                      in one process; 900 frames (30 s) by default, --frames 0 until Ctrl-C

Examples:
  frame-pipe 'testsrc fps=30 ! jpeg quality=80 ! prefix ! tcp-server port=9000'
  frame-pipe --frames 100 'tcp-client port=9000 ! unprefix ! files dir=out'

Options:
  --frames N         stop after N frames (exact: counted on the last edge that carries frames)
  -t, --duration T   stop after T: 10 (seconds), 500ms, 1.5m, 00:01:30
  --json             write stats as JSON lines (to stdout, or stderr when the pipeline writes to stdout)
  --loglevel LEVEL   quiet | error | warning | info (default) | debug
  -q, --quiet        the same as --loglevel error: no status line, no summary, no event lines
  --debug            show stack traces on errors
  -h, --help, -v, --version

Durations in stage options read the same way: a bare number is seconds (segment=15 is 15 s), 500ms for ms.`

/** Flags that belong to one command (or two): anywhere else they are a mistake, not a silent no-op. */
const COMMAND_FLAGS = { out: ['demo', 'cert'], port: ['demo'], name: ['cert'], days: ['cert'], force: ['cert'] } as const

/** Exit codes: 0 done, 1 runtime failure, 2 bad command line or pipeline, 130 aborted by a second Ctrl-C. */
export async function main(argv: string[]): Promise<number> {
  // Frames are never encoded twice with the same input: sharp's operation cache would only hold memory.
  disableSharpCache()
  let args
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        debug: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
        frames: { type: 'string' },
        duration: { type: 'string', short: 't' },
        loglevel: { type: 'string' },
        out: { type: 'string' },
        port: { type: 'string' },
        name: { type: 'string', multiple: true },
        days: { type: 'string' },
        force: { type: 'boolean' },
      },
    })
  } catch (err) {
    process.stderr.write(`frame-pipe: ${(err as Error).message}\n${USAGE}\n`)
    return 2
  }
  const { values, positionals } = args
  if (values.help) {
    process.stdout.write(USAGE + '\n')
    return 0
  }
  if (values.version) {
    // Loaded only when asked: it starts ffmpeg to read its version.
    const { versionText } = await import('./version.js')
    process.stdout.write((await versionText()) + '\n')
    return 0
  }
  let level: LogLevel = values.quiet ? 'error' : 'info'
  if (values.loglevel !== undefined) {
    if (!isLogLevel(values.loglevel)) {
      process.stderr.write(`frame-pipe: --loglevel must be one of ${LOG_LEVELS.join(', ')}, received '${values.loglevel}'\n`)
      return 2
    }
    level = values.loglevel
  }
  const debug = (values.debug ?? false) || level === 'debug'
  const command = positionals[0]
  for (const [flag, commands] of Object.entries(COMMAND_FLAGS)) {
    if (values[flag as keyof typeof COMMAND_FLAGS] !== undefined && !(commands as readonly string[]).includes(command ?? '')) {
      const owners = commands.map((c) => `'frame-pipe ${c}'`).join(' and ')
      if (shows(level, 'error')) process.stderr.write(`frame-pipe: --${flag} is an option of ${owners} only\n`)
      return 2
    }
  }
  try {
    // The stages (and the registry that lists them) load only when a command needs them: `--help` stays fast.
    if (command === 'inspect') {
      const { inspectAll, inspectJson, inspectStage } = await import('./inspect.js')
      const name = positionals[1]
      const text = values.json ? inspectJson(name) : name ? inspectStage(name) : inspectAll()
      process.stdout.write(text + '\n')
      return 0
    }
    if (command === 'cert') {
      const days = integerFlag('days', values.days, 365, 1, 36500)
      const { runCert } = await import('./cert.js')
      return await runCert({ dir: values.out ?? '.', names: values.name ?? [], days, force: values.force ?? false })
    }
    const duration = durationFlag(values.duration)
    if (command === 'demo') {
      const frames = integerFlag('frames', values.frames, 900, 0, Number.MAX_SAFE_INTEGER)
      const port = integerFlag('port', values.port, 8080, 0, 65535)
      const { runDemo } = await import('./demo.js')
      return await runDemo({ frames, port, duration, out: values.out ?? 'out/demo', level, json: values.json ?? false })
    }
    if (positionals.length === 0) {
      process.stderr.write(USAGE + '\n')
      return 2
    }
    const frames = values.frames === undefined ? undefined : integerFlag('frames', values.frames, 0, 0, Number.MAX_SAFE_INTEGER)
    return await runDescription(positionals.join(' '), { json: values.json ?? false, level, frames, duration })
  } catch (err) {
    if (shows(level, 'error')) reportError(err, debug)
    return err instanceof PipelineSyntaxError ||
      (err instanceof FramePipeError && ['ERR_INVALID_OPTION', 'ERR_UNKNOWN_STAGE', 'ERR_LINK', 'ERR_PIPELINE_SYNTAX'].includes(err.code))
      ? 2
      : 1
  }
}

function integerFlag(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!/^\d+$/.test(text) || n < min || n > max) {
    throw new FramePipeError('ERR_INVALID_OPTION', `--${name} must be an integer between ${min} and ${max}, received '${text}'`)
  }
  return n
}

/** `--duration` / `-t`: a duration as stage options take it (a bare number is seconds). */
function durationFlag(text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const ms = parseDuration(text)
  if (ms === undefined) {
    throw new FramePipeError(
      'ERR_INVALID_OPTION',
      `--duration must be a duration such as 10 (seconds), 500ms, 1.5m or 00:01:30, received '${text}'`,
    )
  }
  return ms
}

export interface RunOptions {
  json: boolean
  /** What reaches stderr (see log.ts); default info. */
  level?: LogLevel
  /** Stop after this many frames (see limits.ts). */
  frames?: number
  /** Stop after this many milliseconds. */
  duration?: number
}

export async function runDescription(text: string, options: RunOptions): Promise<number> {
  const level = options.level ?? 'info'
  const { loadPlan, planDescription } = await import('../plan.js')
  const plan = planDescription(text)
  for (const { spec, literalSecrets } of plan) {
    for (const key of literalSecrets) {
      if (!shows(level, 'warning')) continue
      process.stderr.write(
        `frame-pipe: warning: ${spec.name} ${key} is written on the command line, where other users of this machine can read it (ps); give ${key}=@FILE or ${key}=env:NAME instead\n`,
      )
    }
  }
  if (options.frames !== undefined) checkFrameLimit(plan.map((p) => p.spec.output))
  const stages = await loadPlan(plan)
  const toStdout = stageInfo(stages[stages.length - 1]!)?.name === 'stdout'
  const status = new StatusReporter(stages, {
    log: process.stderr,
    live: process.stderr.isTTY === true,
    json: options.json ? (toStdout ? process.stderr : process.stdout) : undefined,
    level,
  })
  const limits = applyLimits(stages, { frames: options.frames, duration: options.duration }, (line) => status.logLine(line))
  const interrupted = handleSignals(stages, status)
  status.start()
  limits.start()
  let failed = false
  try {
    await pipeline(...limits.streams)
  } catch (err) {
    // `frame-pipe '… ! stdout' | head`: the reader leaving is how such a pipeline ends, not a failure.
    if (isReaderGone(err)) return 0
    failed = !interrupted.aborted
    if (failed) throw err
  } finally {
    limits.dispose()
    interrupted.dispose()
    // A pipeline that failed before anything flowed (a port in use, a refused connection) gets its error, not a zero summary.
    status.finish({ summary: !(failed && status.nothingRan()) })
  }
  return interrupted.aborted ? 130 : 0
}

export function reportError(err: unknown, debug: boolean): void {
  const message = err instanceof Error ? err.message : String(err)
  process.stderr.write(`frame-pipe: ${message}\n`)
  if (err instanceof PipelineSyntaxError) process.stderr.write(err.pointer() + '\n')
  if (debug && err instanceof Error) {
    process.stderr.write(`${err.stack ?? ''}\n`)
    if (err.cause instanceof Error) process.stderr.write(`caused by: ${err.cause.stack ?? err.cause.message}\n`)
  } else if (!(err instanceof FramePipeError)) {
    process.stderr.write('(an unexpected error: run with --debug for the stack trace)\n')
  }
}
