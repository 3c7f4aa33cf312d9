// The error of a pipeline description, with the column it points at. Apart
// from launch.ts so that the CLI can recognise it without loading the
// registry (and with it every stage) before it knows it needs them.

import { FramePipeError } from './core/errors.js'

export class PipelineSyntaxError extends FramePipeError {
  readonly column: number
  readonly text: string
  constructor(
    code: 'ERR_PIPELINE_SYNTAX' | 'ERR_UNKNOWN_STAGE' | 'ERR_INVALID_OPTION' | 'ERR_LINK',
    message: string,
    text: string,
    column: number,
  ) {
    super(code, `${message} (column ${column + 1})`)
    this.column = column
    this.text = text
  }

  /** The description with a caret under the offending column, for the CLI. */
  pointer(): string {
    return `  ${this.text}\n  ${' '.repeat(this.column)}^`
  }
}
