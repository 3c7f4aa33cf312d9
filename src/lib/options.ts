// Option specs that several stages share, so that an option means and reads
// the same in every stage (the README's stage tables and `frame-pipe inspect`
// are generated from these docs). A stage passes its own doc where the option
// says more there than the shared text does.

import type { OptionSpec } from '../spec.js'

// ------------------------------------------------------------- servers

/** Where a server listens: loopback unless told otherwise. */
export function hostOption(doc = 'Address to listen on; 0.0.0.0 accepts other machines'): OptionSpec {
  return { type: 'string', default: '127.0.0.1', doc }
}

export function portOption(defaultPort: number, doc = 'Port to listen on; 0 picks a free one (see the listening event)'): OptionSpec {
  return { type: 'int', min: 0, max: 65535, default: defaultPort, doc }
}

export function maxClientsOption(doc = 'Clients served at once; more connections are closed and logged'): OptionSpec {
  return { type: 'int', min: 1, default: 64, doc }
}

/** How long the end waits for queued data to leave; `doc` says what waits for what. */
export function lingerOption(doc: string): OptionSpec {
  return { type: 'duration', min: 0, default: 2000, doc }
}

// ------------------------------------------------------------- clients

export function serverHostOption(doc = 'Server to connect to'): OptionSpec {
  return { type: 'string', default: '127.0.0.1', doc }
}

/** The server's port; with no default the user must give it. */
export function serverPortOption(defaultPort?: number, doc = 'Server port'): OptionSpec {
  if (defaultPort === undefined) return { type: 'int', min: 1, max: 65535, required: true, doc }
  return { type: 'int', min: 1, max: 65535, default: defaultPort, doc }
}

// ------------------------------------------------------------- recorders (avi, mp4)

export function recordingDirOption(): OptionSpec {
  return { type: 'string', default: 'rec', doc: 'Directory for the recordings; created if missing' }
}

/** Segment names: lib/naming.ts's tokens, and never replacing a file (lib/recording.ts). */
export function recordingPatternOption(ext: string): OptionSpec {
  return {
    type: 'string', default: `rec-{date}_{time}.${ext}`,
    doc: "File name of each segment, from its first frame's timestamp (local time): {date} YYYY-MM-DD, {time} HH-MM-SS, {ms} epoch ms, {Y}{M}{D}{h}{m}{s}, %d/%0Nd = segment number from 0, {seq}, %% = %; may contain subdirectories. An existing file is never replaced: _1, _2 … is added before the extension",
  }
}

/** Rotation by time (lib/recording.ts's rotation()); `more` adds what it means for this recorder. */
export function recordingSegmentOption(more?: string): OptionSpec {
  const doc = "Start a new file when a frame's timestamp is this far from the segment's first frame (either way: a clock stepped back counts); 0 = off"
  return { type: 'duration', min: 0, default: 0, doc: more ? `${doc}. ${more}` : doc }
}

/** The recorded rate; `doc` says how 0 measures it. */
export function recordingFpsOption(doc: string): OptionSpec {
  return { type: 'number', min: 0, max: 1000, default: 0, doc }
}
