// Across machines, safely, as users run it: two `frame-pipe` processes on two
// loopback addresses (127.0.0.1 sends, 127.0.0.2 receives) exchange frames
// over TLS with a token; a wrong token is refused with one line on each side;
// the token, given by file and by environment variable, never appears in the
// argv other users can read (/proc/<pid>/cmdline), in the logs or in --json;
// `frame-pipe cert` makes the pair the recipe uses.

import test from 'ava'
import { spawn, type ChildProcess } from 'node:child_process'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir, withTimeout } from '../helpers/index.js'
import { hasOpenssl, NO_OPENSSL, testPki } from '../helpers/tls.js'

const BIN = fileURLToPath(new URL('../../bin/frame-pipe.js', import.meta.url))
if (!hasOpenssl) console.warn(`skipping the secure CLI tests: ${NO_OPENSSL}`)
const tlsTest = hasOpenssl ? test : test.skip

interface Proc {
  child: ChildProcess
  out: () => string
  err: () => string
  done: Promise<number | null>
  /** Resolves once stderr matches `re`, with the match. */
  line(re: RegExp, what: string, ms?: number): Promise<RegExpMatchArray>
}

function start(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let out = ''
  let err = ''
  const waiters: Array<() => void> = []
  child.stdout!.on('data', (d: Buffer) => {
    out += d
  })
  child.stderr!.on('data', (d: Buffer) => {
    err += d
    for (const w of waiters.splice(0)) w()
  })
  const done = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => {
      resolve(code)
      for (const w of waiters.splice(0)) w()
    })
  })
  const line = (re: RegExp, what: string, ms = 15_000) =>
    withTimeout(
      (async () => {
        for (;;) {
          const m = err.match(re)
          if (m) return m
          if (child.exitCode !== null) throw new Error(`${what}: the process ended first; stderr:\n${err}`)
          await new Promise<void>((resolve) => waiters.push(resolve))
        }
      })(),
      ms,
      what,
    )
  return { child, out: () => out, err: () => err, done, line }
}

async function cmdline(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' ')
}

tlsTest('a sender on 127.0.0.1 and a receiver on 127.0.0.2 exchange frames over TLS with a token; secrets stay out of argv', async (t) => {
  const pki = await testPki(t)
  const out = await tempDir()
  t.teardown(out.cleanup)
  const receiver = start([
    '--json',
    `tcp-server host=127.0.0.2 port=0 cert=${pki.server.cert} key=${pki.server.key} token=@${pki.tokenFile} once ! unprefix header=native ! files dir=${out.dir}`,
  ])
  t.teardown(() => receiver.child.kill('SIGKILL'))
  const port = (await receiver.line(/tcp-server: listening on 127\.0\.0\.2:(\d+)/, 'receiver listening'))[1]!

  // A wrong token first: refused, one line on each side; the receiver goes on.
  const wrong = start(
    [
      `testsrc fps=0 count=3 format=jpeg ! prefix header=native ! tcp-client host=127.0.0.2 port=${port} ca=${pki.server.cert} token=env:FP_TOKEN`,
    ],
    {
      FP_TOKEN: 'not-the-token-but-long-enough',
    },
  )
  t.is(await withTimeout(wrong.done, 15_000, 'wrong sender'), 1)
  t.regex(wrong.err(), /\nframe-pipe: tcp-client: wrong token: 127\.0\.0\.2:\d+ holds a different one \(its proof does not match ours\)\n$/)
  await receiver.line(
    /tcp-server: client [\d.:]+ left \(refused: wrong token \(its proof does not match ours\)\)/,
    'receiver logs the refusal',
  )

  // The right token, from the environment: frames flow until the sender is stopped.
  const sender = start(
    [
      '--json',
      `testsrc fps=30 width=320 height=240 format=jpeg ! prefix header=native ! tcp-client host=127.0.0.2 port=${port} ca=${pki.server.cert} token=env:FP_TOKEN`,
    ],
    { FP_TOKEN: pki.token },
  )
  t.teardown(() => sender.child.kill('SIGKILL'))
  const joined = await receiver.line(/tcp-server: client ([\d.]+):\d+ joined \(TLS, token\)/, 'the sender joins')
  t.is(joined[1], '127.0.0.1', 'two loopback addresses: the sender connects from 127.0.0.1')
  await sender.line(/tcp-client: connected to 127\.0\.0\.2:\d+/, 'the sender connects')
  const argv = [await cmdline(receiver.child.pid!), await cmdline(sender.child.pid!)]
  for (const a of argv) t.false(a.includes(pki.token), 'the token is not in argv')
  t.true(argv[0]!.includes(`token=@${pki.tokenFile}`), 'only the file name is')
  t.true(argv[1]!.includes('token=env:FP_TOKEN'), 'only the variable name is')
  // Ten frames written by the receiver, then Ctrl-C for the sender; the receiver ends with it (once).
  await withTimeout(
    (async () => {
      while ((await readdir(out.dir)).length < 10) await new Promise((r) => setTimeout(r, 50))
    })(),
    15_000,
    'ten frames received',
  )
  sender.child.kill('SIGINT')
  t.is(await withTimeout(sender.done, 15_000, 'sender exit'), 0)
  t.is(await withTimeout(receiver.done, 15_000, 'receiver exit'), 0)
  const files = await readdir(out.dir)
  t.true(files.length >= 10)
  const first = await readFile(join(out.dir, files.sort()[0]!))
  t.deepEqual([...first.subarray(0, 2)], [0xff, 0xd8], 'JPEG frames')
  for (const text of [receiver.out(), receiver.err(), sender.out(), sender.err(), wrong.err()]) t.false(text.includes(pki.token))
  t.regex(receiver.out(), /"final":true/)
  t.notRegex(sender.err(), /warning: .* token is written on the command line/)
})

