// docs/security.md stays true: every pipeline it shows parses, validates and
// links, its secret files read as the recipes say (run in a directory that
// holds the files the recipes name), and the refusal messages it quotes are
// the ones the code says.

import test from 'ava'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { planDescription } from '../../src/launch.js'
import { tempDir } from '../helpers/index.js'

const doc = await readFile(new URL('../../docs/security.md', import.meta.url), 'utf8')

test('every pipeline in docs/security.md parses, validates and links', async (t) => {
  const pipelines = [...doc.matchAll(/frame-pipe (?:--\w+ )*'([^']+)'/g)].map((m) => m[1]!)
  t.true(pipelines.length >= 7, `found ${pipelines.length} pipelines`)
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const secret = 'a-token-for-the-docs-0123456789'
  for (const name of ['token', 'api-token', 'cam1.token']) await writeFile(join(dir, name), secret + '\n')
  await writeFile(join(dir, 'viewer-login'), `ann:${secret}\n`)
  await writeFile(join(dir, 'clients'), `cam1:${secret}\ncam2:${secret}-2\n`)
  const cwd = process.cwd()
  process.chdir(dir)
  t.teardown(() => process.chdir(cwd))
  const broken = pipelines.flatMap((text) => {
    try {
      planDescription(text)
      return []
    } catch (err) {
      return [`${text}\n  → ${(err as Error).message}`]
    }
  })
  t.deepEqual(broken, [])
})

test('the seed-wire refusal docs/security.md quotes is the one given', (t) => {
  const err = t.throws(() => planDescription('testsrc ! jpeg ! prefix header=u32be ! tcp-server token=a-token-for-the-docs-0123456789'))
  t.true(err.message.startsWith("tcp-server: token= needs frame-pipe's native wire, but prefix has header=u32be"))
  t.true(doc.includes("token= needs frame-pipe's native wire, but prefix has header=u32be …"))
})
