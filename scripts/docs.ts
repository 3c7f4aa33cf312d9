// `npm run docs`: rewrite the README's stage tables from the registry.
// test/readme.test.ts fails when the README is out of date.
import { readFileSync, writeFileSync } from 'node:fs'
import { README_BEGIN, README_END, stagesMarkdown } from '../src/cli/inspect.js'

const path = new URL('../README.md', import.meta.url)
const text = readFileSync(path, 'utf8')
const start = text.indexOf(README_BEGIN)
const end = text.indexOf(README_END)
if (start < 0 || end < start) throw new Error(`README.md lacks the markers ${README_BEGIN} … ${README_END}`)
const next = text.slice(0, start + README_BEGIN.length) + '\n' + stagesMarkdown() + '\n' + text.slice(end)
if (next !== text) {
  writeFileSync(path, next)
  console.log('README.md: stage tables updated')
} else {
  console.log('README.md: stage tables already current')
}
