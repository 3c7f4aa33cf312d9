// Ctrl-C semantics shared by every command that runs pipelines.

import type { Stream } from 'node:stream'
import { FramePipeError } from '../core/errors.js'
import { stopPipeline } from '../core/pipeline.js'
import type { StatusReporter } from './status.js'

/** First Ctrl-C (or SIGTERM): end the source cleanly so sinks flush. Second: tear everything down. */
export function handleSignals(stages: Stream[], status: StatusReporter): { dispose(): void; readonly aborted: boolean } {
  let count = 0
  let aborted = false
  const onSignal = (signal: NodeJS.Signals): void => {
    count++
    if (count === 1) {
      status.logLine(`frame-pipe: ${signal}: stopping, flushing sinks (again to abort)`)
      stopPipeline(stages)
    } else {
      aborted = true
      const err = new FramePipeError('ERR_IO', `aborted by ${signal}`)
      for (const s of stages) (s as unknown as { destroy(e?: Error): void }).destroy(err)
    }
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return {
    dispose() {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    },
    get aborted() {
      return aborted
    },
  }
}
