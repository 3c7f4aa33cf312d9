// camera: ffmpeg's synthetic input (lavfi testsrc) and an MJPEG recording
// (driver=file) stand in for a webcam through the same code path: raw frames
// byte-identical to ffmpeg's own output, MJPEG passed through byte for byte,
// fallback to raw, clear errors (no ffmpeg, no device), a camera that goes
// away (clean end or retry), destroy and idle stopping ffmpeg, and the
// drop-oldest queue. Also where ffmpeg is looked for.

import test from 'ava'
import { once } from 'node:events'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { FramePipeError } from '../../src/core/errors.js'
import type { Frame } from '../../src/core/frame.js'
import { FfmpegProcess, findFfmpeg, findTool, type FoundTool } from '../../src/media/ffmpeg.js'
import type { FfmpegEvent } from '../../src/media/capture.js'
import { MjpegParser } from '../../src/wire/mjpeg-parser.js'
import { pipeline, stopSource } from '../../src/core/pipeline.js'
import { nullSink } from '../../src/sinks/null.js'
import { cameraPlans, platformDriver } from '../../src/media/camera.js'
import { camera, spec, type CameraOptions } from '../../src/sources/camera.js'
import { resolveOptions } from '../../src/core/spec.js'
import { stageInfo } from '../../src/core/stage.js'
import { run, tempDir, withTimeout } from '../helpers/index.js'
import { ffmpegOutput, pidAlive } from '../helpers/media.js'

// A guard against hangs, not a speed requirement: each test takes about a second alone.
const TIMEOUT = 15000
const tool: FoundTool | undefined = await findFfmpeg().catch((err: Error) => {
  console.warn(`skipping the ffmpeg tests of camera.test.ts: ${err.message}`)
  return undefined
})
// One ffmpeg test at a time: a dozen ffmpeg processes at once on a 2-core machine make each test crawl.
const ffTest = tool ? test.serial : test.skip

function ffmpeg(args: string[]): Promise<Buffer> {
  return ffmpegOutput(tool!.path, args)
}

/** Record a stage's events. */
function events(stream: NodeJS.EventEmitter) {
  const log = { ffmpeg: [] as FfmpegEvent[], warning: [] as Error[], retry: [] as Array<{ message: string }> }
  stream.on('ffmpeg', (e: FfmpegEvent) => log.ffmpeg.push(e))
  stream.on('warning', (e: Error) => log.warning.push(e))
  stream.on('retry', (e: { message: string }) => log.retry.push(e))
  return log
}

/** Resolves once the stream has closed, whether it ended or failed (events.once would reject on 'error'). */
function closed(stream: NodeJS.EventEmitter & { closed?: boolean }): Promise<void> {
  if (stream.closed) return Promise.resolve()
  return withTimeout(new Promise((resolve) => stream.once('close', () => resolve())), TIMEOUT, 'close')
}

const starts = (log: ReturnType<typeof events>) => log.ffmpeg.filter((e) => e.event === 'start')

/** A sink that calls `onFrame` with each frame and how many came so far. */
function probeSink(onFrame: (frame: Frame, n: number) => void): Writable {
  let n = 0
  return new Writable({
    objectMode: true,
    highWaterMark: 1,
    write(frame: Frame, _e, cb) {
      onFrame(frame, ++n)
      cb()
    },
  })
}

let dir = ''
let cleanup = async () => {}
/** 0.5 s of 320x240 MJPEG at 30 fps in an AVI, encoded with slices so the scans carry restart markers. */
let mjpegAvi = ''
/** The same picture as MPEG-4 part 2 (no MJPEG in it). */
let mpeg4 = ''

test.before(async () => {
  ;({ dir, cleanup } = await tempDir('frame-pipe-camera-'))
  if (!tool) return
  mjpegAvi = join(dir, 'rec.avi')
  mpeg4 = join(dir, 'rec.mp4')
  await ffmpeg([
    '-f',
    'lavfi',
    '-i',
    'testsrc=size=320x240:rate=30:duration=0.5',
    '-c:v',
    'mjpeg',
    '-q:v',
    '4',
    '-threads',
    '4',
    '-thread_type',
    'slice',
    '-slices',
    '4',
    mjpegAvi,
  ])
  await ffmpeg(['-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=30:duration=0.5', '-c:v', 'mpeg4', mpeg4])
})
test.after.always(() => cleanup())

