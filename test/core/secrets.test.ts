// Secret options: `@FILE` and `env:NAME` keep passwords and tokens off the
// command line, and a secret's value never appears in an error or in inspect.

import test from 'ava'
import { Readable } from 'node:stream'
import { writeFile, chmod } from 'node:fs/promises'
import { join } from 'node:path'
import { InvalidOptionError } from '../../src/core/errors.js'
import { defineStage, formatDefault, formatType, isLiteralSecret, resolveOptions, type OptionSpec } from '../../src/core/spec.js'
import { tempDir } from '../helpers/index.js'

interface LockOptions {
  token?: string
  label?: string
}
const lock = defineStage<LockOptions, Readable>({
  name: 'lock',
  kind: 'source',
  input: null,
  output: 'frames',
  description: 'a stage with a secret, for these tests',
  options: {
    token: { type: 'secret', default: '', doc: 'the shared token' },
    label: { type: 'string', default: 'x', doc: 'not a secret' },
  },
  create: () =>
    new Readable({
      objectMode: true,
      read() {
        this.push(null)
      },
    }),
})

test('a literal secret is taken as it is; the default is none', (t) => {
  t.is(resolveOptions(lock, { token: 's3cret' }).token, 's3cret')
  t.is(resolveOptions(lock, {}).token, '')
})

test('@FILE reads the secret from a file, without its trailing newline', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const path = join(dir, 'token')
  await writeFile(path, 'from-a-file\n')
  t.is(resolveOptions(lock, { token: `@${path}` }).token, 'from-a-file')
  await writeFile(path, 'crlf\r\n')
  t.is(resolveOptions(lock, { token: `@${path}` }).token, 'crlf')
})

test('env:NAME reads the secret from the environment', (t) => {
  process.env.FRAME_PIPE_TEST_TOKEN = 'from-env'
  t.teardown(() => {
    delete process.env.FRAME_PIPE_TEST_TOKEN
  })
  t.is(resolveOptions(lock, { token: 'env:FRAME_PIPE_TEST_TOKEN' }).token, 'from-env')
})

test('a missing file, an unset variable, an empty file: one line naming the source, never a value', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const missing = t.throws(() => resolveOptions(lock, { token: `@${join(dir, 'nope')}` }), { instanceOf: InvalidOptionError })
  t.is(missing.message, `lock: token=@${join(dir, 'nope')}: cannot read the secret file (no such file)`)
  t.is((missing as InvalidOptionError).option, 'token')
  const unset = t.throws(() => resolveOptions(lock, { token: 'env:FRAME_PIPE_NOT_SET_ANYWHERE' }))
  t.is(unset.message, 'lock: token=env:FRAME_PIPE_NOT_SET_ANYWHERE: the environment variable FRAME_PIPE_NOT_SET_ANYWHERE is not set')
  const empty = join(dir, 'empty')
  await writeFile(empty, '\n')
  t.is(t.throws(() => resolveOptions(lock, { token: `@${empty}` })).message, `lock: token=@${empty}: the secret file is empty`)
  if (process.getuid?.() !== 0) {
    const locked = join(dir, 'locked')
    await writeFile(locked, 'x')
    await chmod(locked, 0)
    t.regex(t.throws(() => resolveOptions(lock, { token: `@${locked}` })).message, /permission denied/)
  }
})

test('a secret of the wrong type is refused without echoing the value', (t) => {
  const err = t.throws(() => resolveOptions(lock, { token: 12345678 as unknown as string }))
  t.is(err.message, 'lock: expected string for token but received a value of type number')
  t.false(err.message.includes('12345678'))
})

test('inspect shows a secret as secret with no value; literal text is told apart from @FILE and env:NAME', (t) => {
  const spec = lock.options.token as OptionSpec
  t.is(formatType(spec), 'secret')
  t.is(formatDefault(spec), '(none)')
  t.true(isLiteralSecret('hunter2'))
  t.false(isLiteralSecret('@/run/secrets/token'))
  t.false(isLiteralSecret('env:TOKEN'))
  t.false(isLiteralSecret(''))
})
