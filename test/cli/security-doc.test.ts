// docs/security.md stays true: the refusal messages it quotes are the ones
// the code says (test/cli/docs.test.ts checks its pipelines with every page's).

import test from 'ava'
import { readFile } from 'node:fs/promises'
import { planDescription } from '../../src/launch.js'

const doc = await readFile(new URL('../../docs/security.md', import.meta.url), 'utf8')

test('the seed-wire refusal docs/security.md quotes is the one given', (t) => {
  const err = t.throws(() => planDescription('testsrc ! jpeg ! prefix header=u32be ! tcp-server token=a-token-for-the-docs-0123456789'))
  t.true(err.message.startsWith("tcp-server: token= needs frame-pipe's native wire, but prefix has header=u32be"))
  t.true(doc.includes("token= needs frame-pipe's native wire, but prefix has header=u32be …"))
})
