// Test certificates, made at test time by `frame-pipe cert`'s own code
// (openssl signs them) in a temporary directory removed at teardown: no
// private key is ever committed. `hasOpenssl` tells tests to skip (and why)
// on a machine without the openssl command.

import type { ExecutionContext } from 'ava'
import { spawnSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { makeCertificate, type CertResult } from '../../src/cli/cert.js'
import { tempDir } from './index.js'

export const hasOpenssl = spawnSync('openssl', ['version']).status === 0
export const NO_OPENSSL = 'openssl is not installed (apt-get install openssl): it signs the test certificates'

export interface TestPki {
  dir: string
  /** The server's certificate, for localhost, 127.0.0.1, 127.0.0.2 and ::1. */
  server: CertResult
  /** A second self-signed pair, trusted by nobody: a stranger's certificate. */
  other: CertResult
  /** A client certificate, for mutual TLS. */
  client: CertResult
  /** A 32-character token in a 0600 file: give it as token=@<tokenFile>. */
  token: string
  tokenFile: string
}

/** Certificates and a token for one test, removed at its teardown. */
export async function testPki(t: ExecutionContext): Promise<TestPki> {
  const { dir, cleanup } = await tempDir('frame-pipe-tls-')
  t.teardown(cleanup)
  const [server, other, client] = await Promise.all([
    makeCertificate({ dir: join(dir, 'server'), names: ['127.0.0.2'], days: 2 }),
    makeCertificate({ dir: join(dir, 'other'), days: 2 }),
    makeCertificate({ dir: join(dir, 'client'), names: ['camera-1'], days: 2 }),
  ])
  const token = 'tok-' + Math.random().toString(36).slice(2).padEnd(12, 'x') + '-0123456789abcdef'
  const tokenFile = join(dir, 'token')
  await writeFile(tokenFile, token + '\n', { mode: 0o600 })
  return { dir, server, other, client, token, tokenFile }
}
