// The README stays true: its stage tables come from the registry, and its
// TypeScript example is a file the tests type-check and run.

import test from 'ava'
import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { README_BEGIN, README_END, stagesMarkdown } from '../../src/cli/inspect.js'
import { planDescription } from '../../src/launch.js'
import { tempDir } from '../helpers/index.js'

const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')

test('the stage tables match the registry (run `npm run docs` after changing a stage)', (t) => {
  const start = readme.indexOf(README_BEGIN)
  const end = readme.indexOf(README_END)
  t.true(start >= 0 && end > start, 'README has the stage table markers')
  t.is(readme.slice(start + README_BEGIN.length, end).trim(), stagesMarkdown().trim())
})

test('the TypeScript example in the README is examples/relay.ts, importing the package by name', async (t) => {
  const block = /<!-- example:begin examples\/relay\.ts -->\n```ts\n([\s\S]*?)```\n<!-- example:end -->/.exec(readme)
  t.truthy(block, 'README has the example block')
  const source = await readFile(new URL('../../examples/relay.ts', import.meta.url), 'utf8')
  t.is(block![1], source.replace("from '../src/index.js'", "from 'frame-pipe'"))
})

test('the README example runs and writes its 90 frames', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const script = new URL('../../examples/relay.ts', import.meta.url).pathname
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script, dir], { timeout: 30_000 })
  t.regex(stdout, /90 frames in/)
  t.is((await readdir(dir)).filter((f) => f.endsWith('.jpg')).length, 90)
})

test('every pipeline the README shows parses, validates and links', (t) => {
  const pipelines = [...readme.matchAll(/frame-pipe (?:--\w+ )*'([^']+)'/g)].map((m) => m[1]!)
  t.true(pipelines.length >= 30, `found ${pipelines.length} pipelines`)
  const broken = pipelines.flatMap((text) => {
    try {
      planDescription(text)
      return []
    } catch (err) {
      // The README also shows two mistakes on purpose, with the messages they give.
      return readme.includes((err as Error).message) ? [] : [`${text}\n  → ${(err as Error).message}`]
    }
  })
  t.deepEqual(broken, [])
})
