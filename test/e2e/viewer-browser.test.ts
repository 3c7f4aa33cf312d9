// The viewer page in a real browser: Debian's chromium, driven by
// playwright-core. The page must show the live picture (it changes) and its
// numbers (they move); a screenshot is kept in test-artifacts/viewer.png.

import test from 'ava'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { pipeline, stopSource } from '../../src/core/pipeline.js'
import { httpSink } from '../../src/sinks/http.js'
import { testsrc } from '../../src/sources/testsrc.js'
import { tempDir, withTimeout } from '../helpers/index.js'

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
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url))

const ok = existsSync(CHROMIUM)
if (!ok) console.warn(`skipping viewer-browser test: ${CHROMIUM} not found (apt-get install chromium); .ci/run installs it`)
const browserTest = ok ? test : test.skip

browserTest('the viewer page shows the live picture and its numbers move', async (t) => {
  const source = testsrc({ width: 640, height: 480, fps: 15, format: 'jpeg' })
  const sink = httpSink({ port: 0 })
  const done = pipeline(source, sink)
  t.teardown(async () => {
    stopSource(source)
    await withTimeout(done, 5000, 'sink end').catch((err: Error) => t.log(err.message))
  })
  if (!sink.address()) await withTimeout(once(sink, 'listening'), 5000, 'listening')

  const profile = await tempDir('frame-pipe-chromium-')
  t.teardown(profile.cleanup)
  const context = await chromium.launchPersistentContext(profile.dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1040, height: 600 },
    timeout: 30_000,
  })
  t.teardown(() => context.close())
  const page = context.pages()[0] ?? (await context.newPage())
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`)
  })

  await page.goto(sink.url()!, { timeout: 15_000 })
  // The picture: the MJPEG <img> has decoded a frame at the source's size.
  // (Page-side code is given as text: this project compiles without the DOM library.)
  await page.waitForFunction(`document.getElementById('view').naturalWidth === 640`, undefined, { timeout: 15_000 })
  // The numbers: fps above zero, one viewer, and the frame number moving.
  await page.waitForFunction(
    `Number(document.getElementById('fps').textContent) > 0 && document.getElementById('viewers').textContent === '1'`,
    undefined,
    { timeout: 15_000 },
  )
  const seq1 = Number(await page.textContent('#seq'))
  await page.waitForFunction(`Number(document.getElementById('seq').textContent) > ${seq1}`, undefined, { timeout: 15_000 })
  const seq2 = Number(await page.textContent('#seq'))
  t.true(seq2 > seq1, `frame number moved ${seq1} → ${seq2}`)
  t.is(await page.textContent('#resolution'), '640 × 480')
  t.regex((await page.textContent('#rate'))!, /^\d+(\.\d+)? (B|KiB|MiB)\/s$/)
  t.regex((await page.textContent('#bitrate'))!, /^\d+\.\d\d Mbit\/s$/)
  t.regex((await page.textContent('#latency'))!, /^\d+\.\d ms \(max \d+\.\d\)$/)
  t.is(await page.getAttribute('#status', 'data-state'), 'live')

  // The picture changes: the test pattern draws its frame number, so two shots of the <img> differ.
  const img = page.locator('#view')
  const shot1 = await img.screenshot()
  let shot2 = shot1
  for (let i = 0; i < 50 && shot2.equals(shot1); i++) {
    await page.waitForTimeout(100)
    shot2 = await img.screenshot()
  }
  t.false(shot2.equals(shot1), 'the picture changed')

  await mkdir(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: ARTIFACTS + 'viewer.png' })
  t.log(`screenshot: ${ARTIFACTS}viewer.png`)
  t.deepEqual(problems, [])
})
