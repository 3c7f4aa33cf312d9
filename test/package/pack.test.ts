// The package as users get it: `npm pack`, then a fresh `npm init -y` project
// (CommonJS, the npm default) and an ESM one ("type": "module") install the
// tarball and use it with require(), with import (top-level await included)
// and through its `frame-pipe` command.
//
// Offline and fast: the consumer projects get a lockfile made from this
// repository's (the tarball's dependencies at the versions tested here), so
// `npm ci --offline` installs them from npm's cache, which this repository's
// own `npm ci` filled; only when something is missing there does npm ask the
// registry (--prefer-offline). Needs dist/ built (npm test builds it first).

import test from 'ava'
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { tempDir } from '../helpers/index.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const exec = promisify(execFile)

interface Lock {
  packages: Record<string, Record<string, unknown> & { dev?: boolean }>
}
interface Manifest {
  name: string
  version: string
  license: string
  dependencies: Record<string, string>
  peerDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, unknown>
  bin: Record<string, string>
  engines: Record<string, string>
}

let work: { dir: string; cleanup: () => Promise<void> } | undefined
let packed: Promise<{ tarball: string; files: string[] }> | undefined

/** `npm pack` once for the file's tests. */
function pack(): Promise<{ tarball: string; files: string[] }> {
  packed ??= (async () => {
    if (!existsSync(join(ROOT, 'dist/src/index.js'))) throw new Error('dist/ is not built: run `npm run build` (npm test does)')
    work = await tempDir()
    // --ignore-scripts: dist/ is already built; prepare would only build it again.
    const { stdout } = await exec(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', work.dir], {
      cwd: ROOT,
      timeout: 120_000,
    })
    const [info] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }]
    return { tarball: join(work.dir, info.filename), files: info.files.map((f) => f.path) }
  })()
  return packed
}
test.after.always(async () => {
  await work?.cleanup()
})

/** A fresh project (as `npm init -y` makes it) with the tarball installed. */
async function consumer(name: string, type: 'commonjs' | 'module'): Promise<string> {
  const { tarball } = await pack()
  const dir = join(work!.dir, name)
  await mkdir(dir)
  await exec(NPM, ['init', '-y'], { cwd: dir, timeout: 60_000 })
  const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>
  const spec = `file:${tarball}`
  manifest.dependencies = { 'frame-pipe': spec }
  if (type === 'module') manifest.type = 'module'
  await writeFile(join(dir, 'package.json'), JSON.stringify(manifest, null, 2))
  await writeFile(join(dir, 'package-lock.json'), JSON.stringify(await lockFor(name, spec, tarball), null, 2))
  try {
    await exec(NPM, ['ci', '--offline', '--no-audit', '--no-fund'], { cwd: dir, timeout: 180_000 })
  } catch {
    // Something is not in npm's cache (a machine whose node_modules came from elsewhere): the registry has it.
    await exec(NPM, ['ci', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: dir, timeout: 300_000 })
  }
  return dir
}

