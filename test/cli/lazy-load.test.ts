// Start-up loads only what a command needs (issue 9): `--help` and `inspect`
// no stage at all, a pipeline only the stages it names, and one without sharp
// stages never loads sharp (libvips). Each case runs the built CLI's main() in
// a fresh process and reports what that process loaded: shared objects (sharp,
// libvips, libturbojpeg) and, as the sign that stages it does not name were
// loaded, Node's dgram module (which only the UDP stages' engines import), and
// whether node:tls, node:crypto and node:zlib were loaded (only TLS, tokens and
// checksums need them: see src/core/builtins.ts).

import test from 'ava'
import { execFile } from 'node:child_process'
import { createServer } from 'node:net'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { tempDir } from '../helpers/index.js'

const MAIN = pathToFileURL(fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url))).href

interface Loaded {
  code: number
  sharp: boolean
  turbo: boolean
  stages: boolean
  tls: boolean
  crypto: boolean
  zlib: boolean
}

function loadedBy(args: string[]): Promise<Loaded> {
  const script = `
    const { main } = await import(${JSON.stringify(MAIN)})
    const code = await main(${JSON.stringify(args)})
    const objects = process.report.getReport().sharedObjects
    process.stderr.write('\\nLOADED ' + JSON.stringify({
      code,
      sharp: objects.some((o) => /vips|sharp/.test(o)),
      turbo: objects.some((o) => /turbojpeg/.test(o)),
      stages: process.moduleLoadList.includes('NativeModule dgram'),
      tls: process.moduleLoadList.includes('NativeModule tls'),
      crypto: process.moduleLoadList.includes('NativeModule crypto'),
      zlib: process.moduleLoadList.includes('NativeModule zlib'),
    }) + '\\n')
    process.exit(0)
  `
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 }, (err, _stdout, stderr) => {
      const line = stderr.split('\n').find((l) => l.startsWith('LOADED '))
      if (!line) return reject(err ?? new Error(`no report: ${stderr}`))
      resolve(JSON.parse(line.slice(7)) as Loaded)
    })
  })
}

test('--help loads no stage and no codec', async (t) => {
  t.deepEqual(await loadedBy(['--help']), { code: 0, sharp: false, turbo: false, stages: false, tls: false, crypto: false, zlib: false })
})

test('inspect lists the stages, and shows one, from the catalog: no stage, no codec loaded', async (t) => {
  t.deepEqual(await loadedBy(['inspect']), { code: 0, sharp: false, turbo: false, stages: false, tls: false, crypto: false, zlib: false })
  t.deepEqual(await loadedBy(['inspect', 'udp-server']), {
    code: 0,
    sharp: false,
    turbo: false,
    stages: false,
    tls: false,
    crypto: false,
    zlib: false,
  })
})

test('raw → jpeg → decode loads those stages and libjpeg-turbo, not sharp nor other stages; a PNG stage loads sharp; a UDP stage its engine', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const raw = join(dir, 'picture.rgb')
  await writeFile(raw, Buffer.alloc(32 * 16 * 3, 90))
  const files = `files path=${raw} width=32 height=16 loop count=3`
  t.deepEqual(await loadedBy(['--quiet', `${files} ! jpeg ! decode ! null`]), {
    code: 0,
    sharp: false,
    turbo: true,
    stages: false,
    tls: false,
    crypto: false,
    zlib: false,
  })
  t.like(await loadedBy(['--quiet', `${files} ! png ! null`]), { code: 0, sharp: true })
  // The sign works: a UDP stage in the pipeline loads dgram.
  t.like(await loadedBy(['--quiet', `${files} ! jpeg ! udp-client port=9 proto=native`]), { code: 0, stages: true })
})

test('a plain TCP pipeline loads neither node:tls, node:crypto nor node:zlib; tls=true loads tls, a token crypto, checksum=true zlib', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const raw = join(dir, 'picture.rgb')
  await writeFile(raw, Buffer.alloc(32 * 16 * 3, 90))
  // A server that takes what it is sent, so that the plain pipeline runs to its end.
  const server = createServer((socket) => socket.resume())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const { port } = server.address() as { port: number }
  const send = `files path=${raw} width=32 height=16 loop count=3 ! prefix ! tcp-client`
  t.like(await loadedBy(['--quiet', `${send} port=${port}`]), { code: 0, tls: false, crypto: false, zlib: false })
  t.like(await loadedBy(['--quiet', `${send.replace('prefix', 'prefix header=native checksum=true')} port=${port}`]), {
    code: 0,
    tls: false,
    zlib: true,
  })
  // Nothing answers TLS on a plain server: the pipeline fails, after having loaded node:tls to try.
  t.like(await loadedBy(['--quiet', `${send} port=${port} tls=true connectTimeout=2s`]), { tls: true })
  // Nor a token check: it fails too, after having loaded node:crypto for its nonce.
  const tokenFile = join(dir, 'token')
  await writeFile(tokenFile, 'a-token-of-sixteen-or-more\n')
  const native = send.replace('prefix', 'prefix header=native')
  t.like(await loadedBy(['--quiet', `${native} port=${port} token=@${tokenFile} connectTimeout=2s`]), { tls: false, crypto: true })
})

test("the command turns on Node's compile cache where Node has one (22.8+)", async (t) => {
  // Node 20 has no module.enableCompileCache: a stand-in, put in place before the launcher runs, tells whether it is called.
  const standIn = `import m from 'node:module'; m.enableCompileCache = () => { process.stderr.write('COMPILE CACHE ON\\n'); return { status: 0 } }`
  const launcher = fileURLToPath(new URL('../../bin/frame-pipe.js', import.meta.url))
  const stderr = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', `data:text/javascript,${encodeURIComponent(standIn)}`, launcher, '--help'],
      { timeout: 30_000 },
      (err, _stdout, stderr) => (err ? reject(err) : resolve(stderr)),
    )
  })
  t.regex(stderr, /^COMPILE CACHE ON$/m)
})
