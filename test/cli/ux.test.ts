// The frame-pipe command as users of ffmpeg and gst-launch expect it: stop
// conditions (--frames, --duration), log levels, inspect --json, --version,
// the viewer's clickable URL. Real child processes on loopback, one at a time
// (each is a Node start-up; the machine has two cores).

import test from 'ava'
import { spawn, type ChildProcess } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { pipeline } from '../../src/core/pipeline.js'
import { testsrc } from '../../src/sources/testsrc.js'
import { jpeg } from '../../src/transforms/jpeg.js'
import { prefix } from '../../src/transforms/prefix.js'
import { tcpClient } from '../../src/sinks/tcp-client.js'
import type { StageJson } from '../../src/cli/inspect.js'
import { tempDir, withTimeout } from '../helpers/index.js'

const BIN = fileURLToPath(new URL('../../bin/frame-pipe.js', import.meta.url))

interface Result {
  code: number | null
  stdout: string
  stderr: string
}

function start(args: string[]): { child: ChildProcess; done: Promise<Result>; stderr: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d
  })
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d
  })
  const done = new Promise<Result>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
  return { child, done, stderr: () => stderr }
}

async function run(args: string[], ms = 40_000): Promise<Result> {
  const p = start(args)
  try {
    return await withTimeout(p.done, ms, `frame-pipe ${args.join(' ')}`)
  } finally {
    p.child.kill('SIGKILL')
  }
}

async function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

const jpgs = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((f) => f.endsWith('.jpg'))

// ---------------------------------------------------------------- stop conditions

test.serial('--frames 10 writes exactly 10 frames and exits 0 (testsrc runs forever without it)', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const r = await run(['--frames', '10', `testsrc width=64 height=48 fps=0 ! jpeg ! files dir=${dir}`])
  t.is(r.code, 0, r.stderr)
  t.is((await jpgs(dir)).length, 10)
  t.regex(r.stderr, /10 frames \(--frames\): stopping, flushing sinks/)
  t.regex(r.stderr, /done: frames= +10 /)
})

test.serial('--frames is exact on a byte source too: tcp-server ! unprefix ! files gets 7 of a stream of 60', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const receiver = start(['--frames', '7', `tcp-server port=0 ! unprefix ! files dir=${dir}`])
  t.teardown(() => receiver.child.kill('SIGKILL'))
  await waitFor(() => /listening on 127\.0\.0\.1:\d+/.test(receiver.stderr()), 10_000, 'the receiver to listen')
  const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(receiver.stderr())![1])
  // The sender outlives the receiver: its connection is cut when the receiver stops.
  const sender = pipeline(testsrc({ width: 64, height: 48, fps: 0, count: 60 }), jpeg(), prefix(), tcpClient({ port, reconnect: false }))
  sender.catch(() => undefined)
  const r = await withTimeout(receiver.done, 15_000, 'the receiver to stop after 7 frames')
  t.is(r.code, 0, r.stderr)
  t.is((await jpgs(dir)).length, 7)
  await sender.catch(() => undefined)
})

test.serial('--frames on a pipeline of bytes only is refused (nothing to count), exit 2', async (t) => {
  const r = await run(['--frames', '5', 'tcp-client port=9 ! stdout'])
  t.is(r.code, 2)
  t.regex(
    r.stderr,
    /^frame-pipe: --frames counts frames, and this pipeline carries only bytes: cut them into frames with unprefix, or use --duration\n$/,
  )
})

test.serial('-t and --duration end an endless pipeline cleanly: a bare number is seconds, 500ms is milliseconds', async (t) => {
  const short = await run(['-t', '500ms', 'testsrc width=32 height=32 fps=20 ! null'])
  t.is(short.code, 0, short.stderr)
  t.regex(short.stderr, /500 ms \(--duration\): stopping, flushing sinks/)
  const long = await run(['--duration', '1', '--json', 'testsrc width=32 height=32 fps=20 ! null'])
  t.is(long.code, 0, long.stderr)
  const last = JSON.parse(long.stdout.trim().split('\n').pop()!) as { final: boolean; elapsed: number; frames: number }
  t.true(last.final)
  t.true(last.elapsed >= 1 && last.elapsed < 10, `ran ${last.elapsed} s`)
  t.true(last.frames >= 10 && last.frames <= 30, `${last.frames} frames at 20 fps in 1 s`)
  const bad = await run(['-t', 'soon', 'testsrc ! null'])
  t.is(bad.code, 2)
  t.regex(bad.stderr, /--duration must be a duration such as 10 \(seconds\), 500ms, 1\.5m or 00:01:30, received 'soon'/)
})

