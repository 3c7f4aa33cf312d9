// Option specs both nats stages share: where the server is, how to prove who
// we are, TLS, and how to retry. Secrets are `secret` options: `@FILE` or
// `env:NAME`, so they never have to be on the command line, and never printed.

import type { OptionSpec } from '../../core/spec.js'
import type { NatsLinkConfig } from './connection.js'

export const LINK_OPTIONS: { [K in keyof NatsLinkConfig]: OptionSpec } = {
  server: {
    type: 'string',
    default: 'nats://127.0.0.1:4222',
    doc: 'NATS server URL, or several comma-separated (a cluster: the client moves to another when one goes); tls:// requires TLS; no credentials in the URL',
  },
  token: { type: 'secret', default: '', doc: 'Token the server requires (authorization { token })' },
  user: { type: 'string', default: '', doc: 'User name for user/password authentication' },
  password: { type: 'secret', default: '', doc: 'Password of user' },
  nkey: { type: 'secret', default: '', doc: 'NKey user seed (SU…, as `nk -gen user` prints it) for nkey authentication' },
  creds: {
    type: 'string',
    default: '',
    doc: 'Path of a creds file (user JWT + seed, as nsc writes it) for decentralized auth; the file holds the secret',
  },
  tls: { type: 'boolean', default: false, doc: 'Require TLS to the server (implied by tls://, ca, cert)' },
  ca: { type: 'string', default: '', doc: "PEM file of the CA that signed the server's certificate (default: the system CAs)" },
  cert: { type: 'string', default: '', doc: 'PEM file of our client certificate, when the server verifies clients (with key)' },
  key: { type: 'string', default: '', doc: "PEM file of the client certificate's private key (a path: the file holds the secret)" },
  reconnect: {
    type: 'boolean',
    default: true,
    doc: 'When the server goes away, reconnect (backoff from retryMin to retryMax) and resubscribe; off: losing the server is an error',
  },
  waitForServer: { type: 'boolean', default: false, doc: 'Retry the first connection too, instead of failing when no server is there' },
  retryMin: { type: 'duration', min: 1, default: 100, doc: 'First delay before a retry; doubles on each failure' },
  retryMax: { type: 'duration', min: 1, default: 5000, doc: 'Longest delay between retries' },
  connectTimeout: { type: 'duration', min: 1, default: 5000, doc: 'Give up a connection attempt (TCP, TLS and handshake) after this long' },
}

export function subjectOption(doc: string): OptionSpec {
  return { type: 'string', required: true, doc }
}
