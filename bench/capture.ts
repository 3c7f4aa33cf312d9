// Capture cost: MJPEG passthrough against decode + re-encode, on the same
// MJPEG recording (what an MJPEG webcam sends), at 640x480 and 1280x720.
//   passthrough: ffmpeg -c:v copy → MJPEG parser → null (the camera/video path for MJPEG input)
//   re-encode:   ffmpeg decodes to RGB → jpeg stage (sharp, q80, 2 in flight) → null
//                (what capture tools that always decode do)
// Both read the file as fast as they can (video realtime=false loop=true), in
// alternating slices so load changes hit both alike. CPU per frame counts our
// process (process.cpuUsage: JS, parser, sharp's threads) and ffmpeg's
// (/proc/<pid>/stat utime+stime, read just before it is stopped; Linux only).

import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FfmpegProcess, findFfmpeg } from '../src/media/ffmpeg.js'
import type { FfmpegEvent } from '../src/media/capture.js'
import { pipeline, stopSource } from '../src/core/pipeline.js'
import { nullSink } from '../src/sinks/null.js'
import { video } from '../src/sources/video.js'
import { stageInfo } from '../src/core/stage.js'
import { jpeg } from '../src/transforms/jpeg.js'
import type { Bench, BenchRow } from './types.js'

const GROUP = 'capture'
const SIZES = [
  [640, 480],
  [1280, 720],
] as const
const SLICE_MS = 2000
const ROUNDS = 2
const CLIP_SECONDS = 5

interface Tally {
  frames: number
  bytes: number
  ms: number
  cpuMs: number
  childCpuMs: number
}
const empty = (): Tally => ({ frames: 0, bytes: 0, ms: 0, cpuMs: 0, childCpuMs: 0 })

let clockTick = 0
function ticksPerSecond(): number {
  if (clockTick) return clockTick
  try {
    clockTick = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    clockTick = 100 // the Linux default (USER_HZ) when getconf is missing
  }
  return clockTick
}

/** CPU milliseconds a process has used so far, from /proc (undefined where there is no /proc). */
function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const utime = Number(fields[11])
    const stime = Number(fields[12])
    return ((utime + stime) * 1000) / ticksPerSecond()
  } catch {
    return undefined
  }
}

async function slice(path: string, passthrough: boolean, ms: number): Promise<Tally> {
  const source = video({ path, realtime: false, loop: true, output: passthrough ? 'jpeg' : 'raw' })
  const sink = nullSink()
  let pid = 0
  source.on('ffmpeg', (e: FfmpegEvent) => {
    if (e.event === 'start') pid = e.pid ?? 0
  })
  let childCpuMs = 0
  let framesAtStop = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let t1 = t0
  let cpu1 = cpu0
  const timer = setTimeout(() => {
    // Read everything at the same instant, before ffmpeg is stopped.
    t1 = performance.now()
    cpu1 = process.cpuUsage()
    framesAtStop = stageInfo(sink)!.counters.frames
    childCpuMs = (pid && processCpuMs(pid)) || 0
    stopSource(source)
  }, ms)
  try {
    await pipeline(...(passthrough ? [source, sink] : [source, jpeg({ quality: 80, concurrency: 2 }), sink]))
  } finally {
    clearTimeout(timer)
  }
  const own = cpu1.user - cpu0.user + cpu1.system - cpu0.system
  return { frames: framesAtStop, bytes: stageInfo(sink)!.counters.bytes, ms: t1 - t0, cpuMs: own / 1000, childCpuMs }
}

async function makeClip(dir: string, width: number, height: number): Promise<string> {
  const ffmpeg = await findFfmpeg()
  const path = join(dir, `clip-${width}x${height}.avi`)
  const proc = new FfmpegProcess({
    path: ffmpeg.path,
    args: [
      '-hide_banner',
      '-loglevel',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      `testsrc2=size=${width}x${height}:rate=30:duration=${CLIP_SECONDS}`,
      '-c:v',
      'mjpeg',
      '-q:v',
      '5',
      path,
    ],
  })
  const failure = proc.failure(await proc.exited)
  if (failure) throw new Error(`cannot make the MJPEG clip: ${failure}`)
  return path
}

export const bench: Bench = async () => {
  const rows: BenchRow[] = []
  const dir = await mkdtemp(join(tmpdir(), 'frame-pipe-bench-capture-'))
  try {
    for (const [width, height] of SIZES) {
      const clip = await makeClip(dir, width, height)
      await slice(clip, true, 300) // warm-up: ffmpeg in the page cache, JIT
      await slice(clip, false, 300)
      const pass = empty()
      const dec = empty()
      for (let r = 0; r < ROUNDS; r++) {
        for (const [tally, passthrough] of [
          [pass, true],
          [dec, false],
        ] as const) {
          const t = await slice(clip, passthrough, SLICE_MS / ROUNDS)
          tally.frames += t.frames
          tally.bytes += t.bytes
          tally.ms += t.ms
          tally.cpuMs += t.cpuMs
          tally.childCpuMs += t.childCpuMs
        }
      }
      const size = `${width}x${height}`
      const fps = (t: Tally) => t.frames / (t.ms / 1000)
      const cpuPerFrame = (t: Tally) => (t.cpuMs + t.childCpuMs) / t.frames
      const split = (t: Tally) => `node ${(t.cpuMs / t.frames).toFixed(2)} + ffmpeg ${(t.childCpuMs / t.frames).toFixed(2)} ms`
      const kb = (t: Tally) => `${(t.bytes / t.frames / 1024).toFixed(1)} KiB/frame`
      rows.push({
        group: GROUP,
        name: `MJPEG passthrough ${size} (ffmpeg -c:v copy → parser → null)`,
        value: fps(pass),
        unit: 'frames/s',
        note: `${(fps(pass) / fps(dec)).toFixed(1)}× re-encode; ${kb(pass)}`,
      })
      rows.push({
        group: GROUP,
        name: `decode + re-encode ${size} (ffmpeg → raw → jpeg q80 → null)`,
        value: fps(dec),
        unit: 'frames/s',
        note: `baseline; ${kb(dec)}`,
      })
      rows.push({
        group: GROUP,
        name: `MJPEG passthrough ${size}: CPU per frame`,
        value: cpuPerFrame(pass),
        unit: 'ms',
        note: `${(cpuPerFrame(dec) / cpuPerFrame(pass)).toFixed(1)}× less than re-encode; ${split(pass)}`,
      })
      rows.push({
        group: GROUP,
        name: `decode + re-encode ${size}: CPU per frame`,
        value: cpuPerFrame(dec),
        unit: 'ms',
        note: `baseline; ${split(dec)}`,
      })
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  return rows
}