// ---------------------------------------------------------------------------
// Where ffmpeg comes from (serial: they change process.env).

ffTest('FRAME_PIPE_FFMPEG is used when no option is given; a missing file there is an error, not a fallback', async (t) => {
  const saved = process.env.FRAME_PIPE_FFMPEG
  t.teardown(() => {
    if (saved === undefined) delete process.env.FRAME_PIPE_FFMPEG
    else process.env.FRAME_PIPE_FFMPEG = saved
  })
  process.env.FRAME_PIPE_FFMPEG = tool!.path
  const found = await findFfmpeg()
  t.like(found, { path: tool!.path, from: 'env' })
  t.is(found.message, `ffmpeg ${tool!.path} (from FRAME_PIPE_FFMPEG)`)
  process.env.FRAME_PIPE_FFMPEG = join(dir, 'no-such-ffmpeg')
  const err = await t.throwsAsync(findFfmpeg(undefined, 'camera'), { instanceOf: FramePipeError })
  t.is(err?.code, 'ERR_IO')
  t.is(err?.message, `camera: FRAME_PIPE_FFMPEG='${join(dir, 'no-such-ffmpeg')}' does not exist`)
})

ffTest('with nothing in PATH and no variable, the npm-shipped ffmpeg and ffprobe are found, and they run', async (t) => {
  const saved = { PATH: process.env.PATH, a: process.env.FRAME_PIPE_FFMPEG, b: process.env.FRAME_PIPE_FFPROBE }
  t.teardown(() => {
    process.env.PATH = saved.PATH
    if (saved.a === undefined) delete process.env.FRAME_PIPE_FFMPEG
    else process.env.FRAME_PIPE_FFMPEG = saved.a
    if (saved.b === undefined) delete process.env.FRAME_PIPE_FFPROBE
    else process.env.FRAME_PIPE_FFPROBE = saved.b
  })
  process.env.PATH = dir
  delete process.env.FRAME_PIPE_FFMPEG
  delete process.env.FRAME_PIPE_FFPROBE
  for (const name of ['ffmpeg', 'ffprobe'] as const) {
    const found = await findTool(name, undefined)
    t.is(found.from, 'npm', found.message)
    t.regex(found.message, new RegExp(`^${name} .* \\(from @${name}-installer/${name}\\)$`))
    const proc = new FfmpegProcess({ path: found.path, args: ['-version'] })
    const exit = await proc.exited
    t.is(proc.failure(exit), undefined)
  }
})

test('an ffmpeg option that names a missing file is one clear error, and the pipeline ends', async (t) => {
  const cam = camera({ driver: 'lavfi', ffmpeg: join(dir, 'nope', 'ffmpeg') })
  const err = await t.throwsAsync(withTimeout(pipeline(cam, nullSink()), TIMEOUT, 'pipeline'), { instanceOf: FramePipeError })
  t.is(err?.code, 'ERR_IO')
  t.is(err?.message, `camera: ffmpeg option '${join(dir, 'nope', 'ffmpeg')}' does not exist`)
  const bare = await t.throwsAsync(findFfmpeg('no-such-ffmpeg-here', 'camera'))
  t.is(bare?.message, "camera: ffmpeg option 'no-such-ffmpeg-here' was not found in PATH")
})

// ---------------------------------------------------------------------------
// The plans: what ffmpeg is asked for.

const opts = (o: CameraOptions) => resolveOptions(spec, o)
const argsOf = (o: CameraOptions) => cameraPlans(opts(o)).map((p) => [p.label, p.output, p.args.join(' ')])

