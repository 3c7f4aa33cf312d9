// `npm run docs`: rewrite what is generated from the registry: docs/stages.md's
// tables and src/catalog.json (what the CLI knows of every stage without
// loading it). test/cli/docs.test.ts fails when either is out of date.
import { readFileSync, writeFileSync } from 'node:fs'
import { STAGES } from '../src/registry.js'
import { catalogEntry } from '../src/catalog.js'
import { STAGES_BEGIN, STAGES_END, stagesMarkdown } from '../src/cli/inspect.js'

function write(file: string, next: string): void {
  const path = new URL(`../${file}`, import.meta.url)
  if (readFileSync(path, 'utf8') === next) return void console.log(`${file}: already current`)
  writeFileSync(path, next)
  console.log(`${file}: updated`)
}

const page = readFileSync(new URL('../docs/stages.md', import.meta.url), 'utf8')
const start = page.indexOf(STAGES_BEGIN)
const stop = page.indexOf(STAGES_END)
if (start < 0 || stop < start) throw new Error(`docs/stages.md lacks the markers ${STAGES_BEGIN} … ${STAGES_END}`)
write('docs/stages.md', page.slice(0, start + STAGES_BEGIN.length) + '\n' + stagesMarkdown(STAGES) + '\n' + page.slice(stop))
write('src/catalog.json', JSON.stringify(STAGES.map(catalogEntry), null, 2) + '\n')
