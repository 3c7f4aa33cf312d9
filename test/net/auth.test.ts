// The token check between two frame-pipes (src/net/auth.ts), over real
// loopback sockets: frames pass with the right token, plain and over TLS, on
// tcp and snapshot; a wrong token, no token, a token the server does not
// expect, an unknown name and silence are each refused with one line on each
// side; the wire messages are what the docs say; a token never shows in an
// error; a token on a seed wire is refused before anything starts.

import test from 'ava'
import { once } from 'node:events'
import net from 'node:net'
import { createHmac } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { launch, PipelineSyntaxError, planDescription } from '../../src/launch.js'
import { InvalidOptionError } from '../../src/core/errors.js'
import { makeFrame } from '../../src/core/frame.js'
import { tcpServer as tcpServerSink } from '../../src/sinks/tcp-server.js'
import { snapshotServer } from '../../src/sinks/snapshot-server.js'
import { requestSnapshot, snapshotClient } from '../../src/sources/snapshot-client.js'
import { pipeline } from '../../src/core/pipeline.js'
import type { ClientEvent } from '../../src/net/socket.js'
import { AUTH_MAGIC, MSG_HELLO, MSG_PROOF, MSG_REFUSE, REFUSAL } from '../../src/net/auth.js'
import { tempDir, withTimeout } from '../helpers/index.js'
import { keep } from '../helpers/seeds.js'
import { Events, frames, refusal, sendLink, serveLink } from '../helpers/links.js'
import { hasOpenssl, testPki } from '../helpers/tls.js'

const TOKEN = 'correct-horse-battery-staple-42'
const OTHER = 'another-token-of-enough-length'

test('the right token: frames flow both ways, and the server logs how the client proved itself', async (t) => {
  const served = await serveLink(t, { token: TOKEN }, { token: TOKEN }, 4)
  t.is(served.error, undefined)
  t.deepEqual(
    served.got.map((f) => f.data),
    frames(4).map((f) => f.data),
  )
  t.like(served.events.list[0], { event: 'join', reason: 'token' })
  const sent = await sendLink(t, { token: TOKEN }, { token: TOKEN }, 4)
  t.is(sent.error, undefined)
  t.is((await withTimeout(sent.received, 5000, 'received')).length, 4)
})

test('a wrong token: refused with one line on each side, in both directions', async (t) => {
  const served = await serveLink(t, { token: TOKEN }, { token: OTHER })
  t.regex(
    served.error?.message ?? '',
    /^tcp-client: wrong token: 127\.0\.0\.1:\d+ holds a different one \(its proof does not match ours\)$/,
  )
  t.is(await refusal(served.events), 'wrong token (its proof does not match ours)')
  t.is(served.got.length, 0)
  const sent = await sendLink(t, { token: TOKEN }, { token: OTHER })
  t.regex(sent.error?.message ?? '', /wrong token: 127\.0\.0\.1:\d+ holds a different one/)
  t.is(await refusal(sent.events), 'wrong token (its proof does not match ours)')
  t.is(sent.got.length, 0, 'not one frame reached the server')
})

