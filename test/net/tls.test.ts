// TLS on the TCP stages, over real loopback sockets, with certificates made
// at test time (test/helpers/tls.ts): frames both ways, openssl s_client as a
// foreign client, and every mismatch (plain to TLS, TLS to plain, a
// certificate nobody trusts, a wrong name, a missing client certificate)
// refused with one line on each side.

import test from 'ava'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { join } from 'node:path'
import { writeFile } from 'node:fs/promises'
import { InvalidOptionError } from '../../src/core/errors.js'
import { pipeline } from '../../src/core/pipeline.js'
import { tcpServer as tcpServerSink } from '../../src/sinks/tcp-server.js'
import { tcpClient as tcpClientSource } from '../../src/sources/tcp-client.js'
import { cmdServer } from '../../src/sinks/cmd-server.js'
import { cmdClient } from '../../src/sources/cmd-client.js'
import { prefix } from '../../src/transforms/prefix.js'
import type { ClientEvent } from '../../src/net/socket.js'
import type { Frame } from '../../src/core/frame.js'
import { AUTH_MAGIC, MSG_REFUSE, REFUSAL } from '../../src/net/auth.js'
import { fromItems, withTimeout } from '../helpers/index.js'
import { jpegFrames, keep } from '../helpers/seeds.js'
import { Events, frames, refusal, sendLink, serveLink } from '../helpers/links.js'
import { hasOpenssl, NO_OPENSSL, testPki } from '../helpers/tls.js'

if (!hasOpenssl) console.warn(`skipping the TLS tests: ${NO_OPENSSL}`)
const tlsTest = hasOpenssl ? test : test.skip

tlsTest('frames cross TLS both ways: tcp-server sink to tcp-client source, tcp-client sink to tcp-server source', async (t) => {
  const pki = await testPki(t)
  const server = { cert: pki.server.cert, key: pki.server.key }
  const served = await serveLink(t, server, { ca: pki.server.cert }, 5)
  t.is(served.error, undefined)
  t.deepEqual(
    served.got.map((f) => f.data),
    frames(5).map((f) => f.data),
  )
  t.like(served.events.list[0], { event: 'join', reason: 'TLS' })

  const sent = await sendLink(t, server, { ca: pki.server.cert }, 5)
  t.is(sent.error, undefined)
  const got = await withTimeout(sent.received, 5000, 'received')
  t.deepEqual(
    got.map((f) => f.seq),
    [0, 1, 2, 3, 4],
  )
  t.like(sent.events.list[0], { event: 'join', reason: 'TLS' })
})

