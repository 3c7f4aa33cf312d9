// Secrets for the NATS stages (token, password, nkey seed, creds) never need to
// be on the command line, where `ps` shows them to every user of the machine:
// `@/path/to/file` reads the file, `env:NAME` reads an environment variable.
// A value in neither form is the secret itself (fine from the TypeScript API).
// Messages name the option and the reference, never the secret.

import { readFileSync } from 'node:fs'
import { InvalidOptionError } from '../../core/errors.js'

/**
 * The secret an option stands for: the contents of the file after `@` (one
 * trailing newline removed, as `echo` and editors leave one), the variable
 * after `env:`, or the value itself. '' stays '' (the option is not used).
 */
export function resolveSecret(stage: string, option: string, value: string): string {
  if (value === '') return ''
  if (value.startsWith('@')) {
    const path = value.slice(1)
    if (path === '') throw new InvalidOptionError(stage, option, `${option}=@ needs a file path after @ (e.g. ${option}=@/etc/frame-pipe/${option})`)
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
      throw new InvalidOptionError(stage, option, `${option}: cannot read the file ${path} (${code})`)
    }
    const secret = text.replace(/\r?\n$/, '')
    if (secret === '') throw new InvalidOptionError(stage, option, `${option}: the file ${path} is empty`)
    return secret
  }
  if (value.startsWith('env:')) {
    const name = value.slice(4)
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new InvalidOptionError(stage, option, `${option}=env:NAME needs a variable name after env: (letters, digits, _)`)
    const secret = process.env[name]
    if (secret === undefined || secret === '') throw new InvalidOptionError(stage, option, `${option}: the environment variable ${name} is not set`)
    return secret
  }
  return value
}