test('plans: v4l2 asks for MJPEG first and falls back to raw; size and rate go to the device', (t) => {
  t.deepEqual(argsOf({ driver: 'v4l2', width: 1280, height: 720, fps: 30 }), [
    [
      'v4l2 /dev/video0 (MJPEG passthrough)',
      'mjpeg',
      '-f v4l2 -input_format mjpeg -video_size 1280x720 -framerate 30 -i /dev/video0 -map 0:v:0 -c:v copy -f mjpeg -flush_packets 1 pipe:1',
    ],
    [
      'v4l2 /dev/video0 (raw)',
      'raw',
      '-f v4l2 -video_size 1280x720 -framerate 30 -i /dev/video0 -map 0:v:0 -f rawvideo -pix_fmt rgb24 pipe:1',
    ],
  ])
  t.deepEqual(
    argsOf({ driver: 'v4l2', pixelFormat: 'mjpeg', device: '/dev/video2' }).map((p) => p[0]),
    ['v4l2 /dev/video2 (MJPEG passthrough)'],
  )
  t.deepEqual(argsOf({ driver: 'v4l2', pixelFormat: 'YUYV422' }), [
    ['v4l2 /dev/video0 (raw yuyv422)', 'raw', '-f v4l2 -input_format yuyv422 -i /dev/video0 -map 0:v:0 -f rawvideo -pix_fmt rgb24 pipe:1'],
  ])
})

test('plans: avfoundation (no MJPEG, 30 fps unless told), dshow (MJPEG pin by codec, video= added), lavfi and file', (t) => {
  t.deepEqual(argsOf({ driver: 'avfoundation' }), [
    ['avfoundation 0 (raw)', 'raw', '-f avfoundation -framerate 30 -i 0 -map 0:v:0 -f rawvideo -pix_fmt rgb24 pipe:1'],
  ])
  t.deepEqual(
    argsOf({ driver: 'avfoundation', pixelFormat: 'nv12', fps: 15 })[0]![2],
    '-f avfoundation -pixel_format nv12 -framerate 15 -i 0 -map 0:v:0 -f rawvideo -pix_fmt rgb24 pipe:1',
  )
  t.deepEqual(
    argsOf({ driver: 'dshow', device: 'Integrated Camera' }).map((p) => p[2]),
    [
      '-f dshow -vcodec mjpeg -i video=Integrated Camera -map 0:v:0 -c:v copy -f mjpeg -flush_packets 1 pipe:1',
      '-f dshow -i video=Integrated Camera -map 0:v:0 -f rawvideo -pix_fmt rgb24 pipe:1',
    ],
  )
  t.is(argsOf({ driver: 'dshow', device: 'video=Cam' })[0]![0], 'dshow video=Cam (MJPEG passthrough)')
  t.deepEqual(argsOf({ driver: 'lavfi', width: 320, height: 240, fps: 10 }), [
    [
      'lavfi testsrc=size=320x240:rate=10 (raw)',
      'raw',
      '-re -f lavfi -i testsrc=size=320x240:rate=10 -map 0:v:0 -f rawvideo -pix_fmt rgb24 pipe:1',
    ],
  ])
  t.deepEqual(
    argsOf({ driver: 'file', device: 'rec.avi' }).map((p) => p[0]),
    ['file rec.avi (MJPEG passthrough)', 'file rec.avi (raw)'],
  )
  t.deepEqual(
    [platformDriver('linux'), platformDriver('darwin'), platformDriver('win32'), platformDriver('freebsd')],
    ['v4l2', 'avfoundation', 'dshow', 'v4l2'],
  )
})

test('option errors are thrown when the stage is made, before any process runs', (t) => {
  const check = (o: CameraOptions, message: string) => {
    const err = t.throws(() => camera(o), { instanceOf: FramePipeError })
    t.is(err?.code, 'ERR_INVALID_OPTION')
    t.is(err?.message, message)
  }
  check({ driver: 'dshow' }, 'camera: dshow needs device=<camera name>; list the names with: ffmpeg -list_devices true -f dshow -i dummy')
  check({ driver: 'lavfi', pixelFormat: 'mjpeg' }, 'camera: pixelFormat=mjpeg is not available with driver=lavfi; use auto or raw')
  check(
    { driver: 'avfoundation', pixelFormat: 'mjpeg' },
    'camera: pixelFormat=mjpeg is not available with driver=avfoundation; use auto or raw',
  )
  check({ driver: 'file' }, 'camera: driver=file needs device=<path of a recording>')
  check({ driver: 'v4l2', fps: -1 }, 'camera: expected number between 0 and 1000 for fps but received -1 of type number')
})

// ---------------------------------------------------------------------------
// Through ffmpeg.

