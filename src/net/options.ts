// Option specs that the network stages share, so that an option means and reads
// the same in every stage (the README's stage tables and `frame-pipe inspect`
// are generated from these docs). A stage passes its own doc where the option
// says more there than the shared text does.

import type { OptionSpec } from '../core/spec.js'

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

/** Cut off a client whose connection takes nothing for this long (it does not read): like GStreamer multihandlesink's timeout. */
export function sendTimeoutOption(
  doc = 'A client whose connection takes nothing for this long (it does not read) is cut off and counted in stalled, freeing its slot; 0 = never',
): OptionSpec {
  return { type: 'duration', min: 0, default: 10_000, doc }
}

/** Close a client that the protocol waits on and that says nothing; `doc` says when a client counts as idle. */
export function idleTimeoutOption(doc: string): OptionSpec {
  return { type: 'duration', min: 0, default: 60_000, doc }
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
