// The README and the pages under docs/ stay true: the stage tables come from
// the registry, the TypeScript example is a file the tests type-check and
// run, every pipeline shown parses, validates and links, and every link points
// at a file a clone has.

import test from 'ava'
import { execFile } from 'node:child_process'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { existsSync } from 'node:fs'
import { STAGES_BEGIN, STAGES_END, stagesMarkdown } from '../../src/cli/inspect.js'
import { planDescription } from '../../src/launch.js'
import { tempDir } from '../helpers/index.js'
import { STAGES, findStage } from '../../src/registry.js'
import { CATALOG, catalogEntry, loadStage } from '../../src/catalog.js'
import { stageOptionFields } from '../../scripts/tsdoc.js'

const ROOT = new URL('../../', import.meta.url)
const pages = ['README.md', ...(await readdir(new URL('docs/', ROOT))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
const text = new Map(await Promise.all(pages.map(async (p) => [p, await readFile(new URL(p, ROOT), 'utf8')] as const)))

test('docs/stages.md matches the registry (run `npm run docs` after changing a stage)', (t) => {
  const stages = text.get('docs/stages.md')!
  const start = stages.indexOf(STAGES_BEGIN)
  const end = stages.indexOf(STAGES_END)
  t.true(start >= 0 && end > start, 'docs/stages.md has the stage table markers')
  t.is(stages.slice(start + STAGES_BEGIN.length, end).trim(), stagesMarkdown(STAGES).trim())
})

test('src/catalog.json is the registry without factories (run `npm run docs` after changing a stage); each entry loads its own stage', async (t) => {
  t.deepEqual(CATALOG, STAGES.map(catalogEntry))
  for (const entry of CATALOG) t.is(await loadStage(entry), findStage(entry.name, entry.kind)!, `${entry.kind} ${entry.name}`)
})

test('every stage option field has a TSDoc comment, so an editor shows what inspect says (`npx tsx scripts/tsdoc-check.ts --write` adds them)', (t) => {
  const fields = stageOptionFields(STAGES)
  t.true(fields.length > 200, `read the options of every stage (${fields.length} fields)`)
  t.deepEqual(
    fields.filter((f) => !f.documented).map((f) => `${f.stage} ${f.option}`),
    [],
  )
})

test('the TypeScript example in docs/api.md is examples/relay.ts, importing the package by name', async (t) => {
  const block = /<!-- example:begin examples\/relay\.ts -->\n```ts\n([\s\S]*?)```\n<!-- example:end -->/.exec(text.get('docs/api.md')!)
  t.truthy(block, 'docs/api.md has the example block')
  const source = await readFile(new URL('examples/relay.ts', ROOT), 'utf8')
  t.is(block![1], source.replace("from '../src/index.js'", "from 'frame-pipe'"))
})

test('the example runs and writes its 90 frames', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const script = new URL('examples/relay.ts', ROOT).pathname
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script, dir], { timeout: 30_000 })
  t.regex(stdout, /90 frames in/)
  t.is((await readdir(dir)).filter((f) => f.endsWith('.jpg')).length, 90)
})

test('every pipeline in the README and docs/ parses, validates and links', async (t) => {
  const shown = pages.flatMap((page) =>
    [...text.get(page)!.matchAll(/frame-pipe (?:--?\w+ (?:\S+ )?)*'([^']+)'/g)].map((m) => ({ page, pipeline: m[1]! })),
  )
  t.true(shown.length >= 60, `found ${shown.length} pipelines`)
  // Secrets are read when options are resolved: give the files and variables the pages name
  // (the recipes run in a directory that holds them).
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const secret = 'a-token-for-the-docs-0123456789'
  for (const item of shown) {
    for (const [, key, file] of item.pipeline.matchAll(/(\w+)=@(\S+)/g)) {
      const content = key === 'auth' ? `ann:${secret}` : key === 'tokens' ? `cam1:${secret}\ncam2:${secret}-2` : secret
      await mkdir(join(dir, dirname(file!)), { recursive: true })
      await writeFile(join(dir, file!), content + '\n')
      // An absolute path (`@/etc/frame-pipe/token`) is read from the temporary directory instead.
      if (file!.startsWith('/')) item.pipeline = item.pipeline.replace(`@${file}`, `@${join(dir, file!)}`)
    }
    for (const [, name] of item.pipeline.matchAll(/=env:(\w+)/g)) process.env[name!] ??= secret
  }
  const cwd = process.cwd()
  process.chdir(dir)
  t.teardown(() => process.chdir(cwd))
  const broken = shown.flatMap(({ page, pipeline }) => {
    try {
      planDescription(pipeline)
      return []
    } catch (err) {
      // Some pages show a mistake on purpose, with the message it gives.
      return text.get(page)!.includes((err as Error).message) ? [] : [`${page}: ${pipeline}\n  → ${(err as Error).message}`]
    }
  })
  t.deepEqual(broken, [])
})

test('every relative link points at a file of the repository; nothing names files a clone lacks', (t) => {
  const bad: string[] = []
  for (const [page, body] of text) {
    for (const [, target] of body.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue
      if (!existsSync(new URL(join(dirname(page), target!), ROOT))) bad.push(`${page}: ${target}`)
    }
    if (/\.\.\/shared|WIRE\.md/.test(body)) bad.push(`${page}: names ../shared or WIRE.md`)
  }
  t.deepEqual(bad, [])
})