/** The consumer's lockfile: frame-pipe from the tarball, and the runtime part of this repository's lockfile. */
async function lockFor(name: string, spec: string, tarball: string): Promise<unknown> {
  const repo = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as Lock
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as Manifest
  const integrity =
    'sha512-' +
    createHash('sha512')
      .update(await readFile(tarball))
      .digest('base64')
  const packages: Lock['packages'] = {
    '': { name, version: '1.0.0', dependencies: { 'frame-pipe': spec } },
    'node_modules/frame-pipe': {
      version: pkg.version,
      resolved: spec,
      integrity,
      license: pkg.license,
      dependencies: pkg.dependencies,
      peerDependencies: pkg.peerDependencies,
      peerDependenciesMeta: pkg.peerDependenciesMeta,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  }
  // Entries not marked dev are what the published package needs (optional platform builds included: npm picks).
  for (const [path, entry] of Object.entries(repo.packages)) if (path.startsWith('node_modules/') && !entry.dev) packages[path] = entry
  return { name, version: '1.0.0', lockfileVersion: 3, requires: true, packages }
}

function node(
  cwd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d))
    child.stderr.on('data', (d: Buffer) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

async function sizeOf(path: string): Promise<number> {
  const s = await stat(path)
  if (!s.isDirectory()) return s.size
  let total = 0
  for (const entry of await readdir(path)) total += await sizeOf(join(path, entry))
  return total
}

/** What both consumers run: three frames through a pipeline, checked by the frame count. */
const SCRIPT_BODY = `
const stages = launch('testsrc width=64 height=48 count=3 ! jpeg ! null')
const sink = stages[stages.length - 1]
let frames = 0
sink.on('data', () => frames++)
await pipeline(...stages)
console.log(JSON.stringify({ frames, stages: STAGES.length, version: typeof FramePipeError }))
`

test.serial('the tarball holds the built library, its types, the command and the viewer page, and no tests', async (t) => {
  const { files } = await pack()
  for (const f of ['package.json', 'README.md', 'bin/frame-pipe.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'assets/viewer.html'])
    t.true(files.includes(f), f)
  t.false(
    files.some((f) => f.startsWith('test/') || f.startsWith('dist/test/') || f.startsWith('src/')),
    'no sources or tests',
  )
})

test.serial('CommonJS (a default npm init -y project): require() and import() both work, without warnings', async (t) => {
  const dir = await consumer('cjs', 'commonjs')
  await writeFile(
    join(dir, 'index.js'),
    `const { launch, pipeline, STAGES, FramePipeError } = require('frame-pipe')\n` +
      `async function main() {${SCRIPT_BODY}}\n` +
      `main().then(async () => { const esm = await import('frame-pipe'); console.log(esm.launch === launch) })\n`,
  )
  const r = await node(dir, ['index.js'])
  t.is(r.code, 0, r.stderr)
  t.is(r.stderr, '', 'no ExperimentalWarning or other noise')
  const [line, same] = r.stdout.trim().split('\n')
  t.like(JSON.parse(line!), { frames: 3, version: 'function' })
  t.true(JSON.parse(line!).stages >= 30)
  t.is(same, 'true', 'require and import give the same module')
  const engines = (await node(dir, ['-p', "require('frame-pipe/package.json').engines.node"])).stdout.trim()
  t.is(engines, '^20.19.0 || >=22.12.0', 'require(esm) unflagged from 20.19 and 22.12; zlib.crc32 from 20.15')

  // Installed size without any ffmpeg package: the opt-in npm build is not installed.
  const size = await sizeOf(join(dir, 'node_modules'))
  t.true(size < 50 * 2 ** 20, `installed ${(size / 2 ** 20).toFixed(1)} MiB`)
  t.log(`installed size: ${(size / 2 ** 20).toFixed(1)} MiB`)
  for (const absent of ['@ffmpeg-installer', '@ffprobe-installer', 'ffmpeg-static'])
    t.false(existsSync(join(dir, 'node_modules', absent)), `${absent} is not installed`)

  // The command works from the install; with no ffmpeg anywhere, the error says what to install.
  const bin = join(dir, 'node_modules', 'frame-pipe', 'bin', 'frame-pipe.js')
  const out = join(dir, 'out')
  const cli = await node(dir, [bin, '--frames', '4', `testsrc width=32 height=32 fps=0 ! jpeg ! files dir=${out}`])
  t.is(cli.code, 0, cli.stderr)
  t.is((await readdir(out)).length, 4)
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: '' }
  delete env.FRAME_PIPE_FFMPEG
  const missing = await node(dir, [bin, 'camera driver=lavfi ! null'], env)
  t.is(missing.code, 1)
  for (const line of [
    'apt install ffmpeg',
    'dnf install',
    'brew install ffmpeg',
    'winget install',
    'choco install ffmpeg',
    'npm install @ffmpeg-installer/ffmpeg',
  ])
    t.true(missing.stderr.includes(line), `${line} in: ${missing.stderr}`)
})

test.serial('ESM ("type": "module"): import with top-level await, as the README shows', async (t) => {
  const dir = await consumer('esm', 'module')
  await writeFile(join(dir, 'index.js'), `import { launch, pipeline, STAGES, FramePipeError } from 'frame-pipe'\n${SCRIPT_BODY}`)
  const r = await node(dir, ['index.js'])
  t.is(r.code, 0, r.stderr)
  t.is(r.stderr, '')
  t.like(JSON.parse(r.stdout.trim()), { frames: 3, version: 'function' })
  // An ESM file with a .mjs name in a CommonJS project too.
  await writeFile(join(dir, 'main.mjs'), `import * as fp from 'frame-pipe'\nconsole.log(typeof fp.pipeline)`)
  t.is((await node(dir, ['main.mjs'])).stdout.trim(), 'function')
})
