// The http sink over HTTPS and behind its gate (src/net/http/auth.ts), with
// real peers: curl --cacert, ffmpeg reading https://…/stream.mjpg, the http
// source with ca= and a token; bearer and basic credentials given as @FILE,
// public routes, the Host check against DNS rebinding, the lockout after
// repeated failures, plain HTTP on the HTTPS port and TLS on the plain port
// each told apart with one line on each side; credentials never printed.

import test, { type ExecutionContext } from 'ava'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { once } from 'node:events'
import https from 'node:https'
import http from 'node:http'
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { pipeline, stopSource } from '../../src/core/pipeline.js'
import { httpSink, type HttpSinkOptions } from '../../src/sinks/http.js'
import { httpSource } from '../../src/sources/http.js'
import { testsrc } from '../../src/sources/testsrc.js'
import type { ClientEvent } from '../../src/net/socket.js'
import type { Frame } from '../../src/core/frame.js'
import { MAX_FAILURES } from '../../src/net/http/auth.js'
import { withTimeout } from '../helpers/index.js'
import { Events } from '../helpers/links.js'
import { hasOpenssl, NO_OPENSSL, testPki, type TestPki } from '../helpers/tls.js'

const run = promisify(execFile)
const CURL = existsSync('/usr/bin/curl') ? '/usr/bin/curl' : undefined
const FFMPEG = existsSync('/usr/bin/ffmpeg') ? '/usr/bin/ffmpeg' : undefined
if (!hasOpenssl) console.warn(`skipping the HTTPS tests: ${NO_OPENSSL}`)
const tlsTest = hasOpenssl ? test : test.skip
if (!CURL) console.warn('skipping the curl HTTPS test: curl not found (apt-get install curl)')
if (!FFMPEG) console.warn('skipping the ffmpeg HTTPS test: /usr/bin/ffmpeg not found (apt-get install ffmpeg)')

interface Served {
  url: string
  port: number
  events: Events<ClientEvent>
  warnings: string[]
}

/** testsrc (JPEG) ! http with `options`, listening; stopped at teardown. */
async function serve(t: ExecutionContext, options: Partial<HttpSinkOptions>): Promise<Served> {
  const source = testsrc({ width: 160, height: 120, fps: 20, format: 'jpeg' })
  const sink = httpSink({ port: 0, ...options })
  const events = new Events<ClientEvent>(sink, 'client')
  const warnings: string[] = []
  sink.on('warning', (w: Error) => warnings.push(w.message))
  const done = pipeline(source, sink)
  done.catch(() => undefined)
  t.teardown(async () => {
    sink.release()
    stopSource(source)
    await withTimeout(done, 5000, 'sink end').catch(() => sink.destroy())
  })
  if (!sink.address()) await withTimeout(once(sink, 'listening'), 5000, 'listening')
  return { url: sink.url()!, port: sink.address()!.port, events, warnings }
}

/** GET with Node, trusting `ca`; resolves with status, headers and body. */
function get(
  url: string,
  options: { ca?: string; headers?: Record<string, string>; cert?: string; key?: string } = {},
): Promise<{ status: number; message: string; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const lib = url.startsWith('https:') ? https : http
  return new Promise((resolve, reject) => {
    const req = lib.get(
      url,
      {
        headers: options.headers,
        ca: options.ca ? readFileSync(options.ca) : undefined,
        cert: options.cert ? readFileSync(options.cert) : undefined,
        key: options.key ? readFileSync(options.key) : undefined,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = []
        // The stream never ends: one chunk of it is enough.
        if ((res.headers['content-type'] ?? '').startsWith('multipart/')) {
          res.once('data', (d: Buffer) => {
            res.destroy()
            resolve({ status: res.statusCode!, message: res.statusMessage ?? '', headers: res.headers, body: d })
          })
          return
        }
        res.on('data', (d: Buffer) => chunks.push(d))
        res.on('end', () =>
          resolve({ status: res.statusCode!, message: res.statusMessage ?? '', headers: res.headers, body: Buffer.concat(chunks) }),
        )
      },
    )
    req.on('error', reject)
  })
}

