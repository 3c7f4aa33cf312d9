// The `frame-pipe` command as users run it: a real child process on loopback.

import test from 'ava'
import { spawn, type ChildProcess } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import sharp from 'sharp'
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

async function run(args: string[], ms = 20_000): Promise<Result> {
  const p = start(args)
  try {
    return await withTimeout(p.done, ms, `frame-pipe ${args.join(' ')}`)
  } finally {
    p.child.kill('SIGKILL')
  }
}

async function waitFor(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

test('--help prints usage and exits 0', async (t) => {
  const r = await run(['--help'])
  t.is(r.code, 0)
  t.regex(r.stdout, /Usage:/)
  t.regex(r.stdout, /frame-pipe inspect/)
})

test('inspect lists every kind, and one stage shows its options with defaults', async (t) => {
  const all = await run(['inspect'])
  t.is(all.code, 0)
  for (const name of ['testsrc', 'jpeg', 'prefix', 'unprefix', 'tcp-server', 'tcp-client', 'files', 'null'])
    t.true(all.stdout.includes(name), name)
  const one = await run(['inspect', 'jpeg'])
  t.is(one.code, 0)
  t.regex(one.stdout, /quality\s+int 1\.\.100\s+.*\[default: 80\]/)
  const both = await run(['inspect', 'tcp-server'])
  t.regex(both.stdout, /tcp-server \(source\)/)
  t.regex(both.stdout, /tcp-server \(sink\)/)
})

test('an unknown stage is one clear line with a suggestion, exit 2, no stack trace', async (t) => {
  const r = await run(['testsrc ! jpg ! null'])
  t.is(r.code, 2)
  t.regex(r.stderr, /^frame-pipe: unknown stage 'jpg' \(did you mean 'jpeg'\?\); 'frame-pipe inspect' lists them \(column 11\)\n/)
  t.notRegex(r.stderr, /\bat .*\.js:\d+/)
  t.regex(r.stderr, /\n {12}\^\n$/)
})

test('a bad option value names stage, option, expectation and value', async (t) => {
  const r = await run(['testsrc ! jpeg quality=101 ! null'])
  t.is(r.code, 2)
  t.regex(r.stderr, /jpeg: expected integer between 1 and 100 for quality but received 101 of type number/)
  const typo = await run(['testsrc ! jpeg qualty=50 ! null'])
  t.regex(typo.stderr, /jpeg has no option 'qualty' \(did you mean 'quality'\?\)/)
  const text = await run(['testsrc fps=fast ! null'])
  t.regex(text.stderr, /testsrc: expected number for fps but received 'fast'/)
})

test('linking frames into a byte sink is refused before anything starts, saying what to insert', async (t) => {
  const r = await run(['testsrc ! jpeg ! tcp-server port=1'])
  t.is(r.code, 2)
  t.regex(r.stderr, /cannot link jpeg to tcp-server: jpeg produces frames but tcp-server takes bytes; insert 'prefix' before tcp-server/)
  const back = await run(['tcp-client port=1 ! files dir=x'])
  t.regex(back.stderr, /insert 'unprefix' before files/)
})

test('a port in use and a refused connection are one line and exit 1', async (t) => {
  const blocker = createServer()
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r))
  t.teardown(() => blocker.close())
  const port = (blocker.address() as { port: number }).port
  const inUse = await run([`testsrc count=1 ! prefix ! tcp-server port=${port}`])
  t.is(inUse.code, 1)
  t.regex(inUse.stderr, new RegExp(`tcp-server: port in use: 127\\.0\\.0\\.1:${port}`))
  t.notRegex(inUse.stderr, /\bat .*\.js:\d+/)

  const free = createServer()
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', r))
  const closedPort = (free.address() as { port: number }).port
  await new Promise<void>((r) => free.close(() => r()))
  const refused = await run([`tcp-client port=${closedPort} ! unprefix ! null`])
  t.is(refused.code, 1)
  t.regex(refused.stderr, new RegExp(`tcp-client: connection refused by 127\\.0\\.0\\.1:${closedPort}`))
})

test('shell to shell: testsrc → jpeg → prefix → tcp-server, tcp-client → unprefix → files', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const sender = start(['testsrc width=160 height=120 fps=0 count=25 ! jpeg quality=70 ! prefix ! tcp-server port=0 wait=1'])
  t.teardown(() => sender.child.kill('SIGKILL'))
  await waitFor(() => /listening on 127\.0\.0\.1:\d+/.test(sender.stderr()), 10_000, 'the sender to listen')
  const port = /listening on 127\.0\.0\.1:(\d+)/.exec(sender.stderr())![1]
  const receiver = await run([`tcp-client port=${port} ! unprefix ! files dir=${dir}`])
  const sent = await withTimeout(sender.done, 10_000, 'sender')
  t.is(sent.code, 0, sent.stderr)
  t.is(receiver.code, 0, receiver.stderr)
  const files = (await readdir(dir)).sort()
  t.is(files.length, 25)
  t.is(files[0], 'frame-000000.jpg')
  const meta = await sharp(await readFile(join(dir, files[24]!))).metadata()
  t.is(meta.format, 'jpeg')
  t.is(meta.width, 160)
  t.regex(receiver.stderr, /done: frames= +25/)
})

test('SIGINT stops the source, flushes the sink and exits 0; --json reports the totals', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const p = start(['--json', `testsrc width=64 height=48 fps=50 ! jpeg ! files dir=${dir}`])
  t.teardown(() => p.child.kill('SIGKILL'))
  await waitFor(async () => (await readdir(dir).catch(() => [])).length >= 5, 10_000, 'files to appear')
  p.child.kill('SIGINT')
  const r = await withTimeout(p.done, 10_000, 'exit after SIGINT')
  t.is(r.code, 0, r.stderr)
  const files = await readdir(dir)
  t.false(
    files.some((f) => !f.endsWith('.jpg')),
    'no temporary files left behind',
  )
  const last = JSON.parse(r.stdout.trim().split('\n').pop()!) as { final: boolean; frames: number }
  t.true(last.final)
  t.is(last.frames, files.length)
})

test('demo runs on built-in defaults and writes the frames it sent', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const r = await run(['demo', '--frames', '20', '--out', dir, '--port', '0'], 30_000)
  t.is(r.code, 0, r.stderr)
  t.is((await readdir(dir)).filter((f) => f.endsWith('.jpg')).length, 20)
  t.regex(r.stderr, /viewer: {3}open http:\/\/127\.0\.0\.1:\d+\/ to watch/)
  t.regex(r.stderr, /wrote 20 JPEG frames/)
})

test('demo --frames 0 runs until Ctrl-C, then stops cleanly', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const p = start(['demo', '--frames', '0', '--out', dir, '--port', '0'])
  t.teardown(() => p.child.kill('SIGKILL'))
  await waitFor(async () => (await readdir(dir).catch(() => [])).length >= 10, 15_000, 'the demo to write frames')
  p.child.kill('SIGINT')
  const r = await withTimeout(p.done, 10_000, 'the demo to stop after SIGINT')
  t.is(r.code, 0, r.stderr)
  const written = (await readdir(dir)).filter((f) => f.endsWith('.jpg')).length
  t.regex(r.stderr, new RegExp(`wrote ${written} JPEG frames`))
})
