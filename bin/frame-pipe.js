#!/usr/bin/env node
// Thin launcher: the CLI lives in dist/ (built by `npm install` through the prepare script).
import { existsSync } from 'node:fs'

const entry = new URL('../dist/src/cli/main.js', import.meta.url)
if (!existsSync(entry)) {
  process.stderr.write('frame-pipe: not built yet: run `npm install` (or `npm run build`) in the package folder\n')
  process.exit(1)
}
const { main } = await import(entry.href)
const code = await main(process.argv.slice(2))
process.exitCode = code
// A stage that failed to release a handle must not keep the command alive after it is done.
setTimeout(() => process.exit(code), 3000).unref()