test('no token on the client: refused with one line on each side, in both directions', async (t) => {
  const served = await serveLink(t, { token: TOKEN }, {})
  t.regex(served.error?.message ?? '', /127\.0\.0\.1:\d+ requires a token: give token= \(the same as the server's; @FILE or env:NAME\)$/)
  t.is(await refusal(served.events), 'no token: the client runs without token= (give it the same token as this server)')
  const sent = await sendLink(t, { token: TOKEN }, { reconnect: false })
  t.regex(sent.error?.message ?? '', /requires a token: give token=/)
  t.regex(await refusal(sent.events), /^no token: (it sent data without the token check|the client runs without token=)/)
  t.is(sent.got.length, 0, 'not one frame reached the server')
})

test('a token the server does not check: refused with one line on each side', async (t) => {
  // A server source reads the client's HELLO and answers that it has no token.
  const sent = await sendLink(t, {}, { token: TOKEN })
  t.regex(
    sent.error?.message ?? '',
    /^tcp-client: 127\.0\.0\.1:\d+ does not check tokens \(it runs without token=\): give it the same token, or drop token= here$/,
  )
  t.is(
    await refusal(sent.events),
    'it asks for a token check, but this server has no token=: give it the same token, or drop token= on the client',
  )
  // A server sink sends its stream at once: the client sees a frame header where the check belongs.
  const served = await serveLink(t, {}, { token: TOKEN })
  t.regex(served.error?.message ?? '', /does not check tokens/)
  t.is(
    await refusal(served.events),
    'it asks for a token check, but this server has no token=: give it the same token, or drop token= on the client',
  )
})

test('per-client tokens: a name picks its line of tokens=; an unknown name or the wrong line is refused', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const file = join(dir, 'tokens')
  await writeFile(file, `# name:token\ncam1:${TOKEN}\ncam2:${OTHER}\n`, { mode: 0o600 })
  const server = { tokens: `@${file}` }
  const ok = await serveLink(t, server, { token: OTHER, tokenName: 'cam2' })
  t.is(ok.error, undefined)
  t.like(ok.events.list[0], { event: 'join', reason: "token 'cam2'" })
  const unknown = await serveLink(t, server, { token: TOKEN, tokenName: 'cam9' })
  t.regex(unknown.error?.message ?? '', /127\.0\.0\.1:\d+ has no token named 'cam9' in its tokens=/)
  t.is(await refusal(unknown.events), "no token named 'cam9' in tokens=")
  const swapped = await serveLink(t, server, { token: TOKEN, tokenName: 'cam2' })
  t.regex(swapped.error?.message ?? '', /wrong token/)
  t.is(await refusal(swapped.events), "wrong token for 'cam2' (its proof does not match ours)")
  const nameless = await serveLink(t, server, { token: TOKEN })
  t.is(await refusal(nameless.events), 'no token name given, and this server has no shared token=')
  t.truthy(nameless.error)
})

test('a client that says nothing is refused after handshakeTimeout, and told so', async (t) => {
  const sink = tcpServerSink({ port: 0, token: TOKEN, handshakeTimeout: 300 })
  const events = new Events<ClientEvent>(sink, 'client')
  t.teardown(() => {
    sink.destroy()
  })
  if (!sink.address()) await once(sink, 'listening')
  const socket = net.connect(sink.address()!.port, '127.0.0.1')
  const chunks: Buffer[] = []
  socket.on('data', (d: Buffer) => chunks.push(d))
  await withTimeout(once(socket, 'close'), 5000, 'server closes')
  t.regex(await refusal(events), /^no token check within 300ms \(it sent nothing; a client without token=\?\)$/)
  const bytes = Buffer.concat(chunks)
  // The server's HELLO, then its REFUSE.
  t.is(bytes.length, 80)
  t.is(bytes.readUInt32BE(0), AUTH_MAGIC)
  t.is(bytes[5], MSG_HELLO)
  t.is(bytes[6], 1, 'role: server')
  t.is(bytes.readUInt32BE(40), AUTH_MAGIC)
  t.is(bytes[45], MSG_REFUSE)
  t.is(bytes[46], REFUSAL.timeout)
})

test('the wire: HELLO and PROOF as documented; a proof recorded from one exchange is refused in the next', async (t) => {
  const sink = tcpServerSink({ port: 0, token: TOKEN })
  const events = new Events<ClientEvent>(sink, 'client')
  t.teardown(() => {
    sink.destroy()
  })
  if (!sink.address()) await once(sink, 'listening')
  const port = sink.address()!.port
  const message = (type: number, body: Buffer) => {
    const m = Buffer.alloc(40)
    m.writeUInt32BE(AUTH_MAGIC, 0)
    m[4] = 1
    m[5] = type
    body.copy(m, 8)
    return m
  }
  const mac = (role: string, c: Buffer, s: Buffer) =>
    createHmac('sha256', TOKEN).update(`frame-pipe auth v1 ${role}\0`).update(c).update(s).update(Buffer.of(0)).digest()
  const clientNonce = Buffer.alloc(32, 7)

  // A hand-written client: HELLO, then PROOF once the server's HELLO is in.
  const socket = net.connect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.write(message(MSG_HELLO, clientNonce))
  let got = Buffer.alloc(0)
  let proof: Buffer | undefined
  const serverProof = new Promise<void>((resolve) =>
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d])
      if (!proof && got.length >= 40) {
        proof = mac('client', clientNonce, got.subarray(8, 40))
        socket.write(message(MSG_PROOF, proof))
      }
      if (got.length >= 80) resolve()
    }),
  )
  await withTimeout(serverProof, 5000, "the server's PROOF")
  t.is(got[5], MSG_HELLO)
  t.is(got[6], 1, 'role: server')
  t.is(got[45], MSG_PROOF)
  t.deepEqual(got.subarray(48, 80), mac('server', clientNonce, got.subarray(8, 40)), "the server's proof, by the documented formula")
  t.like(await events.find((e) => e.event === 'join', 'join'), { reason: 'token' })

  // The same HELLO and PROOF again: the server's nonce is new, so the recorded proof is worthless.
  const replay = net.connect(port, '127.0.0.1')
  t.teardown(() => replay.destroy())
  replay.write(Buffer.concat([message(MSG_HELLO, clientNonce), message(MSG_PROOF, proof!)]))
  t.is(await refusal(events), 'wrong token (its proof does not match ours)')
})

