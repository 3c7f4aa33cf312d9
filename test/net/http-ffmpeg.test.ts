// Interop with the real ffmpeg, both ways: ffmpeg reads the http sink's
// /stream.mjpg, and the http source reads ffmpeg's own MJPEG-over-HTTP server.
// Debian's ffmpeg (5.x, CI installs it) and the npm-shipped static build (4.1)
// are both tried when present.

import test, { type ExecutionContext } from 'ava'
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { once } from 'node:events'
import { pipeline, stopSource } from '../../src/core/pipeline.js'
import { httpSink } from '../../src/sinks/http.js'
import { httpSource } from '../../src/sources/http.js'
import { testsrc } from '../../src/sources/testsrc.js'
import { jpegSize } from '../../src/wire/jpeg.js'
import type { Frame } from '../../src/core/frame.js'
import { freePort, tempDir, withTimeout } from '../helpers/index.js'

const run = promisify(execFile)

function npmTool(name: string): string | undefined {
  try {
    const path = (createRequire(import.meta.url)(name) as { path?: string }).path
    return path && existsSync(path) ? path : undefined
  } catch {
    // The optional dependency is not installed.
    return undefined
  }
}

const FFMPEGS = [
  ['Debian ffmpeg', existsSync('/usr/bin/ffmpeg') ? '/usr/bin/ffmpeg' : undefined],
  ['npm ffmpeg', npmTool('@ffmpeg-installer/ffmpeg')],
].filter((e): e is [string, string] => e[1] !== undefined)
const FFPROBE = existsSync('/usr/bin/ffprobe') ? '/usr/bin/ffprobe' : npmTool('@ffprobe-installer/ffprobe')

const ok = FFMPEGS.length > 0 && FFPROBE !== undefined
if (!ok)
  console.warn(
    'skipping http-ffmpeg tests: ffmpeg/ffprobe not found (apt-get install ffmpeg; npm ci installs the @ffmpeg-installer/@ffprobe-installer devDependencies)',
  )
const toolTest = ok ? test : test.skip

async function startSink(t: ExecutionContext): Promise<string> {
  const source = testsrc({ width: 320, height: 240, fps: 30, format: 'jpeg' })
  const sink = httpSink({ port: 0 })
  const done = pipeline(source, sink)
  t.teardown(async () => {
    stopSource(source)
    await withTimeout(done, 5000, 'sink end').catch((err: Error) => t.log(err.message))
  })
  if (!sink.address()) await withTimeout(once(sink, 'listening'), 5000, 'listening')
  return sink.url()! + 'stream.mjpg'
}

for (const [label, ffmpeg] of FFMPEGS.length > 0 ? FFMPEGS : [['ffmpeg', 'ffmpeg'] as [string, string]]) {
  toolTest(`${label} reads /stream.mjpg: 20 frames that decode, at the source's size`, async (t) => {
    const url = await startSink(t)
    const { dir, cleanup } = await tempDir()
    t.teardown(cleanup)
    const out = join(dir, 'copy.mjpg')
    // Copy 20 parts untouched, then count and decode them.
    await run(ffmpeg, ['-nostdin', '-v', 'error', '-i', url, '-frames:v', '20', '-c:v', 'copy', '-f', 'mjpeg', '-y', out], {
      timeout: 20_000,
    })
    const { stdout } = await run(
      FFPROBE!,
      ['-v', 'error', '-count_frames', '-show_entries', 'stream=nb_read_frames,width,height,codec_name', '-of', 'json', out],
      { timeout: 20_000 },
    )
    const stream = (JSON.parse(stdout) as { streams: Array<Record<string, string | number>> }).streams[0]!
    t.like(stream, { codec_name: 'mjpeg', width: 320, height: 240, nb_read_frames: '20' })
    const decoded = await run(ffmpeg, ['-nostdin', '-v', 'error', '-i', out, '-f', 'null', '-'], { timeout: 20_000 })
    t.is((decoded.stdout + decoded.stderr).trim(), '', 'every frame decodes cleanly')
  })

  toolTest(`the http source reads ${label}'s MJPEG server (-f mpjpeg -listen 1)`, async (t) => {
    const port = await freePort()
    const child = spawn(
      ffmpeg,
      [
        '-nostdin',
        '-v',
        'error',
        '-re',
        '-f',
        'lavfi',
        '-i',
        'testsrc=size=160x120:rate=25',
        '-frames:v',
        '30',
        '-c:v',
        'mjpeg',
        '-f',
        'mpjpeg',
        '-listen',
        '1',
        `http://127.0.0.1:${port}/feed.mjpg`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
    // ffmpeg needs a moment to listen: retry quickly until it does.
    const source = httpSource({ url: `http://127.0.0.1:${port}/feed.mjpg`, retryMin: 50, retryMax: 200 })
    const frames: Frame[] = []
    await withTimeout(
      (async () => {
        for await (const f of source as AsyncIterable<Frame>) {
          frames.push(f)
          if (frames.length === 10) stopSource(source)
        }
      })(),
      15_000,
      `10 frames from ffmpeg (stderr: ${stderr})`,
    )
    // Frames already buffered when stop() was called still come out.
    t.true(frames.length >= 10)
    for (const f of frames) {
      t.is(f.format, 'jpeg')
      t.like(jpegSize(f.data), { width: 160, height: 120 })
    }
  })
}