tlsTest('frame-pipe cert writes cert.pem and key.pem (0600), prints how to use them, and never overwrites without --force', async (t) => {
  const dir = await tempDir()
  t.teardown(dir.cleanup)
  const made = start(['cert', '--out', dir.dir, '--name', 'camera.local'])
  t.is(await withTimeout(made.done, 20_000, 'cert'), 0)
  t.regex(made.out(), /a self-signed certificate for camera\.local, localhost, 127\.0\.0\.1, ::1, valid 365 days/)
  t.regex(made.out(), /--ignore-certificate-errors-spki-list=[A-Za-z0-9+/]{43}=/)
  t.is((await stat(join(dir.dir, 'key.pem'))).mode & 0o777, 0o600)
  t.regex(await readFile(join(dir.dir, 'cert.pem'), 'utf8'), /^-----BEGIN CERTIFICATE-----/)
  const again = start(['cert', '--out', dir.dir])
  t.is(await withTimeout(again.done, 20_000, 'cert again'), 2)
  t.regex(again.err(), /cert\.pem exists: give --force to replace it/)
})

test('a literal token is warned about; inspect shows secret options without values', async (t) => {
  const literal = start(['tcp-client port=1 token=literal-token-on-the-command-line ! null'])
  const code = await withTimeout(literal.done, 15_000, 'literal')
  t.is(code, 1, 'nobody listens on port 1: refused, after the warning')
  t.regex(
    literal.err(),
    /warning: tcp-client token is written on the command line, where other users of this machine can read it \(ps\); give token=@FILE or token=env:NAME instead/,
  )
  t.false(
    literal
      .err()
      .replace(/\(ps\); give token=@FILE/, '')
      .includes('literal-token-on-the-command-line'),
  )
  const inspect = start(['inspect', 'tcp-server'])
  await withTimeout(inspect.done, 15_000, 'inspect')
  t.regex(inspect.out(), /token\s+secret\s+Require this shared token/)
  t.regex(inspect.out(), /handshakeTimeout\s+duration 1ms\.\.\s+A client must finish the TLS handshake and the token check/)
})
