// Log levels of the frame-pipe command, ffmpeg's names: what reaches stderr.

export const LOG_LEVELS = ['quiet', 'error', 'warning', 'info', 'debug'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/**
 * quiet: nothing at all (the exit code tells); error: errors only; warning:
 * and stages' warnings; info (default): and the status line, the summary and
 * stage events (listening, clients joining…); debug: and stack traces.
 */
export function shows(level: LogLevel, what: Exclude<LogLevel, 'quiet'>): boolean {
  return LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(what)
}

export function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text)
}

/** The level a stage event is logged at: trouble at warning, the rest at info. */
export function eventLevel(event: string): 'warning' | 'info' {
  return event === 'warning' || event === 'retry' ? 'warning' : 'info'
}
