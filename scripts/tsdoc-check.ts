// Lists the fields of stage options types that carry no TSDoc comment (or,
// with --write, adds one made from the stage spec's doc, with the unit and the
// default). The registry's docs are the source; this keeps the .d.ts that
// editors show in step with `frame-pipe inspect`.
//   npx tsx scripts/tsdoc-check.ts          list what is missing (exit 1 if anything is)
//   npx tsx scripts/tsdoc-check.ts --write  add the missing comments
import { readFileSync, writeFileSync } from 'node:fs'
import { STAGES } from '../src/registry.js'
import { optionTsdoc, stageOptionFields } from './tsdoc.js'

const write = process.argv.includes('--write')
const missing = stageOptionFields(STAGES).filter((f) => !f.documented)
if (!write) {
  for (const f of missing) console.log(`${f.file}: ${f.stage} ${f.option} has no TSDoc`)
  process.exitCode = missing.length > 0 ? 1 : 0
} else {
  const byFile = new Map<string, typeof missing>()
  for (const f of missing) byFile.set(f.file, [...(byFile.get(f.file) ?? []), f])
  for (const [file, fields] of byFile) {
    let text = readFileSync(file, 'utf8')
    // Insert from the end so earlier positions stay valid.
    for (const f of [...fields].sort((a, b) => b.position - a.position)) {
      const lineStart = text.lastIndexOf('\n', f.position - 1) + 1
      const indent = /^\s*/.exec(text.slice(lineStart))![0]
      text = text.slice(0, lineStart) + `${indent}/** ${optionTsdoc(f.spec)} */\n` + text.slice(lineStart)
    }
    writeFileSync(file, text)
    console.log(`${file}: ${fields.length} comments added`)
  }
}
