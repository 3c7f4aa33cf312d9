// `camera idle=… ! jpeg ! http lazy=true`: the camera runs only while somebody
// watches (what mjpg-streamer users ask for). The http sink holds the stream
// while it has no viewer, the camera sees nobody reading and stops ffmpeg after
// `idle`, and the first viewer starts it again.

import test from 'ava'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FfmpegEvent } from '../../src/media/capture.js'
import { findFfmpeg } from '../../src/media/ffmpeg.js'
import { pipeline, stopPipeline } from '../../src/core/pipeline.js'
import { httpSink } from '../../src/sinks/http.js'
import { camera } from '../../src/sources/camera.js'
import { stageInfo } from '../../src/core/stage.js'
import { jpeg } from '../../src/transforms/jpeg.js'
import { withTimeout } from '../helpers/index.js'

const tool = await findFfmpeg().catch((err: Error) => {
  console.warn(`skipping the lazy camera test: ${err.message}`)
  return undefined
})
const ffTest = tool ? test : test.skip

function nextEvent(stream: NodeJS.EventEmitter, kind: FfmpegEvent['event'], ms: number): Promise<FfmpegEvent> {
  return withTimeout(
    new Promise((resolve) => {
      const on = (e: FfmpegEvent): void => {
        if (e.event === kind) {
          stream.off('ffmpeg', on)
          resolve(e)
        }
      }
      stream.on('ffmpeg', on)
    }),
    ms,
    `ffmpeg ${kind}`,
  )
}

ffTest('camera idle= with http lazy=true: ffmpeg runs only while a viewer watches', async (t) => {
  const cam = camera({ driver: 'lavfi', device: 'testsrc=size=160x120:rate=30', idle: 400 })
  const sink = httpSink({ port: 0, lazy: true })
  const stages = [cam, jpeg(), sink]
  t.teardown(() => {
    for (const s of stages) s.destroy()
  })
  const running = (): number => stageInfo(cam)!.counters.running ?? 0

  const firstStop = nextEvent(cam, 'stop', 10_000)
  const done = pipeline(...stages)
  const [address] = (await withTimeout(once(sink, 'listening'), 5000, 'listening')) as [AddressInfo]
  // Nobody watches: the sink holds the first frame, nobody reads the camera, ffmpeg stops.
  await firstStop
  t.is(running(), 0, 'no viewer: the camera is off')

  const restarted = nextEvent(cam, 'start', 10_000)
  const response = await withTimeout(
    new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(`http://127.0.0.1:${address.port}/stream.mjpg`, resolve).on('error', reject)
    }),
    5000,
    'viewer connects',
  )
  await restarted
  let bytes = 0
  await withTimeout(
    new Promise<void>((resolve) => {
      response.on('data', (c: Buffer) => {
        bytes += c.length
        if (bytes > 20_000) resolve()
      })
    }),
    10_000,
    'the viewer receives frames',
  )
  t.is(running(), 1, 'a viewer: the camera is on')

  const stoppedAgain = nextEvent(cam, 'stop', 10_000)
  response.destroy()
  await stoppedAgain
  t.is(running(), 0, 'the last viewer left: the camera is off again')

  stopPipeline(stages)
  await withTimeout(done, 10_000, 'the pipeline ends after stopPipeline')
})
