// `frame-pipe cert`: a self-signed certificate and its key for trying TLS on a
// local network, in one command. Node can make the key but not an X.509
// certificate, so the certificate is signed by the `openssl` command (a
// missing openssl is one clear error, before anything is written). The key
// is written by this process with mode 0600 and never passes through a
// command line or a temporary file.
//
// The certificate is its own trust anchor: clients give it as ca=cert.pem
// (curl --cacert, ffmpeg -ca_file). It is for localhost, 127.0.0.1 and ::1,
// plus every --name given (host names or addresses the server is reached by).

import { spawn } from 'node:child_process'
import { createHash, createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FramePipeError } from '../core/errors.js'

export interface CertOptions {
  /** Directory for cert.pem and key.pem (made if missing). */
  dir: string
  /** Host names and addresses besides localhost, 127.0.0.1 and ::1; the first is the certificate's common name. */
  names?: string[]
  /** Days the certificate is valid. */
  days?: number
  /** Replace cert.pem and key.pem when they exist. */
  force?: boolean
  /** The openssl command. */
  openssl?: string
}

export interface CertResult {
  cert: string
  key: string
  names: string[]
  days: number
  /** SHA-256 fingerprint of the certificate, colon-separated hex. */
  fingerprint: string
  /** Base64 SHA-256 of the public key (SPKI): what Chromium's --ignore-certificate-errors-spki-list takes. */
  spki: string
}

const DEFAULT_NAMES = ['localhost', '127.0.0.1', '::1']

export async function makeCertificate(o: CertOptions): Promise<CertResult> {
  const days = o.days ?? 365
  const names = [...new Set([...(o.names ?? []), ...DEFAULT_NAMES])]
  for (const name of names) {
    if (isIP(name) === 0 && !/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/.test(name)) {
      throw new FramePipeError('ERR_INVALID_OPTION', `--name ${name}: not a host name or an IP address`)
    }
  }
  const openssl = o.openssl ?? 'openssl'
  await checkOpenssl(openssl)
  await mkdir(o.dir, { recursive: true })
  const certPath = join(o.dir, 'cert.pem')
  const keyPath = join(o.dir, 'key.pem')
  for (const path of [certPath, keyPath]) {
    if (existsSync(path) && !o.force) throw new FramePipeError('ERR_INVALID_OPTION', `${path} exists: give --force to replace it`)
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  // Written afresh with 0600: a replaced file must not keep wider permissions.
  if (o.force) await unlink(keyPath).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)))
  await writeFile(keyPath, keyPem, { mode: 0o600, flag: 'wx' })
  await chmod(keyPath, 0o600)
  const work = await mkdtemp(join(tmpdir(), 'frame-pipe-cert-'))
  try {
    const config = join(work, 'openssl.cnf')
    await writeFile(config, opensslConfig(names))
    const partial = join(work, 'cert.pem')
    await run(openssl, ['req', '-new', '-x509', '-config', config, '-key', keyPath, '-out', partial, '-days', String(days), '-sha256'])
    // The temporary directory may be on another file system than dir.
    await rename(partial, certPath).catch(() => copyFile(partial, certPath))
  } catch (err) {
    await rm(keyPath, { force: true })
    throw err
  } finally {
    await rm(work, { recursive: true, force: true })
  }
  const cert = new X509Certificate(await readFile(certPath))
  const spkiDer = createPublicKey(privateKey).export({ type: 'spki', format: 'der' })
  return {
    cert: certPath,
    key: keyPath,
    names,
    days,
    fingerprint: cert.fingerprint256,
    spki: createHash('sha256').update(spkiDer).digest('base64'),
  }
}

/** `frame-pipe cert`: make the pair and say how to use it. */
export async function runCert(o: CertOptions, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const r = await makeCertificate(o)
  const lines = [
    `wrote ${r.cert}: a self-signed certificate for ${r.names.join(', ')}, valid ${r.days} days`,
    `wrote ${r.key}: its private key (mode 0600: keep it on the server, never copy it to clients)`,
    `  SHA-256 fingerprint: ${r.fingerprint}`,
    '',
    'servers:  cert=' + r.cert + ' key=' + r.key + '   (tcp-server, snapshot-server, cmd-server, http)',
    'clients:  ca=' + r.cert + '   (tcp-client, snapshot-client, cmd-client, http url=https://…)',
    `          curl --cacert ${r.cert} https://localhost:8080/snapshot.jpg -o snap.jpg`,
    `          ffmpeg -ca_file ${r.cert} -tls_verify 1 -i https://localhost:8080/stream.mjpg …`,
    `browsers: trust ${r.cert} in the system or browser store, or for a try: chromium --ignore-certificate-errors-spki-list=${r.spki}`,
    '',
    'a token for token= on both ends (never on the command line):',
    '          openssl rand -base64 24 > token && chmod 600 token   then token=@token',
  ]
  out.write(lines.join('\n') + '\n')
  return 0
}

function opensslConfig(names: string[]): string {
  const alt = names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',')
  return [
    '[req]',
    'distinguished_name = dn',
    'prompt = no',
    'x509_extensions = v3',
    '[dn]',
    `CN = ${names[0]}`,
    'O = frame-pipe (self-signed)',
    '[v3]',
    `subjectAltName = ${alt}`,
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage = serverAuth,clientAuth',
    'subjectKeyIdentifier = hash',
    '',
  ].join('\n')
}

async function checkOpenssl(openssl: string): Promise<void> {
  try {
    await run(openssl, ['version'])
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new FramePipeError(
        'ERR_IO',
        `frame-pipe cert needs the '${openssl}' command to sign the certificate (Node cannot make one by itself), and it is not installed: ` +
          'apt-get install openssl (Debian, Ubuntu), apk add openssl (Alpine), brew install openssl (macOS); or make cert.pem and key.pem with any other tool',
      )
    }
    throw err
  }
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (d: string) => {
      if (stderr.length < 4096) stderr += d
    })
    child.once('error', reject)
    child.once('close', (code) => {
      if (code === 0) return resolve()
      reject(new FramePipeError('ERR_IO', `${command} ${args[0]} failed (exit ${code}): ${stderr.trim().split('\n')[0] ?? ''}`))
    })
  })
}