test.serial("demo-only flags are refused outside demo with one clear line, exit 2; demo's --frames keeps its meaning", async (t) => {
  const owners = { '--out': "'frame-pipe demo' and 'frame-pipe cert'", '--port': "'frame-pipe demo'" }
  for (const [flag, commands] of Object.entries(owners)) {
    const r = await run([flag, 'x', 'testsrc ! null'])
    t.is(r.code, 2)
    t.is(r.stderr, `frame-pipe: ${flag} is an option of ${commands} only\n`)
  }
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const demo = await run(['demo', '--frames', '12', '--out', dir, '--port', '0', '--quiet'], 30_000)
  t.is(demo.code, 0, demo.stderr)
  t.is((await jpgs(dir)).length, 12)
})

// ---------------------------------------------------------------- log levels

test.serial(
  '--loglevel: quiet prints nothing, error (= --quiet) only the error, and a start-up failure has no done: summary',
  async (t) => {
    const blocker = createServer()
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r))
    t.teardown(() => blocker.close())
    const port = (blocker.address() as { port: number }).port
    const pipelineText = `testsrc count=1 ! prefix ! tcp-server port=${port}`

    const info = await run([pipelineText])
    t.is(info.code, 1)
    t.notRegex(info.stderr, /done:/, 'nothing ran: no zero summary')
    t.regex(info.stderr, /tcp-server: port in use/)

    const quiet = await run(['--loglevel', 'quiet', pipelineText])
    t.is(quiet.code, 1)
    t.is(quiet.stderr, '')

    for (const args of [['--quiet'], ['-q'], ['--loglevel', 'error']]) {
      const r = await run([...args, pipelineText])
      t.is(r.code, 1)
      t.regex(r.stderr, /^frame-pipe: tcp-server: port in use: [^\n]+\n$/, args.join(' '))
    }
    const bad = await run(['--loglevel', 'loud', 'testsrc ! null'])
    t.is(bad.code, 2)
    t.regex(bad.stderr, /--loglevel must be one of quiet, error, warning, info, debug, received 'loud'/)
  },
)

test.serial('--quiet: no event lines, no status line, no summary on a run that works; info shows them', async (t) => {
  const quiet = await run(['--quiet', '--frames', '3', 'testsrc width=32 height=32 ! prefix ! tcp-server port=0 wait=0'])
  t.is(quiet.code, 0, quiet.stderr)
  t.is(quiet.stderr, '')
  const warning = await run(['--loglevel', 'warning', '--frames', '3', 'testsrc width=32 height=32 ! prefix ! tcp-server port=0 wait=0'])
  t.is(warning.stderr, '')
  const info = await run(['--frames', '3', 'testsrc width=32 height=32 ! prefix ! tcp-server port=0 wait=0'])
  t.regex(info.stderr, /tcp-server: listening on 127\.0\.0\.1:\d+/)
  t.regex(info.stderr, /done: frames= +3 /)
})

// ---------------------------------------------------------------- inspect, version, viewer URL