async function secrets(pki: TestPki): Promise<{ bearer: string; bearerFile: string; basic: string; basicFile: string }> {
  const bearer = 'bearer-' + pki.token
  const basic = 'ann:' + pki.token.slice(0, 20)
  const bearerFile = join(pki.dir, 'bearer')
  const basicFile = join(pki.dir, 'basic')
  await writeFile(bearerFile, bearer + '\n', { mode: 0o600 })
  await writeFile(basicFile, basic + '\n', { mode: 0o600 })
  return { bearer, bearerFile, basic, basicFile }
}

tlsTest('curl --cacert fetches a snapshot over HTTPS; the viewer URL is https', async (t) => {
  if (!CURL) return t.pass('curl not installed')
  const pki = await testPki(t)
  const s = await serve(t, { cert: pki.server.cert, key: pki.server.key })
  t.regex(s.url, /^https:\/\/127\.0\.0\.1:\d+\/$/)
  // The first frame may take a moment: ask until it is there (503 says "not yet").
  let status = ''
  let out = ''
  for (let i = 0; i < 50 && status !== '200'; i++) {
    const r = await run(CURL, [
      '-sS',
      '--cacert',
      pki.server.cert,
      '-o',
      join(pki.dir, 'snap.jpg'),
      '-w',
      '%{http_code} %{content_type}',
      s.url + 'snapshot.jpg',
    ])
    ;[status, out] = r.stdout.split(' ')
    if (status !== '200') await new Promise((r2) => setTimeout(r2, 100))
  }
  t.is(status, '200')
  t.is(out, 'image/jpeg')
  t.deepEqual([...readFileSync(join(pki.dir, 'snap.jpg')).subarray(0, 2)], [0xff, 0xd8])
  // Without the CA, curl refuses the self-signed certificate.
  const untrusted = await run(CURL, ['-sS', '-o', '/dev/null', s.url + 'stats']).then(
    () => undefined,
    (e: Error & { stderr: string }) => e.stderr,
  )
  t.regex(untrusted ?? '', /certificate/i)
})

tlsTest('ffmpeg reads https://…/stream.mjpg, checking the certificate and sending a bearer token', async (t) => {
  if (!FFMPEG) return t.pass('ffmpeg not installed')
  const pki = await testPki(t)
  const { bearer, bearerFile } = await secrets(pki)
  const s = await serve(t, { cert: pki.server.cert, key: pki.server.key, token: `@${bearerFile}` })
  const { stderr } = await withTimeout(
    run(FFMPEG, [
      '-hide_banner',
      '-loglevel',
      'error',
      '-ca_file',
      pki.server.cert,
      '-tls_verify',
      '1',
      '-headers',
      `Authorization: Bearer ${bearer}\r\n`,
      '-f',
      'mpjpeg',
      '-i',
      s.url + 'stream.mjpg',
      '-frames:v',
      '5',
      '-f',
      'null',
      '-',
    ]),
    30_000,
    'ffmpeg',
  )
  t.is(stderr.trim(), '')
  const joined = await s.events.find((e) => e.event === 'join', 'ffmpeg joins')
  t.truthy(joined)
  // Without the token: 401, and ffmpeg fails.
  const refused = await run(FFMPEG, [
    '-hide_banner',
    '-ca_file',
    pki.server.cert,
    '-tls_verify',
    '1',
    '-i',
    s.url + 'stream.mjpg',
    '-frames:v',
    '1',
    '-f',
    'null',
    '-',
  ]).then(
    () => '',
    (e: Error & { stderr: string }) => e.stderr,
  )
  t.regex(refused, /401/)
})

