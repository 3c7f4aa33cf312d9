// `frame-pipe inspect [stage]` (think gst-inspect) and docs/stages.md's stage
// tables, both made from the catalog (the registry's data, src/catalog.json), so
// listing the stages loads none of them.

import { FramePipeError } from '../core/errors.js'
import { CATALOG, catalogNamed, catalogNames } from '../catalog.js'
import { closest, formatDefault, formatType, type CatalogEntry, type OptionSpec } from '../core/spec.js'
import type { PortType, StageKind } from '../core/spec.js'

const KINDS = ['source', 'transform', 'sink'] as const

/** Said under every stage with a duration option: the unit of a bare number changed once, so it is spelled out. */
export const DURATION_NOTE = 'durations: 500ms, 2s, 1.5m, 1h or HH:MM:SS; a bare number is seconds (the TypeScript API takes milliseconds)'

function ports(spec: CatalogEntry): string {
  return `${spec.input ?? '-'} → ${spec.output ?? '-'}`
}

/** Plain-text list of every stage, grouped by kind. */
export function inspectAll(): string {
  const width = Math.max(...CATALOG.map((s) => s.name.length))
  const lines: string[] = []
  for (const kind of KINDS) {
    lines.push(`${kind}s:`)
    for (const s of CATALOG.filter((st) => st.kind === kind)) {
      lines.push(`  ${s.name.padEnd(width)}  ${ports(s).padEnd(17)}  ${s.description}`)
    }
    lines.push('')
  }
  lines.push("'frame-pipe inspect <stage>' shows a stage's options.")
  return lines.join('\n')
}

/** Plain-text details of one stage name (a source and a sink may share it). */
export function inspectStage(name: string): string {
  return specsNamed(name).map(describe).join('\n\n')
}

function specsNamed(name: string): CatalogEntry[] {
  const specs = catalogNamed(name)
  if (specs.length === 0) {
    const hint = closest(name, catalogNames())
    throw new FramePipeError('ERR_UNKNOWN_STAGE', `unknown stage '${name}'${hint ? ` (did you mean '${hint}'?)` : ''}`)
  }
  return specs
}

/** One option in `inspect --json`. Numbers are in `unit` (durations in ms, sizes in bytes), as the TypeScript API takes them. */
export interface OptionJson {
  name: string
  type: OptionSpec['type']
  doc: string
  required: boolean
  /** Absent when the option has no default (required) or is a secret. */
  default?: string | number | boolean
  /** The default as the command line writes it (`1s`, `64KiB`, `''`). */
  defaultText: string
  /** 'ms' for durations, 'bytes' for sizes. */
  unit?: 'ms' | 'bytes'
  min?: number
  max?: number
  /** An enum's values. */
  values?: readonly string[]
}

/** One stage in `inspect --json`. */
export interface StageJson {
  name: string
  kind: StageKind
  input: PortType | null
  output: PortType | null
  description: string
  /** Sinks: what each record they pass on is. */
  passes?: string
  options: OptionJson[]
}

export function stageJson(spec: CatalogEntry): StageJson {
  const options = Object.entries(spec.options as Record<string, OptionSpec>).map(([name, o]): OptionJson => {
    const out: OptionJson = { name, type: o.type, doc: o.doc, required: o.required === true, defaultText: formatDefault(o) }
    if (o.default !== undefined && o.type !== 'secret') out.default = o.default
    if (o.type === 'duration') out.unit = 'ms'
    if (o.type === 'size') out.unit = 'bytes'
    if ('min' in o && o.min !== undefined) out.min = o.min
    if ('max' in o && o.max !== undefined) out.max = o.max
    if (o.type === 'enum') out.values = o.values
    return out
  })
  const json: StageJson = {
    name: spec.name,
    kind: spec.kind,
    input: spec.input,
    output: spec.output,
    description: spec.description,
    options,
  }
  if (spec.passes) json.passes = spec.passes
  return json
}

/**
 * `inspect --json [stage]`: a JSON array of stages (every stage, or those of
 * one name: a name can be both a source and a sink).
 */
export function inspectJson(name?: string): string {
  const specs = name === undefined ? CATALOG : specsNamed(name)
  return JSON.stringify(specs.map(stageJson), null, 2)
}

function describe(spec: CatalogEntry): string {
  const lines = [
    `${spec.name} (${spec.kind})`,
    `  ${spec.description}`,
    `  takes: ${spec.input ?? 'nothing'}   produces: ${spec.output ?? 'nothing'}`,
  ]
  if (spec.passes) lines.push(`  passes on: ${spec.passes}`)
  if (spec.faults) lines.push(`  bad peers: ${spec.faults}`)
  const opts = Object.entries(spec.options as Record<string, OptionSpec>)
  if (opts.length === 0) {
    lines.push('  no options')
    return lines.join('\n')
  }
  lines.push('  options:')
  const nameW = Math.max(...opts.map(([k]) => k.length))
  const typeW = Math.max(...opts.map(([, o]) => formatType(o).replace(/\\\|/g, '|').length))
  for (const [key, o] of opts) {
    const def = formatDefault(o)
    lines.push(`    ${key.padEnd(nameW)}  ${formatType(o).replace(/\\\|/g, '|').padEnd(typeW)}  ${o.doc}${def ? ` [default: ${def}]` : ''}`)
  }
  if (opts.some(([, o]) => o.type === 'duration')) lines.push(`  ${DURATION_NOTE}`)
  return lines.join('\n')
}

/** Markdown for docs/stages.md: one summary table, then an options table per stage. */
export function stagesMarkdown(stages: readonly CatalogEntry[] = CATALOG): string {
  const out: string[] = []
  out.push(
    'Durations in options take a unit, `500ms`, `2s`, `1.5m`, `1h` (or `HH:MM:SS`); a bare number is seconds, as in ffmpeg (`segment=15` is 15 s). The TypeScript API takes milliseconds.',
    '',
  )
  out.push('| stage | kind | takes → produces | what it does |', '|---|---|---|---|')
  for (const s of stages) out.push(`| [\`${s.name}\`](#${anchor(s)}) | ${s.kind} | ${ports(s)} | ${s.description} |`)
  for (const s of stages) {
    out.push('', `#### \`${s.name}\` (${s.kind})`, '', s.description + (s.passes ? ` Passes on: ${s.passes}` : ''), '')
    if (s.faults) out.push(`Bad peers: ${s.faults}`, '')
    const opts = Object.entries(s.options as Record<string, OptionSpec>)
    if (opts.length === 0) {
      out.push('No options.')
      continue
    }
    out.push('| option | type | default | description |', '|---|---|---|---|')
    for (const [key, o] of opts)
      out.push(`| \`${key}\` | ${formatType(o)} | ${formatDefault(o).replace(/\|/g, '\\|')} | ${o.doc.replace(/\|/g, '\\|')} |`)
  }
  return out.join('\n')
}

function anchor(s: CatalogEntry): string {
  return `${s.name}-${s.kind}`.toLowerCase().replace(/[^a-z0-9-]/g, '')
}

export const STAGES_BEGIN = '<!-- stages:begin (generated by `npm run docs` from the registry; do not edit by hand) -->'
export const STAGES_END = '<!-- stages:end -->'
