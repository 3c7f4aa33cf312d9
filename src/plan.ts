// gst-launch style pipeline descriptions: `testsrc fps=30 ! jpeg quality=80 ! prefix ! tcp-server port=9000`.
// Parsing and building are separate so that every mistake is reported, with
// its column, before any stage opens a socket or a file. Planning reads the
// catalog (plain data); building imports only the stages the plan names, so
// the CLI starts without loading the other thirty-odd stages and their
// engines. src/launch.ts adds the synchronous API on top of the registry.

import type { Stream } from 'node:stream'
import { InvalidOptionError } from './core/errors.js'
import { PipelineSyntaxError } from './launch-error.js'
import { linkProblem } from './core/pipeline.js'
import { CATALOG, catalogFind, catalogNamed, catalogNames, loadStage } from './catalog.js'
import {
  closest,
  isLiteralSecret,
  parseOptionText,
  resolveOptions,
  type CatalogEntry,
  type OptionSpec,
  type StageKind,
  type StageSpec,
} from './core/spec.js'
import { createStage, type Staged } from './core/stage.js'
import { securityOptionHint, tokenWireProblem } from './net/security-rules.js'

export { PipelineSyntaxError } from './launch-error.js'

export interface ParsedOption {
  key: string
  value: string | true
  column: number
}
export interface ParsedStage {
  name: string
  column: number
  options: ParsedOption[]
}

/** A stage resolved against the catalog, with its options typed and validated. */
export interface PlannedStage {
  spec: CatalogEntry
  options: Record<string, unknown>
  column: number
  /** Secret options whose text was the secret itself (visible in `ps`), not `@FILE` or `env:NAME`: worth a warning. */
  literalSecrets: string[]
}

interface Token {
  text: string
  column: number
  bang: boolean
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (/\s/.test(c)) {
      i++
      continue
    }
    if (c === '!') {
      tokens.push({ text: '!', column: i, bang: true })
      i++
      continue
    }
    const column = i
    let word = ''
    while (i < text.length && !/\s/.test(text[i]!) && text[i] !== '!') {
      const q = text[i]!
      if (q === '"' || q === "'") {
        const end = text.indexOf(q, i + 1)
        if (end < 0) throw new PipelineSyntaxError('ERR_PIPELINE_SYNTAX', `unterminated ${q === '"' ? 'double' : 'single'} quote`, text, i)
        word += text.slice(i + 1, end)
        i = end + 1
      } else {
        word += q
        i++
      }
    }
    tokens.push({ text: word, column, bang: false })
  }
  return tokens
}

/** Split a description into stages and `key=value` options; no registry look-ups yet. */
export function parseDescription(text: string): ParsedStage[] {
  const tokens = tokenize(text)
  if (tokens.length === 0) throw new PipelineSyntaxError('ERR_PIPELINE_SYNTAX', 'empty pipeline', text, 0)
  const stages: ParsedStage[] = []
  let current: ParsedStage | undefined
  let expectStage = true
  for (const tok of tokens) {
    if (tok.bang) {
      if (expectStage)
        throw new PipelineSyntaxError(
          'ERR_PIPELINE_SYNTAX',
          stages.length === 0 ? "a pipeline cannot start with '!'" : "two '!' in a row: a stage is missing",
          text,
          tok.column,
        )
      expectStage = true
      continue
    }
    if (expectStage) {
      if (tok.text.includes('='))
        throw new PipelineSyntaxError('ERR_PIPELINE_SYNTAX', `expected a stage name, found the option '${tok.text}'`, text, tok.column)
      current = { name: tok.text, column: tok.column, options: [] }
      stages.push(current)
      expectStage = false
      continue
    }
    const eq = tok.text.indexOf('=')
    if (eq === 0) throw new PipelineSyntaxError('ERR_PIPELINE_SYNTAX', `option without a name: '${tok.text}'`, text, tok.column)
    if (eq < 0) {
      // A bare word after a stage is a boolean flag (`loop`), or a forgotten '!'.
      current!.options.push({ key: tok.text, value: true, column: tok.column })
    } else {
      current!.options.push({ key: tok.text.slice(0, eq), value: tok.text.slice(eq + 1), column: tok.column })
    }
  }
  if (expectStage) {
    const last = tokens[tokens.length - 1]!
    throw new PipelineSyntaxError('ERR_PIPELINE_SYNTAX', "the pipeline ends with '!': a stage is missing", text, last.column)
  }
  return stages
}

/** Position decides the role of names shared by a source and a sink (`files`, `http`, `tcp-server`, `tcp-client`). */
function roleFor(index: number, count: number): StageKind[] {
  if (index === 0) return ['source', 'transform', 'sink']
  if (index === count - 1) return ['sink', 'transform', 'source']
  return ['transform', 'sink', 'source']
}

