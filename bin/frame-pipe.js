#!/usr/bin/env node
// Thin launcher: the CLI lives in dist/ (built by `npm install` through the prepare script).
import { existsSync } from 'node:fs'
import module from 'node:module'

// Node 22.8 and later keep V8's compiled code of the CLI's modules between
// runs, so a command does not compile them again at every start (Node 20 has
// no such cache: there this is a no-op). The cache lives in Node's own folder
// for it; NODE_DISABLE_COMPILE_CACHE=1 turns it off. See docs/performance.md.
module.enableCompileCache?.()

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