ffTest(
  "lavfi testsrc goes through the camera code path: raw frames byte-identical to ffmpeg's own, then a clean end with a message",
  async (t) => {
    const device = 'testsrc=size=160x120:rate=30:duration=0.5'
    const expected = await ffmpeg(['-f', 'lavfi', '-i', device, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'])
    const cam = camera({ driver: 'lavfi', device })
    const log = events(cam)
    const frames = await withTimeout(run<Frame>(cam), TIMEOUT, 'camera')
    t.is(frames.length, 15)
    t.true(Buffer.concat(frames.map((f) => f.data)).equals(expected))
    t.deepEqual(
      frames.map((f) => f.seq),
      [...Array(15).keys()],
    )
    for (const f of frames) t.like(f, { format: 'raw', width: 160, height: 120, channels: 3 })
    t.deepEqual(
      log.warning.map((e) => e.message),
      [`camera: lavfi ${device} (raw) stopped after 15 frames: the input ended; ending`],
    )
    t.deepEqual(
      log.ffmpeg.map((e) => e.event),
      ['found', 'start'],
    )
    t.like(stageInfo(cam)!.counters, { frames: 15, bytes: expected.length, drops: 0, running: 0 })
  },
)

ffTest('MJPEG passthrough: the JPEGs the camera stage emits are the bytes in the recording, packet for packet', async (t) => {
  // Reference 1: ffmpeg's own split of the AVI into one file per packet.
  await ffmpeg(['-i', mjpegAvi, '-c:v', 'copy', '-f', 'image2', join(dir, 'split-%03d.jpg')])
  const names = (await readdir(dir)).filter((n) => n.startsWith('split-')).sort()
  const packets = await Promise.all(names.map((n) => readFile(join(dir, n))))
  // Reference 2: the MJPEG stream ffmpeg copies out, cut by the parser on its own.
  const stream = await ffmpeg(['-i', mjpegAvi, '-map', '0:v:0', '-c:v', 'copy', '-f', 'mjpeg', 'pipe:1'])
  const parsed: Buffer[] = []
  const parser = new MjpegParser({ maxFrameBytes: 1 << 24, onFrame: (d) => parsed.push(Buffer.from(d)) })
  parser.feed(stream)
  parser.end()

  const cam = camera({ driver: 'file', device: mjpegAvi })
  const log = events(cam)
  const frames = await withTimeout(run<Frame>(cam), TIMEOUT, 'camera')
  t.is(packets.length, 15)
  t.true(
    packets.every((p) => p.includes(Buffer.from([0xff, 0xd0]))),
    'the scans carry restart markers',
  )
  t.is(frames.length, packets.length)
  t.true(
    frames.every((f, i) => f.data.equals(packets[i]!)),
    'bytes in = bytes out',
  )
  t.true(parsed.length === packets.length && parsed.every((p, i) => p.equals(packets[i]!)))
  for (const f of frames) t.like(f, { format: 'jpeg', width: 320, height: 240, channels: 3 })
  t.deepEqual(
    starts(log).map((e) => e.message.replace(/pid \d+/, 'pid N')),
    [`started ffmpeg (pid N): file ${mjpegAvi} (MJPEG passthrough)`],
  )
  t.is(stageInfo(cam)!.counters.skipped, 0)
})

ffTest('pixelFormat=auto falls back to raw when the input has no MJPEG; pixelFormat=mjpeg says so and fails', async (t) => {
  const cam = camera({ driver: 'file', device: mpeg4 })
  const log = events(cam)
  const frames = await withTimeout(run<Frame>(cam), TIMEOUT, 'camera')
  t.is(frames.length, 15)
  for (const f of frames) t.like(f, { format: 'raw', width: 320, height: 240, channels: 3 })
  t.deepEqual(
    log.ffmpeg.filter((e) => e.event === 'fallback').map((e) => e.message),
    [`file ${mpeg4} (MJPEG passthrough) failed (the input is mpeg4, not mjpeg); trying file ${mpeg4} (raw)`],
  )
  const strict = camera({ driver: 'file', device: mpeg4, pixelFormat: 'mjpeg' })
  const err = await t.throwsAsync(withTimeout(pipeline(strict, nullSink()), TIMEOUT, 'pipeline'), { instanceOf: FramePipeError })
  t.is(err?.message, `camera: file ${mpeg4} (MJPEG passthrough): the input is mpeg4, not mjpeg`)
})

const linuxTest = tool && process.platform === 'linux' ? test.serial : test.skip
if (process.platform !== 'linux') console.warn('skipping the v4l2 missing-device tests: not Linux')

linuxTest("a missing device is one clear error with ffmpeg's reason, and no ffmpeg is left running", async (t) => {
  const cam = camera({ driver: 'v4l2', device: '/dev/video99' })
  const log = events(cam)
  const err = await t.throwsAsync(withTimeout(pipeline(cam, nullSink()), TIMEOUT, 'pipeline'), { instanceOf: FramePipeError })
  t.is(err?.code, 'ERR_IO')
  t.is(err?.message, 'camera: v4l2 /dev/video99: ffmpeg exited with code 1: /dev/video99: No such file or directory')
  const pids = starts(log).map((e) => e.pid!)
  t.is(pids.length, 1, 'ffmpeg started once: a missing device is missing for every plan, no fallback to raw')
  t.deepEqual(
    log.ffmpeg.filter((e) => e.event === 'fallback'),
    [],
  )
  t.false(pids.some(pidAlive))
})

ffTest('a missing recording (driver=file) starts ffmpeg once, not once per plan', async (t) => {
  const missing = join(dir, 'no-such-recording.avi')
  const cam = camera({ driver: 'file', device: missing })
  const log = events(cam)
  const err = await t.throwsAsync(withTimeout(pipeline(cam, nullSink()), TIMEOUT, 'pipeline'), { instanceOf: FramePipeError })
  t.regex(
    err!.message,
    new RegExp(`^camera: file ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ffmpeg exited with code 1: .*No such file or directory`),
  )
  t.is(starts(log).length, 1)
})

linuxTest('retry=true keeps trying a missing device (logged), and stop() still ends cleanly', async (t) => {
  const cam = camera({ driver: 'v4l2', device: '/dev/video99', retry: true, retryDelay: 50 })
  const log = events(cam)
  const done = withTimeout(pipeline(cam, nullSink()), TIMEOUT, 'pipeline')
  while (log.retry.length < 2) await once(cam, 'retry')
  stopSource(cam)
  await done
  t.is(log.retry[0]!.message, 'v4l2 /dev/video99: ffmpeg exited with code 1: /dev/video99: No such file or directory; retrying in 50 ms')
  t.is(stageInfo(cam)!.counters.frames, 0)
  t.false(starts(log).some((e) => pidAlive(e.pid!)))
})

ffTest('a camera that goes away mid-stream (ffmpeg killed) ends the pipeline cleanly with one message', async (t) => {
  const cam = camera({ driver: 'lavfi', device: 'testsrc=size=64x48:rate=30' })
  const log = events(cam)
  let pid = 0
  await withTimeout(
    pipeline(
      cam,
      probeSink((_f, n) => {
        if (n === 3) {
          pid = cam.pid!
          process.kill(pid, 'SIGKILL')
        }
      }),
    ),
    TIMEOUT,
    'pipeline',
  )
  t.true(pid > 0)
  t.false(pidAlive(pid))
  t.is(log.warning.length, 1)
  t.regex(
    log.warning[0]!.message,
    /^camera: lavfi testsrc=size=64x48:rate=30 \(raw\) stopped after \d+ frames: ffmpeg was killed by SIGKILL; ending$/,
  )
})

ffTest('retry=true: a camera that goes away is started again and frames go on', async (t) => {
  const cam = camera({ driver: 'lavfi', device: 'testsrc=size=64x48:rate=30', retry: true, retryDelay: 50 })
  const log = events(cam)
  const seqs: number[] = []
  await withTimeout(
    pipeline(
      cam,
      probeSink((f, n) => {
        seqs.push(f.seq)
        if (n === 3) process.kill(cam.pid!, 'SIGKILL')
        if (n === 8) stopSource(cam)
      }),
    ),
    TIMEOUT,
    'pipeline',
  )
  const pids = starts(log).map((e) => e.pid!)
  t.is(pids.length, 2)
  t.not(pids[0], pids[1])
  t.is(log.retry.length, 1)
  t.regex(log.retry[0]!.message, /ffmpeg was killed by SIGKILL; retrying in 50 ms$/)
  t.true(seqs.length >= 8)
  t.deepEqual(
    seqs,
    [...seqs].sort((a, b) => a - b),
    'seq keeps counting over the restart',
  )
  t.false(pids.some(pidAlive))
})

ffTest('destroy() kills ffmpeg and waits for it', async (t) => {
  const cam = camera({ driver: 'lavfi', device: 'testsrc=size=64x48:rate=30' })
  const it = cam[Symbol.asyncIterator]()
  await withTimeout(it.next(), TIMEOUT, 'first frame')
  const pid = cam.pid!
  t.true(pidAlive(pid))
  cam.destroy()
  await closed(cam)
  t.false(pidAlive(pid))
  t.is(stageInfo(cam)!.counters.running, 0)
})

ffTest('a failing sink tears the pipeline down and ffmpeg with it', async (t) => {
  const cam = camera({ driver: 'lavfi', device: 'testsrc=size=64x48:rate=30' })
  let pid = 0
  const sink = new Writable({
    objectMode: true,
    write(_f, _e, cb) {
      pid = cam.pid!
      cb(new Error('disk full'))
    },
  })
  await t.throwsAsync(withTimeout(pipeline(cam, sink), TIMEOUT, 'pipeline'), { message: 'disk full' })
  await closed(cam)
  t.false(pidAlive(pid))
})

ffTest('idle: ffmpeg stops when nobody reads and starts again on the next read', async (t) => {
  const cam = camera({ driver: 'lavfi', device: 'testsrc=size=64x48:rate=30', idle: 300 })
  const log = events(cam)
  t.teardown(() => cam.destroy())
  const it = cam[Symbol.asyncIterator]()
  await withTimeout(it.next(), TIMEOUT, 'frame')
  await withTimeout(it.next(), TIMEOUT, 'frame')
  const first = cam.pid!
  // Nobody reads now.
  await withTimeout(
    new Promise<void>((resolve) =>
      cam.on('ffmpeg', (e: FfmpegEvent) => {
        if (e.event === 'stop') resolve()
      }),
    ),
    TIMEOUT,
    'idle stop',
  )
  t.false(pidAlive(first))
  t.is(stageInfo(cam)!.counters.running, 0)
  t.is(cam.pid, undefined)
  t.regex(log.ffmpeg.at(-1)!.message, /no frame read for 300 ms; it starts again on the next read$/)
  // Reading again starts a new ffmpeg; the frame kept in the stream's buffer comes first.
  for (let i = 0; i < 3; i++) await withTimeout(it.next(), TIMEOUT, 'frame after idle')
  const second = cam.pid!
  t.true(second !== undefined && second !== first)
  t.is(starts(log).length, 2)
  await it.return!()
  await closed(cam)
  t.false(pidAlive(second))
})

ffTest('a slow reader: the oldest frames are dropped (counted), the newest kept, and at most queue frames wait', async (t) => {
  const cam = camera({ driver: 'lavfi', device: 'testsrc=size=64x48:rate=200:duration=0.3', queue: 2 })
  const ended = once(cam, 'warning')
  const it = cam[Symbol.asyncIterator]()
  const got: Frame[] = [(await withTimeout(it.next(), TIMEOUT, 'first frame')).value as Frame]
  // Read nothing until ffmpeg has finished and every frame has been parsed.
  await withTimeout(ended, TIMEOUT, 'end of input')
  for (;;) {
    const r = await withTimeout(it.next(), TIMEOUT, 'rest')
    if (r.done) break
    got.push(r.value as Frame)
  }
  const total = got.at(-1)!.seq + 1
  const { drops, frames } = stageInfo(cam)!.counters
  t.true(total >= 50, `${total} frames made`)
  t.true(got.length <= 4, `${got.length} frames read: the one taken, one in the stream buffer, two queued`)
  t.is(frames, got.length)
  t.is(drops + got.length, total)
  t.deepEqual(
    got.slice(-2).map((f) => f.seq),
    [total - 2, total - 1],
    'the newest frames are the ones kept',
  )
})
