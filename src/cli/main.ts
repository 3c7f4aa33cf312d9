// The `frame-pipe` command: run a pipeline description, inspect stages, run the demo.

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { FramePipeError } from '../core/errors.js'
import { PipelineSyntaxError } from '../launch-error.js'
import { pipeline } from '../core/pipeline.js'
import { stageInfo } from '../core/stage.js'
import { isReaderGone } from '../sinks/stdout.js'
import { StatusReporter } from './status.js'
import { handleSignals } from './signals.js'
import { disableSharpCache } from '../image/sharp-loader.js'

const USAGE = `Usage:
  frame-pipe [--json] [--quiet] [--debug] '<source> [key=value…] ! <stage> … ! <sink>'
  frame-pipe inspect [stage]          list stages, or show one stage's options
  frame-pipe demo [--frames N] [--out DIR] [--port P]
                                      test pattern → jpeg → TCP (native header) → browser viewer and files,
                                      in one process; 900 frames (30 s) by default, --frames 0 until Ctrl-C

Examples:
  frame-pipe 'testsrc fps=30 ! jpeg quality=80 ! prefix ! tcp-server port=9000'
  frame-pipe 'tcp-client port=9000 ! unprefix ! files dir=out'

Options:
  --json     write stats as JSON lines (to stdout, or stderr when the pipeline writes to stdout)
  --quiet    no status line and no summary
  --debug    show stack traces on errors
  -h, --help, -v, --version`

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
        out: { type: 'string' },
        port: { type: 'string' },
      },
    })
  } catch (err) {
    process.stderr.write(`frame-pipe: ${(err as Error).message}\n${USAGE}\n`)
    return 2
  }
  const { values, positionals } = args
  const debug = values.debug ?? false
  if (values.help) {
    process.stdout.write(USAGE + '\n')
    return 0
  }
  if (values.version) {
    process.stdout.write(readVersion() + '\n')
    return 0
  }
  try {
    // The stages (and the registry that lists them) load only when a command needs them: `--help` stays fast.
    if (positionals[0] === 'inspect') {
      const { inspectAll, inspectStage } = await import('./inspect.js')
      process.stdout.write((positionals[1] ? inspectStage(positionals[1]) : inspectAll()) + '\n')
      return 0
    }
    if (positionals[0] === 'demo') {
      const frames = integerFlag('frames', values.frames, 900, 0, Number.MAX_SAFE_INTEGER)
      const port = integerFlag('port', values.port, 8080, 0, 65535)
      const { runDemo } = await import('./demo.js')
      return await runDemo({ frames, port, out: values.out ?? 'out/demo', quiet: values.quiet ?? false, json: values.json ?? false })
    }
    if (positionals.length === 0) {
      process.stderr.write(USAGE + '\n')
      return 2
    }
    return await runDescription(positionals.join(' '), { json: values.json ?? false, quiet: values.quiet ?? false })
  } catch (err) {
    reportError(err, debug)
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

export interface RunOptions {
  json: boolean
  quiet: boolean
}

export async function runDescription(text: string, options: RunOptions): Promise<number> {
  const { buildPlan, planDescription } = await import('../launch.js')
  const plan = planDescription(text)
  for (const { spec, literalSecrets } of plan) {
    for (const key of literalSecrets) {
      process.stderr.write(
        `frame-pipe: warning: ${spec.name} ${key} is written on the command line, where other users of this machine can read it (ps); give ${key}=@FILE or ${key}=env:NAME instead\n`,
      )
    }
  }
  const stages = buildPlan(plan)
  const toStdout = stageInfo(stages[stages.length - 1]!)?.name === 'stdout'
  const status = new StatusReporter(stages, {
    log: process.stderr,
    live: !options.quiet && process.stderr.isTTY === true,
    json: options.json ? (toStdout ? process.stderr : process.stdout) : undefined,
  })
  const interrupted = handleSignals(stages, status)
  status.start()
  try {
    await pipeline(...stages)
  } catch (err) {
    // `frame-pipe '… ! stdout' | head`: the reader leaving is how such a pipeline ends, not a failure.
    if (isReaderGone(err)) return 0
    if (!interrupted.aborted) throw err
  } finally {
    interrupted.dispose()
    if (!options.quiet || options.json) status.finish()
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

function readVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}
