// What every stage is, as plain data: names, kinds, ports, descriptions and
// options, without loading any stage. The CLI reads it to parse, check and
// `inspect` a description, then imports only the stages the pipeline names
// (GStreamer keeps a registry cache for the same reason: loading every
// plugin to list them is slow). Loading all 35 stage files took about
// 370 ms here (the NATS client alone about 100 ms); `frame-pipe inspect`
// and a pipeline of three stages should not pay it.
//
// The data is src/catalog.json, generated from src/registry.ts by
// `npm run docs`; test/cli/docs.test.ts fails when it is out of date.

import type { CatalogEntry, StageKind, StageSpec } from './core/spec.js'
import entries from './catalog.json' with { type: 'json' }

const FOLDER: Record<StageKind, string> = { source: 'sources', transform: 'transforms', sink: 'sinks' }

export function catalogFind(name: string, kind: StageKind): CatalogEntry | undefined {
  return CATALOG.find((s) => s.name === name && s.kind === kind)
}

export function catalogNamed(name: string): CatalogEntry[] {
  return CATALOG.filter((s) => s.name === name)
}

export function catalogNames(): string[] {
  return [...new Set(CATALOG.map((s) => s.name))]
}

/** The full spec (with its factory) of a catalogued stage: imports that one stage file. */
export async function loadStage(info: Pick<CatalogEntry, 'name' | 'kind'>): Promise<StageSpec> {
  const module = (await import(`./${FOLDER[info.kind]}/${info.name}.js`)) as { spec?: StageSpec }
  if (!module.spec || module.spec.name !== info.name || module.spec.kind !== info.kind) {
    throw new Error(`src/${FOLDER[info.kind]}/${info.name} does not export the spec of the ${info.kind} ${info.name}`)
  }
  return module.spec
}

/** The catalog entry of a spec: the spec without its factory, as JSON would keep it. */
export function catalogEntry(spec: StageSpec): CatalogEntry {
  const { create: _create, ...info } = spec
  return JSON.parse(JSON.stringify(info)) as CatalogEntry
}

// The entries: src/catalog.json, data generated from src/registry.ts by `npm run docs`.
export const CATALOG: readonly CatalogEntry[] = entries as CatalogEntry[]
