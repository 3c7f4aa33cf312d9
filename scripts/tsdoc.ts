// Where each stage's options type declares its fields, and whether each field
// carries a TSDoc comment, read with the TypeScript compiler API. Used by
// scripts/tsdoc-check.ts and by a test, so that what an editor shows for an
// option stays in step with `frame-pipe inspect`.
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { formatDefault, type OptionSpec, type StageSpec } from '../src/core/spec.js'

export interface OptionField {
  stage: string
  option: string
  spec: OptionSpec
  /** The file and offset of the field's declaration. */
  file: string
  position: number
  documented: boolean
}

const FOLDER = { source: 'sources', transform: 'transforms', sink: 'sinks' } as const

export function stageOptionFields(stages: readonly StageSpec[]): OptionField[] {
  const files = stages.map((s) => fileURLToPath(new URL(`../src/${FOLDER[s.kind]}/${s.name}.ts`, import.meta.url)))
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
  })
  const checker = program.getTypeChecker()
  const out: OptionField[] = []
  stages.forEach((stage, i) => {
    const source = program.getSourceFile(files[i]!)
    if (!source) throw new Error(`no source file for stage ${stage.name}: ${files[i]}`)
    const optionsType = findOptionsType(source)
    if (!optionsType) throw new Error(`${files[i]}: no defineStage<Options, …> call`)
    const type = checker.getTypeFromTypeNode(optionsType)
    for (const [option, spec] of Object.entries(stage.options as Record<string, OptionSpec>)) {
      const declaration = type.getProperty(option)?.declarations?.[0]
      if (!declaration) throw new Error(`${files[i]}: the options type of ${stage.name} has no field ${option}`)
      out.push({
        stage: `${stage.name} (${stage.kind})`,
        option,
        spec,
        file: declaration.getSourceFile().fileName,
        position: declaration.getStart(),
        documented: ts.getJSDocCommentsAndTags(declaration).length > 0,
      })
    }
  })
  return out
}

function findOptionsType(node: ts.Node): ts.TypeNode | undefined {
  if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'defineStage')
    return node.typeArguments?.[0]
  return ts.forEachChild(node, findOptionsType)
}

/** The comment for an option field: the spec's doc, then its unit in the TypeScript API and its default. */
export function optionTsdoc(spec: OptionSpec): string {
  const unit =
    spec.type === 'duration'
      ? 'milliseconds'
      : spec.type === 'size'
        ? 'bytes'
        : spec.type === 'secret'
          ? 'the secret, @FILE or env:NAME'
          : ''
  const def = spec.required ? 'required' : spec.default === undefined ? '' : `default ${formatDefault(spec)}`
  const tail = [unit, def].filter(Boolean).join('; ')
  const doc = spec.doc.replace(/\*\//g, '*\\/')
  return tail ? `${doc} (${tail})` : doc
}