tlsTest('openssl s_client verifies the certificate of a TLS tcp-server and reads the native stream', async (t) => {
  const pki = await testPki(t)
  const sink = tcpServerSink({ port: 0, wait: 1, cert: pki.server.cert, key: pki.server.key })
  const done = pipeline(fromItems(frames(3)), prefix({ header: 'native' }), sink)
  done.catch(() => undefined)
  t.teardown(() => {
    sink.destroy()
  })
  if (!sink.address()) await once(sink, 'listening')
  const port = sink.address()!.port
  const child = spawn(
    'openssl',
    ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', pki.server.cert, '-verify_return_error', '-verify_ip', '127.0.0.1', '-quiet'],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  )
  t.teardown(() => child.kill())
  const chunks: Buffer[] = []
  child.stdout.on('data', (d: Buffer) => chunks.push(d))
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  // The sink ends after 3 frames; s_client then sees the close and exits.
  const [code] = (await withTimeout(once(child, 'close'), 10_000, 's_client')) as [number]
  const bytes = Buffer.concat(chunks)
  t.is(code, 0, stderr)
  t.regex(stderr, /verify return:1/)
  t.is(bytes.toString('latin1', 0, 4), 'FRMP', 'the native header, decrypted')
  t.is(bytes.length, 3 * (40 + 2000))
})

tlsTest('plain to TLS: a plain client is turned away with one line on each side', async (t) => {
  const pki = await testPki(t)
  const server = { cert: pki.server.cert, key: pki.server.key, handshakeTimeout: 500 }
  // A plain sender speaks first: refused at its first byte.
  const sent = await sendLink(t, server, { reconnect: false })
  t.regex(sent.error?.message ?? '', /^tcp-client: connection to 127\.0\.0\.1:\d+ failed: 127\.0\.0\.1:\d+ speaks TLS only: give tls=true/)
  t.regex(await refusal(sent.events), /^it speaks plain TCP to this TLS port \(first byte 46\): give the client tls=true/)
  // A plain viewer waits for data: refused when handshakeTimeout passes.
  const served = await serveLink(t, server, {})
  t.regex(served.error?.message ?? '', /speaks TLS only: give tls=true \(and ca= for a self-signed certificate\)$/)
  t.regex(await refusal(served.events), /^no TLS handshake within 500ms/)
})

tlsTest('TLS to plain: a TLS client of a plain server is turned away with one line on each side', async (t) => {
  const pki = await testPki(t)
  const served = await serveLink(t, {}, { ca: pki.server.cert })
  t.regex(served.error?.message ?? '', /^tcp-client: 127\.0\.0\.1:\d+ does not speak TLS \(its answer is not a TLS handshake\)/)
  t.is(await refusal(served.events), 'it speaks TLS to this plain port: give this server cert= and key=, or drop tls=/ca= on the client')
  const sent = await sendLink(t, {}, { tls: true, ca: pki.server.cert, reconnect: false })
  t.regex(sent.error?.message ?? '', /does not speak TLS/)
  t.is(await refusal(sent.events), 'it speaks TLS to this plain port: give this server cert= and key=, or drop tls=/ca= on the client')
})

tlsTest('a certificate the client does not trust, or for another name: one line on each side', async (t) => {
  const pki = await testPki(t)
  const server = { cert: pki.server.cert, key: pki.server.key }
  const stranger = await serveLink(t, server, { ca: pki.other.cert })
  t.regex(stranger.error?.message ?? '', /127\.0\.0\.1:\d+'s certificate is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\): give ca=/)
  t.regex(
    await refusal(stranger.events),
    /^closed the connection during the TLS handshake \(does the client trust this server's certificate\? give it ca=\)/,
  )

  const name = await serveLink(t, server, { ca: pki.server.cert, servername: 'camera.example' })
  t.regex(name.error?.message ?? '', /certificate is not for 'camera\.example'.*give servername= one of its names/)

  // The system's CAs know nothing of a self-signed certificate.
  const system = await serveLink(t, server, { tls: true })
  t.regex(system.error?.message ?? '', /certificate is not trusted/)
})

tlsTest('mutual TLS: ca= on the server admits only clients with a certificate it signed', async (t) => {
  const pki = await testPki(t)
  const server = { cert: pki.server.cert, key: pki.server.key, ca: pki.client.cert }
  const ok = await serveLink(t, server, { ca: pki.server.cert, cert: pki.client.cert, key: pki.client.key })
  t.is(ok.error, undefined)
  t.is(ok.got.length, 3)
  t.like(ok.events.list[0], { event: 'join', reason: 'TLS, client certificate' })

  // The server checks the certificate once the handshake is done, and says why it refuses over TLS.
  const anonymous = await serveLink(t, server, { ca: pki.server.cert })
  t.regex(anonymous.error?.message ?? '', /127\.0\.0\.1:\d+ requires a client certificate signed by its ca=: give cert= and key=/)
  t.regex(await refusal(anonymous.events), /^it sent no client certificate, and this server requires one \(ca=\)/)

  const stranger = await serveLink(t, server, { ca: pki.server.cert, cert: pki.other.cert, key: pki.other.key })
  t.regex(stranger.error?.message ?? '', /requires a client certificate signed by its ca=/)
  t.regex(await refusal(stranger.events), /^its client certificate is not signed by this server's ca= \(DEPTH_ZERO_SELF_SIGNED_CERT\)/)
})

tlsTest('cmd-server and cmd-client over TLS; a plain cmd-client is told the server speaks TLS only', async (t) => {
  const pki = await testPki(t)
  const jpegs = await jpegFrames(3)
  const sink = cmdServer({ port: 0, cert: pki.server.cert, key: pki.server.key })
  const events = new Events<ClientEvent>(sink, 'client')
  t.teardown(() => {
    sink.destroy()
  })
  if (!sink.address()) await once(sink, 'listening')
  for (const f of jpegs) sink.write(f)
  const port = sink.address()!.port
  const got: Frame[] = []
  await withTimeout(
    pipeline(cmdClient({ port, mode: 'snapshot', every: 0, count: 2, ca: pki.server.cert }), keep(got)),
    10_000,
    'cmd-client over TLS',
  )
  t.is(got.length, 2)
  t.true(got[0]!.data.equals(jpegs[2]!.data), 'the newest image')
  const plain = await pipeline(cmdClient({ port, mode: 'snapshot', every: 0, count: 1 }), keep([])).then(
    () => undefined,
    (e: Error) => e,
  )
  t.regex(plain?.message ?? '', /speaks TLS only: give tls=true/)
  t.regex(await refusal(events), /^it speaks plain TCP to this TLS port/)
})

tlsTest('the refusal a plain client reads: FPAU, version 1, REFUSE, "TLS required"', async (t) => {
  const pki = await testPki(t)
  const sink = tcpServerSink({ port: 0, cert: pki.server.cert, key: pki.server.key })
  t.teardown(() => {
    sink.destroy()
  })
  if (!sink.address()) await once(sink, 'listening')
  const socket = net.connect(sink.address()!.port, '127.0.0.1', () => socket.write('hello'))
  const chunks: Buffer[] = []
  socket.on('data', (d: Buffer) => chunks.push(d))
  await withTimeout(once(socket, 'close'), 5000, 'server closes')
  const answer = Buffer.concat(chunks)
  t.is(answer.length, 40)
  t.is(answer.readUInt32BE(0), AUTH_MAGIC)
  t.is(answer[4], 1)
  t.is(answer[5], MSG_REFUSE)
  t.is(answer[6], REFUSAL.tlsRequired)
})

tlsTest('TLS options are checked when the stage is made: one line naming the option, never a passphrase', async (t) => {
  const pki = await testPki(t)
  const bad = (o: Record<string, unknown>) => t.throws(() => tcpServerSink({ port: 0, ...o }), { instanceOf: InvalidOptionError })
  t.regex(bad({ cert: pki.server.cert }).message, /cert= is given without key=/)
  t.regex(bad({ key: pki.server.key }).message, /key= is given without cert=/)
  t.regex(bad({ cert: join(pki.dir, 'nope.pem'), key: pki.server.key }).message, /cert=.*nope\.pem: cannot read the file \(no such file\)/)
  t.regex(bad({ cert: pki.server.cert, key: pki.other.key }).message, /key= is not the private key of cert=/)
  t.regex(bad({ ca: pki.server.cert }).message, /ca= asks clients for TLS certificates: the server needs cert= and key=/)
  const notPem = join(pki.dir, 'not.pem')
  await writeFile(notPem, 'hello')
  t.regex(bad({ cert: notPem, key: pki.server.key }).message, /not a PEM file with a certificate/)
  const client = t.throws(() => tcpClientSource({ port: 1, servername: 'x' }), { instanceOf: InvalidOptionError })
  t.regex(client.message, /servername= is for TLS, which is off: give tls=true/)
  const pass = t.throws(() => tcpClientSource({ port: 1, tls: true, keyPassphrase: 'not-to-be-printed' }))
  t.false(pass.message.includes('not-to-be-printed'))
})
