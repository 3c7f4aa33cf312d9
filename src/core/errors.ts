// Typed errors with stable codes. Every message starts with the stage that
// raised it, so one line on stderr is enough to know where and what.

export type ErrorCode =
  | 'ERR_INVALID_OPTION'
  | 'ERR_UNKNOWN_STAGE'
  | 'ERR_PIPELINE_SYNTAX'
  | 'ERR_LINK'
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_UNEXPECTED_EOF'
  | 'ERR_BAD_HEADER'
  | 'ERR_CHECKSUM'
  | 'ERR_BAD_FRAME'
  | 'ERR_ENCODE'
  | 'ERR_DECODE'
  | 'ERR_NETWORK'
  | 'ERR_IO'

export class FramePipeError extends Error {
  readonly code: ErrorCode
  /** Name of the stage that raised the error, when there is one. */
  readonly stage: string | undefined

  constructor(code: ErrorCode, message: string, options: { stage?: string; cause?: unknown } = {}) {
    super(options.stage ? `${options.stage}: ${message}` : message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'FramePipeError'
    this.code = code
    this.stage = options.stage
  }
}

/** A stage option with a bad value or name; `option` names it, so the CLI can point at its column. */
export class InvalidOptionError extends FramePipeError {
  readonly option: string
  constructor(stage: string, option: string, message: string) {
    super('ERR_INVALID_OPTION', message, { stage })
    this.option = option
  }
}

export class FrameTooLargeError extends FramePipeError {
  /** bigint when a 64-bit header announces more than Number can hold exactly. */
  readonly size: number | bigint
  readonly limit: number
  constructor(stage: string, size: number | bigint, limit: number) {
    super('ERR_FRAME_TOO_LARGE', `header announces a frame of ${size} bytes, more than maxFrameBytes (${limit})`, { stage })
    this.size = size
    this.limit = limit
  }
}

export class UnexpectedEofError extends FramePipeError {
  readonly missing: number
  constructor(stage: string, what: string, missing: number) {
    super('ERR_UNEXPECTED_EOF', `stream ended in the middle of ${what}: ${missing} byte${missing === 1 ? '' : 's'} missing`, { stage })
    this.missing = missing
  }
}

/** Wrap an OS/network error so the message carries stage and address, e.g. `tcp-client: connect ECONNREFUSED 127.0.0.1:9000`. */
export function networkError(stage: string, err: unknown, address?: string): FramePipeError {
  if (err instanceof FramePipeError) return err
  const e = err as NodeJS.ErrnoException
  let text = e?.message ?? String(err)
  if (e?.code === 'EADDRINUSE') text = `port in use: ${address ?? text}`
  else if (e?.code === 'ECONNREFUSED') text = `connection refused by ${address ?? '?'} (is the server running?)`
  else if (e?.code === 'EACCES') text = `permission denied binding ${address ?? '?'}`
  else if (e?.code === 'ENOTFOUND') text = `unknown host in ${address ?? '?'}`
  else if (address && !text.includes(address)) text = `${text} (${address})`
  return new FramePipeError('ERR_NETWORK', text, { stage, cause: err })
}

/** Describe a value for an error message: `101 of type number`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined'
  if (value === null) return 'null'
  if (typeof value === 'string') return `'${value.length > 40 ? value.slice(0, 40) + '…' : value}' of type string`
  if (typeof value === 'object') return `an ${Array.isArray(value) ? 'array' : 'object'}`
  return `${String(value)} of type ${typeof value}`
}
