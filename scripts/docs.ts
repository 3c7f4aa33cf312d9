// `npm run docs`: rewrite docs/stages.md's tables from the registry.
// test/cli/docs.test.ts fails when the page is out of date.
import { readFileSync, writeFileSync } from 'node:fs'
import { STAGES_BEGIN, STAGES_END, stagesMarkdown } from '../src/cli/inspect.js'

const path = new URL('../docs/stages.md', import.meta.url)
const text = readFileSync(path, 'utf8')
const start = text.indexOf(STAGES_BEGIN)
const end = text.indexOf(STAGES_END)
if (start < 0 || end < start) throw new Error(`docs/stages.md lacks the markers ${STAGES_BEGIN} … ${STAGES_END}`)
const next = text.slice(0, start + STAGES_BEGIN.length) + '\n' + stagesMarkdown() + '\n' + text.slice(end)
if (next !== text) {
  writeFileSync(path, next)
  console.log('docs/stages.md: stage tables updated')
} else {
  console.log('docs/stages.md: stage tables already current')
}