/** Resolve names against the catalog and options against each stage's spec; check links. Nothing is created. */
export function planDescription(text: string): PlannedStage[] {
  const parsed = parseDescription(text)
  const planned = parsed.map((stage, index) => {
    if (catalogNamed(stage.name).length === 0) {
      const hint = closest(stage.name, catalogNames())
      throw new PipelineSyntaxError(
        'ERR_UNKNOWN_STAGE',
        `unknown stage '${stage.name}'${hint ? ` (did you mean '${hint}'?)` : ''}; 'frame-pipe inspect' lists them`,
        text,
        stage.column,
      )
    }
    const spec = roleFor(index, parsed.length)
      .map((kind) => catalogFind(stage.name, kind))
      .find(Boolean)!
    const literalSecrets = stage.options
      .filter(
        (o) =>
          (spec.options as Record<string, OptionSpec>)[o.key]?.type === 'secret' && typeof o.value === 'string' && isLiteralSecret(o.value),
      )
      .map((o) => o.key)
    return { spec, options: planOptions(text, spec, stage.options), column: stage.column, literalSecrets }
  })
  checkPlan(text, planned)
  // A token on a seed wire: its peers could never answer the check.
  const wire = tokenWireProblem(planned.map((p) => ({ name: p.spec.name, kind: p.spec.kind, options: p.options })))
  if (wire) throw new PipelineSyntaxError('ERR_INVALID_OPTION', wire.message, text, planned[wire.index]!.column)
  return planned
}

function planOptions(text: string, spec: CatalogEntry, given: ParsedOption[]): Record<string, unknown> {
  const specs = spec.options as Record<string, OptionSpec>
  const values: Record<string, unknown> = {}
  for (const opt of given) {
    const optSpec = specs[opt.key]
    if (!optSpec) {
      const hint = closest(opt.key, Object.keys(specs))
      const security = securityOptionHint(spec.name, opt.key)
      const msg =
        opt.value === true && findAnyStage(opt.key)
          ? `'${opt.key}' looks like a stage: is a '!' missing before it?`
          : security
            ? `${spec.name} has no option '${opt.key}': ${security}`
            : `${spec.name} has no option '${opt.key}'${hint ? ` (did you mean '${hint}'?)` : ''}`
      throw new PipelineSyntaxError('ERR_INVALID_OPTION', msg, text, opt.column)
    }
    if (opt.key in values)
      throw new PipelineSyntaxError('ERR_INVALID_OPTION', `${spec.name}: option '${opt.key}' given twice`, text, opt.column)
    try {
      values[opt.key] = parseOptionText(spec.name, opt.key, optSpec, opt.value)
    } catch (err) {
      throw new PipelineSyntaxError('ERR_INVALID_OPTION', (err as Error).message, text, opt.column)
    }
  }
  try {
    return resolveOptions(spec, values)
  } catch (err) {
    const bad = err instanceof InvalidOptionError ? given.find((o) => o.key === err.option) : undefined
    throw new PipelineSyntaxError('ERR_INVALID_OPTION', (err as Error).message, text, bad?.column ?? 0)
  }
}

function findAnyStage(name: string): boolean {
  return CATALOG.some((s) => s.name === name)
}

/** The link check `pipeline()` makes (same rules, same words), pointing at the stage's column. */
function checkPlan(text: string, planned: PlannedStage[]): void {
  const problem = linkProblem(planned.map(({ spec }) => spec))
  if (!problem) return
  const at = planned[problem.index]!
  // "needs somewhere to go": point just after the lone source's name.
  const column = planned.length < 2 ? at.column + at.spec.name.length : at.column
  throw new PipelineSyntaxError('ERR_LINK', problem.message, text, column)
}

/**
 * Create the streams of a plan, importing only the stages it names. Options
 * were validated by planDescription. If one stage fails to build, the ones
 * already made are destroyed.
 */
export async function loadPlan(planned: PlannedStage[]): Promise<Staged<Stream>[]> {
  const specs = await Promise.all(planned.map(({ spec }) => loadStage(spec)))
  return createAll(planned.map(({ options }, i) => ({ spec: specs[i]!, options })))
}

/** createStage for each, in order; on a failure the ones made so far are destroyed. */
export function createAll(stages: readonly { spec: StageSpec; options: Record<string, unknown> }[]): Staged<Stream>[] {
  const built: Staged<Stream>[] = []
  try {
    for (const { spec, options } of stages) built.push(createStage(spec, options))
  } catch (err) {
    for (const s of built) (s as unknown as { destroy?: () => void }).destroy?.()
    throw err
  }
  return built
}
