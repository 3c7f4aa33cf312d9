// The synchronous launch API: `pipeline(...launch('testsrc ! jpeg ! null'))`.
// It takes the stages from the registry, which loads every stage; the CLI
// uses src/plan.ts's loadPlan instead, which imports only the stages named.

import type { Stream } from 'node:stream'
import type { Staged } from './core/stage.js'
import { createAll, planDescription, type PlannedStage } from './plan.js'
import { findStage } from './registry.js'

export { parseDescription, planDescription, loadPlan, PipelineSyntaxError } from './plan.js'
export type { ParsedOption, ParsedStage, PlannedStage } from './plan.js'

/** Create the streams of a plan. Options were validated by planDescription. */
export function buildPlan(planned: PlannedStage[]): Staged<Stream>[] {
  return createAll(planned.map(({ spec, options }) => ({ spec: findStage(spec.name, spec.kind)!, options })))
}

/** Parse, check and create: the streams are ready for `pipeline(...)`. */
export function launch(text: string): Staged<Stream>[] {
  return buildPlan(planDescription(text))
}