test.serial('inspect --json: every stage, and one name (an array: a name can be a source and a sink)', async (t) => {
  const all = await run(['inspect', '--json'])
  t.is(all.code, 0, all.stderr)
  const stages = JSON.parse(all.stdout) as StageJson[]
  t.true(stages.length >= 30)
  for (const s of stages) {
    t.truthy(s.name && s.kind && s.description, s.name)
    t.true(Array.isArray(s.options), s.name)
  }
  const one = JSON.parse((await run(['inspect', '--json', 'stats'])).stdout) as StageJson[]
  t.is(one.length, 1)
  t.like(one[0], { name: 'stats', kind: 'transform', input: 'any', output: 'any' })
  t.deepEqual(
    one[0]!.options.find((o) => o.name === 'interval'),
    {
      name: 'interval',
      type: 'duration',
      doc: one[0]!.options.find((o) => o.name === 'interval')!.doc,
      required: false,
      default: 1000,
      defaultText: '1s',
      unit: 'ms',
      min: 10,
    },
  )
  const jpegOpts = (JSON.parse((await run(['inspect', '--json', 'jpeg'])).stdout) as StageJson[])[0]!.options
  t.like(
    jpegOpts.find((o) => o.name === 'quality'),
    { type: 'int', min: 1, max: 100, default: 80 },
  )
  const both = JSON.parse((await run(['inspect', '--json', 'files'])).stdout) as StageJson[]
  t.deepEqual(both.map((s) => s.kind).sort(), ['sink', 'source'])
  t.like(
    both.find((s) => s.kind === 'source')!.options.find((o) => o.name === 'path'),
    { required: true, defaultText: '(required)' },
  )
  const unknown = await run(['inspect', '--json', 'jpg'])
  t.is(unknown.code, 2)
  t.regex(unknown.stderr, /unknown stage 'jpg' \(did you mean 'jpeg'\?\)/)
})

test.serial("inspect says a duration's unit", async (t) => {
  const r = await run(['inspect', 'stats'])
  t.regex(r.stdout, /interval\s+duration 10ms\.\.\s/)
  t.regex(r.stdout, /durations: 500ms, 2s, 1\.5m, 1h or HH:MM:SS; a bare number is seconds/)
})

test.serial('--version: frame-pipe, Node, sharp/libvips and the ffmpeg found, with its path and version', async (t) => {
  const r = await run(['--version'])
  t.is(r.code, 0, r.stderr)
  const lines = r.stdout.trimEnd().split('\n')
  t.regex(lines[0]!, /^frame-pipe \d+\.\d+\.\d+/)
  t.regex(lines[1]!, new RegExp(`^node ${process.version.replace(/\./g, '\\.')} `))
  t.regex(lines[2]!, /^sharp \d+\.\d+\.\d+ \(libvips \d+\.\d+\.\d+/)
  // ffmpeg: found (version, path, where from) or not found with a pointer; either way one line each.
  t.regex(lines[3]!, /^ffmpeg (\S+ \S+ \((option|env|PATH|npm)\)|: .*not found.*)$/)
  t.regex(lines[4]!, /^ffprobe (\S+ \S+ \((option|env|PATH|npm)\)|: .*not found.*)$/)
  const noFfmpeg = await runEnv(['--version'], { PATH: '/nonexistent', FRAME_PIPE_FFMPEG: '' })
  // No PATH: the opt-in npm build when it is installed (it is a devDependency here), else not found.
  t.regex(noFfmpeg.stdout, /^ffmpeg (\S+ \S+ \(npm\)|: ffmpeg not found.*)$/m)
})

test.serial('the http sink prints its full, clickable URL at start-up', async (t) => {
  const r = await run(['-t', '300ms', 'testsrc width=32 height=32 ! jpeg ! http port=0'])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stderr, /^http: viewer at http:\/\/127\.0\.0\.1:\d+\/$/m)
})

test.serial('--json and the status line carry latency p50/p95/p99 when a stage measures it', async (t) => {
  const r = await run(['--json', '--frames', '20', 'testsrc width=32 height=32 fps=100 ! stats ! null'])
  t.is(r.code, 0, r.stderr)
  const last = JSON.parse(r.stdout.trim().split('\n').pop()!) as { latencyMs: Record<string, number> | null }
  t.truthy(last.latencyMs)
  for (const k of ['mean', 'max', 'p50', 'p95', 'p99']) t.is(typeof last.latencyMs![k], 'number', k)
  t.true(last.latencyMs!.p50 <= last.latencyMs!.p99)
  t.regex(r.stderr, /latency\(p50\/p95\/p99\)=[\d.]+\/[\d.]+\/[\d.]+ms/)
})

async function runEnv(args: string[], env: Record<string, string>): Promise<Result> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d))
  child.stderr.on('data', (d: Buffer) => (stderr += d))
  const code = await withTimeout(
    new Promise<number | null>((resolve) => child.on('close', resolve)),
    20_000,
    `frame-pipe ${args.join(' ')}`,
  )
  return { code, stdout, stderr }
}