tlsTest('the http source reads the HTTPS stream with ca= and token=@FILE; without ca= it is one clear error', async (t) => {
  const pki = await testPki(t)
  const { bearerFile } = await secrets(pki)
  const s = await serve(t, { cert: pki.server.cert, key: pki.server.key, token: `@${bearerFile}` })
  const source = httpSource({ url: s.url + 'stream.mjpg', ca: pki.server.cert, token: `@${bearerFile}` })
  const got: Frame[] = []
  for await (const f of source as AsyncIterable<Frame>) {
    got.push(f)
    if (got.length === 3) stopSource(source)
  }
  t.true(got.length >= 3)
  t.is(got[0]!.format, 'jpeg')
  const untrusted = httpSource({ url: s.url + 'stream.mjpg', reconnect: false })
  const err = await withTimeout(
    (async () => {
      for await (const _ of untrusted as AsyncIterable<Frame>) void _
    })().then(
      () => undefined,
      (e: Error) => e,
    ),
    10_000,
    'untrusted',
  )
  t.regex(err?.message ?? '', /^http: 127\.0\.0\.1:\d+'s certificate is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\): give ca=/)
  const noToken = httpSource({ url: s.url + 'stream.mjpg', ca: pki.server.cert, reconnect: false })
  const e401 = await (async () => {
    for await (const _ of noToken as AsyncIterable<Frame>) void _
  })().then(
    () => undefined,
    (e: Error) => e,
  )
  t.regex(
    e401?.message ?? '',
    /answered 401 Unauthorized: the server requires credentials: give auth=@FILE \(user:password\) or token=@FILE$/,
  )
})

tlsTest('plain HTTP on the HTTPS port gets a 400 that says https; TLS on the plain port is named; one line each side', async (t) => {
  const pki = await testPki(t)
  const secure = await serve(t, { cert: pki.server.cert, key: pki.server.key })
  const plainUrl = secure.url.replace('https:', 'http:')
  const answer = await get(plainUrl + 'stats')
  t.is(answer.status, 400)
  t.is(answer.message, 'This Server Speaks HTTPS Only')
  t.is(answer.body.toString(), 'this server speaks HTTPS only: use https:// instead of http://\n')
  const e = await secure.events.find((x) => x.event === 'leave', 'refused')
  t.is(e.reason, 'refused: plain HTTP on this HTTPS port (the client should use https://)')

  const plain = await serve(t, {})
  const tlsToPlain = await get(plain.url.replace('http:', 'https:') + 'stats', { ca: pki.server.cert }).then(
    () => undefined,
    (x: Error) => x,
  )
  t.truthy(tlsToPlain)
  const e2 = await plain.events.find((x) => x.event === 'leave', 'refused')
  t.is(e2.reason, 'refused: it speaks TLS (https://) to this plain http port: give this server cert= and key=, or use http://')
  // And the http source names it.
  const src = httpSource({ url: plain.url.replace('http:', 'https:') + 'stream.mjpg', ca: pki.server.cert, reconnect: false })
  const err = await (async () => {
    for await (const _ of src as AsyncIterable<Frame>) void _
  })().then(
    () => undefined,
    (x: Error) => x,
  )
  t.regex(err?.message ?? '', /does not speak TLS/)
})

tlsTest('mutual TLS on the viewer: a client certificate signed by ca= is required', async (t) => {
  const pki = await testPki(t)
  const s = await serve(t, { cert: pki.server.cert, key: pki.server.key, ca: pki.client.cert })
  const ok = await get(s.url + 'stats', { ca: pki.server.cert, cert: pki.client.cert, key: pki.client.key })
  t.is(ok.status, 200)
  const none = await get(s.url + 'stats', { ca: pki.server.cert })
  t.is(none.status, 403)
  t.is(none.message, 'Client Certificate Required')
  t.regex((await s.events.find((x) => x.event === 'leave', 'refused')).reason ?? '', /it sent no client certificate/)
})

test('bearer and basic credentials from files, public routes, and what is logged (never the secret)', async (t) => {
  if (!hasOpenssl) return t.pass(NO_OPENSSL)
  const pki = await testPki(t)
  const { bearer, bearerFile, basic, basicFile } = await secrets(pki)
  const s = await serve(t, { token: `@${bearerFile}`, auth: `@${basicFile}`, public: '/stats' })
  t.is((await get(s.url + 'stats')).status, 200, '/stats is public')
  const none = await get(s.url + 'snapshot.jpg')
  t.is(none.status, 401)
  t.is(none.headers['www-authenticate'], 'Basic realm="frame-pipe", charset="UTF-8", Bearer realm="frame-pipe"')
  t.is(s.warnings.length, 0, 'asking without credentials is not a failure')
  const stream = await get(s.url + 'stream.mjpg', { headers: { Authorization: `Bearer ${bearer}` } })
  t.is(stream.status, 200)
  const basicOk = await get(s.url + 'stats', { headers: { Authorization: 'Basic ' + Buffer.from(basic).toString('base64') } })
  t.is(basicOk.status, 200)
  const wrong = await get(s.url + 'stream.mjpg', { headers: { Authorization: 'Bearer not-the-token' } })
  t.is(wrong.status, 401)
  t.is(s.warnings.length, 1)
  t.regex(
    s.warnings[0]!,
    /^http: failed login from 127\.0\.0\.1 for \/stream\.mjpg \(wrong bearer token\); 9 more and it is locked out for 60 s$/,
  )
  for (const w of s.warnings) {
    t.false(w.includes(bearer) || w.includes(basic) || w.includes('not-the-token'))
  }
})

test('repeated wrong credentials lock the address out (429) for a while; the right ones then wait too', async (t) => {
  const s = await serve(t, { token: 'the-right-token-0123456789' })
  for (let i = 0; i < MAX_FAILURES; i++) {
    t.is((await get(s.url + 'stats', { headers: { Authorization: `Bearer guess-${i}` } })).status, 401)
  }
  const locked = await get(s.url + 'stats', { headers: { Authorization: 'Bearer the-right-token-0123456789' } })
  t.is(locked.status, 429)
  t.is(locked.headers['retry-after'], '60')
  t.regex(s.warnings.at(-1)!, /10 in a row, locked out for 60 s \(429\)$/)
})

test('the Host check: a rebinding name is refused (403); IP addresses, localhost and allowedHosts pass', async (t) => {
  const s = await serve(t, { allowedHosts: 'camera.example' })
  const at = (host: string) => get(s.url + 'stats', { headers: { Host: host } })
  t.is((await at(`127.0.0.1:${s.port}`)).status, 200)
  t.is((await at(`localhost:${s.port}`)).status, 200)
  t.is((await at(`viewer.localhost:${s.port}`)).status, 200)
  t.is((await at(`camera.example:${s.port}`)).status, 200)
  const evil = await at(`rebind.attacker.example:${s.port}`)
  t.is(evil.status, 403)
  t.regex(
    evil.body.toString(),
    /^Host 'rebind\.attacker\.example' is not served here: start the server with allowedHosts=rebind\.attacker\.example/,
  )
  t.regex(s.warnings[0]!, /DNS rebinding guard/)
  const any = await serve(t, { allowedHosts: '*' })
  t.is((await get(any.url + 'stats', { headers: { Host: 'whatever.example' } })).status, 200)
})

test('the http source: credentials in url= are never printed, and auth= is not sent to another origin', async (t) => {
  const seen: Array<string | undefined> = []
  const other = http.createServer((req, res) => {
    seen.push(req.headers.authorization)
    res.writeHead(404)
    res.end()
  })
  other.listen(0, '127.0.0.1')
  await once(other, 'listening')
  t.teardown(() => other.close())
  const otherPort = (other.address() as { port: number }).port
  const first = http.createServer((req, res) => {
    seen.push(req.headers.authorization)
    res.writeHead(302, { Location: `http://127.0.0.1:${otherPort}/elsewhere` })
    res.end()
  })
  first.listen(0, '127.0.0.1')
  await once(first, 'listening')
  t.teardown(() => first.close())
  const port = (first.address() as { port: number }).port
  const warnings: string[] = []
  const source = httpSource({ url: `http://ann:s3cr3t-pw@127.0.0.1:${port}/x`, reconnect: false })
  source.on('warning', (w: Error) => warnings.push(w.message))
  const err = await (async () => {
    for await (const _ of source as AsyncIterable<Frame>) void _
  })().then(
    () => undefined,
    (e: Error) => e,
  )
  t.regex(err?.message ?? '', /answered 404/)
  t.false(err!.message.includes('s3cr3t-pw'))
  t.is(seen[0], 'Basic ' + Buffer.from('ann:s3cr3t-pw').toString('base64'), 'sent to the URL given')
  t.is(seen[1], undefined, 'not sent where it redirected')
  t.regex(warnings[0] ?? '', /the password in url= is on the command line/)
  const bad = t.throws(() => httpSource({ url: 'ftp://ann:s3cr3t-pw@127.0.0.1/' }))
  t.is(bad.message, "http: expected an http:// or https:// URL for url but received 'ftp://***@127.0.0.1/'")
})
