// The viewer page over HTTPS in a real browser (Debian's chromium through
// playwright-core), with basic auth. The test certificate is made at test time
// and trusted the way a user tries it without installing a CA:
// --ignore-certificate-errors-spki-list pins exactly this certificate's public
// key (its base64 SHA-256 SPKI hash, which `frame-pipe cert` prints). Headless
// Chromium honours it from the command line, unlike an NSS database, which
// needs certutil and a profile layout. A second browser without the pin must
// refuse the page: the pin is what makes it trusted, not a blanket
// ignore-all.

import test from 'ava'
import { existsSync } from 'node:fs'
import { once } from 'node:events'
import { chromium } from 'playwright-core'
import { pipeline, stopSource } from '../../src/core/pipeline.js'
import { httpSink } from '../../src/sinks/http.js'
import { testsrc } from '../../src/sources/testsrc.js'
import { tempDir, withTimeout } from '../helpers/index.js'
import { hasOpenssl, NO_OPENSSL, testPki } from '../helpers/tls.js'

const CHROMIUM = '/usr/bin/chromium'
// Without the background-networking flags Chromium phones home, and this machine's closed network refuses it.
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

const ok = existsSync(CHROMIUM) && hasOpenssl
if (!existsSync(CHROMIUM)) console.warn(`skipping viewer-https test: ${CHROMIUM} not found (apt-get install chromium)`)
else if (!hasOpenssl) console.warn(`skipping viewer-https test: ${NO_OPENSSL}`)
const browserTest = ok ? test : test.skip

browserTest('the viewer page over HTTPS with basic auth: live picture and numbers in Chromium', async (t) => {
  const pki = await testPki(t)
  const source = testsrc({ width: 320, height: 240, fps: 15, format: 'jpeg' })
  const sink = httpSink({ port: 0, cert: pki.server.cert, key: pki.server.key, auth: 'ann:' + pki.token })
  const done = pipeline(source, sink)
  t.teardown(async () => {
    stopSource(source)
    await withTimeout(done, 5000, 'sink end').catch((err: Error) => t.log(err.message))
  })
  if (!sink.address()) await withTimeout(once(sink, 'listening'), 5000, 'listening')
  const url = sink.url()!
  t.regex(url, /^https:/)

  const profile = await tempDir('frame-pipe-chromium-')
  t.teardown(profile.cleanup)
  const context = await chromium.launchPersistentContext(profile.dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...FLAGS, `--ignore-certificate-errors-spki-list=${pki.server.spki}`],
    viewport: { width: 1040, height: 600 },
    httpCredentials: { username: 'ann', password: pki.token },
    timeout: 30_000,
  })
  t.teardown(() => context.close())
  const page = context.pages()[0] ?? (await context.newPage())
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`)
  })
  const response = await page.goto(url, { timeout: 15_000 })
  t.is(response?.status(), 200)
  const security = await response!.securityDetails()
  t.regex(security?.protocol ?? '', /^TLS 1\.[23]$/)
  await page.waitForFunction(`document.getElementById('view').naturalWidth === 320`, undefined, { timeout: 15_000 })
  await page.waitForFunction(`Number(document.getElementById('fps').textContent) > 0`, undefined, { timeout: 15_000 })
  t.is(await page.getAttribute('#status', 'data-state'), 'live')
  t.deepEqual(problems, [])

  // Without the pin, the same browser refuses the self-signed certificate.
  const other = await tempDir('frame-pipe-chromium-')
  t.teardown(other.cleanup)
  const strict = await chromium.launchPersistentContext(other.dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    timeout: 30_000,
  })
  t.teardown(() => strict.close())
  const strictPage = strict.pages()[0] ?? (await strict.newPage())
  const refused = await strictPage.goto(url, { timeout: 15_000 }).then(
    () => '',
    (err: Error) => err.message,
  )
  t.regex(refused, /ERR_CERT_AUTHORITY_INVALID/)
})
