// The one interface of the byte parsers in wire/ (length-prefix, MJPEG,
// multipart): a transport hands each chunk to feed() as it arrives and calls
// end() when its input ends. Every parser is built from one options object:
// its limits, the stage name for messages, and its callbacks (onFrame,
// onPart, onDrop, …), which it calls from inside feed() and end().

import { FramePipeError } from '../core/errors.js'

/** What every byte parser's options hold, beside its callbacks. */
export interface ByteParserOptions {
  /** Largest frame accepted; what a bigger one does depends on the format (an error, or a counted drop). */
  maxFrameBytes: number
  /** Stage name for error messages. */
  stage?: string
}

export interface ByteParser {
  /**
   * Parse the next chunk. Frames it completes reach the callbacks before
   * feed() returns. A returned error stops the parser: nothing more may be fed.
   */
  feed(chunk: Buffer): FramePipeError | undefined
  /**
   * The input ended. Undefined when it ended between frames. A frame cut
   * short is dropped and returned as an ERR_UNEXPECTED_EOF error that says
   * how many bytes it held or lacked (UnexpectedEofError when the format had
   * announced its length, CutFrameError when not); it is not reported through
   * the callbacks as well. Whether that error ends the caller's stream (a
   * length-prefixed transport) or counts as a drop (MJPEG from ffmpeg,
   * multipart over HTTP) is the caller's choice. Other errors are those
   * feed() could return for the bytes held.
   */
  end(): FramePipeError | undefined
}

/** The input ended inside a frame whose length the format does not announce: the `dropped` bytes held of it are thrown away. */
export class CutFrameError extends FramePipeError {
  /** The frame, for messages: `an image`, `a part`. */
  readonly what: string
  readonly dropped: number
  constructor(stage: string, what: string, dropped: number) {
    super('ERR_UNEXPECTED_EOF', `stream ended in the middle of ${what}: ${dropped} byte${dropped === 1 ? '' : 's'} dropped`, { stage })
    this.what = what
    this.dropped = dropped
  }
}