test('snapshot-server and snapshot-client with a token; requestSnapshot too; no token is refused', async (t) => {
  const sink = snapshotServer({ port: 0, token: TOKEN })
  const events = new Events<ClientEvent>(sink, 'client')
  t.teardown(() => {
    sink.destroy()
  })
  if (!sink.address()) await once(sink, 'listening')
  const port = sink.address()!.port
  const frame = makeFrame(frames(1)[0]!.data, { seq: 9 })
  sink.write(frame)
  const got: unknown[] = []
  await withTimeout(pipeline(snapshotClient({ port, every: 0, count: 2, token: TOKEN }), keep(got)), 5000, 'snapshot-client')
  t.is(got.length, 2)
  t.is((await requestSnapshot({ port, token: TOKEN })).seq, 9)
  const refused = await requestSnapshot({ port }).then(
    () => undefined,
    (e: Error) => e,
  )
  t.regex(refused?.message ?? '', /requires a token: give token=/)
  // The client asks first ('G'), so the server sees data where the check belongs.
  t.regex(await refusal(events), /^no token: it sent data without the token check \(first bytes 47 /)
})

test('token and TLS together: the check runs inside TLS, bound to the TLS session', async (t) => {
  if (!hasOpenssl) return t.pass('openssl is not installed: no certificates for the TLS half')
  const pki = await testPki(t)
  const served = await serveLink(
    t,
    { cert: pki.server.cert, key: pki.server.key, token: `@${pki.tokenFile}` },
    { ca: pki.server.cert, token: `@${pki.tokenFile}` },
  )
  t.is(served.error, undefined)
  t.is(served.got.length, 3)
  t.like(served.events.list[0], { event: 'join', reason: 'TLS, token' })
  const wrong = await serveLink(t, { cert: pki.server.cert, key: pki.server.key, token: TOKEN }, { ca: pki.server.cert, token: OTHER })
  t.regex(wrong.error?.message ?? '', /wrong token/)
  t.is(await refusal(wrong.events), 'wrong token (its proof does not match ours)')
})

test('tokens are checked without ever being printed; a short one is refused', (t) => {
  const short = t.throws(() => tcpServerSink({ port: 0, token: 'hunter2' }), { instanceOf: InvalidOptionError })
  t.is(short.message, 'tcp-server: token=: the token has 7 characters; use at least 16, e.g. a file made by `openssl rand -base64 24`')
  t.false(short.message.includes('hunter2'))
  const name = t.throws(() => tcpServerSink({ port: 0, tokens: 'no colon here at all' }))
  t.is(name.message, "tcp-server: tokens= line 1: expected 'name:token'")
  t.throws(() => tcpServerSink({ port: 0, tokens: 'cam1:short' }), { message: /tokens= line 1: the token has 5 characters/ })
})

test('a token on a seed wire is refused before anything starts, with a clear message', (t) => {
  const seed = t.throws(() => planDescription(`testsrc ! jpeg ! prefix header=u32be ! tcp-server port=0 token=${TOKEN}`), {
    instanceOf: PipelineSyntaxError,
  })
  t.regex(
    seed.message,
    /^tcp-server: token= needs frame-pipe's native wire, but prefix has header=u32be, a seed wire whose peers cannot answer a token check/,
  )
  t.false(seed.message.includes(TOKEN))
  const seedIn = t.throws(() => planDescription(`tcp-client port=9 token=${TOKEN} ! unprefix header=ii ! null`))
  t.regex(seedIn.message, /unprefix has header=ii, a seed wire/)
  t.notThrows(() => planDescription(`testsrc ! jpeg ! prefix header=native ! tcp-server port=0 token=${TOKEN}`))
  t.notThrows(() => planDescription(`tcp-client port=9 token=${TOKEN} ! unprefix header=auto ! null`))
  const cmd = t.throws(() => planDescription(`testsrc ! jpeg ! cmd-server token=${TOKEN}`))
  t.regex(
    cmd.message,
    /cmd-server has no option 'token': cmd-server speaks seed 003's command protocol, which cannot carry a token; .*TLS with client certificates/,
  )
  const reg = t.throws(() => planDescription(`testsrc ! jpeg ! reg-server cert=x.pem`))
  t.regex(reg.message, /reg-server sends its frames over UDP, which TLS cannot wrap/)
  const udp = t.throws(() => launch(`udp-server proto=whole token=${TOKEN} ! null`), { instanceOf: InvalidOptionError })
  t.regex(udp.message, /token= signs frame-pipe's native datagrams; proto=whole is seed 000's wire, which cannot carry a signature/)
})
