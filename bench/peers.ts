// `npm run bench -- --peers`: frame-pipe side by side with GStreamer, FFmpeg
// and a seed-style Python + OpenCV peer on the jobs of issue 9's table, each
// job run as TWO processes over loopback TCP (sender, receiver), with the same
// picture for every tool. A tool that is not installed prints "absent".
//
// Measured per run (see bench/peers/run.ts for how):
//   fps    = frames ÷ (sender launch → the later of the two exits): start-up
//            is included for every tool, as in the issue;
//   CPU    = user + system time of each process (getrusage through GNU time),
//            start-up included, divided by the frames;
//   frames = what the receiver reports it received; a run whose count is not
//            N is FAILED with the reason;
//   latency (paced rows) = capture → decoded in the receiver, per frame,
//            from a capture time that travels with the frame (frame-pipe: the
//            native header's timestamp; Python: an 8-byte side header).
// Each cell is the median of RUNS runs; runs go job by job with the tools
// interleaved, and rep by rep, so a change in machine load hits all alike.
// Latency percentiles pool the samples of all runs of a cell after dropping
// the first SKIP frames of each (warm-up: first encode/decode, JIT).
//
// Options (after --peers): --runs N (3), --scale X (frames × X), --jobs a,b
// (keys below), --tools frame-pipe,gstreamer,python,ffmpeg, --budget SECONDS
// (500: no new rep starts when it would end past it, no new run starts past it;
// the setup before the runs takes about 15 s).

import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import sharp from 'sharp'
import { makePicture } from './peers/picture.js'
import { freePort, haveTime, runPair, type Command, type Output, type PairResult, type Side } from './peers/run.js'

// ---------------------------------------------------------------------------
// frame-pipe's side of every job: edit here when the stages change. Filled in
// per run: {port} the receiver's port, {raw} and {jpeg} the picture's files,
// {width} {height} its size, {frames} the frame count, {pace} ` fps=30` on the
// latency rows (empty elsewhere). Senders read the picture with the files
// source (raw pixels with width/height, or the JPEG) and repeat it {frames}
// times, as GStreamer's imagefreeze, FFmpeg's -stream_loop and the Python
// sender do; the source stamps each frame's capture time as it makes it.
// Receivers listen; throughput receivers run under the CLI (`--json` gives
// the frame count), latency receivers under bench/peers/fp-tap.ts (same
// description, plus a per-frame latency tap).
// ---------------------------------------------------------------------------
const FP_RAW = 'files path={raw} width={width} height={height} channels=3 loop count={frames}{pace}'
const FP_JPEG = 'files path={jpeg} loop count={frames}'
const FP_ENCODE_SEND = `${FP_RAW} ! jpeg quality=80 ! prefix header=native ! tcp-client port={port}`
const FP_FORWARD_SEND = `${FP_JPEG} ! prefix header=native ! tcp-client port={port}`
const FP_DECODE_RECV = 'tcp-server port={port} once=true ! unprefix header=native ! decode ! null'
const FP_DISCARD_RECV = 'tcp-server port={port} once=true ! unprefix header=native ! null'

export const FRAME_PIPE: Record<JobKey, { send: string; recv: string }> = {
  'encode-decode-640': { send: FP_ENCODE_SEND, recv: FP_DECODE_RECV },
  'encode-decode-1080': { send: FP_ENCODE_SEND, recv: FP_DECODE_RECV },
  'encode-discard-640': { send: FP_ENCODE_SEND, recv: FP_DISCARD_RECV },
  'jpeg-decode-640': { send: FP_FORWARD_SEND, recv: FP_DECODE_RECV },
  'jpeg-decode-1080': { send: FP_FORWARD_SEND, recv: FP_DECODE_RECV },
  'relay-640': { send: FP_FORWARD_SEND, recv: FP_DISCARD_RECV },
  'latency-640': { send: FP_ENCODE_SEND, recv: FP_DECODE_RECV },
  'latency-1080': { send: FP_ENCODE_SEND, recv: FP_DECODE_RECV },
}

type JobKey =
  | 'encode-decode-640'
  | 'encode-decode-1080'
  | 'encode-discard-640'
  | 'jpeg-decode-640'
  | 'jpeg-decode-1080'
  | 'relay-640'
  | 'latency-640'
  | 'latency-1080'

interface Job {
  key: JobKey
  label: string
  width: number
  height: number
  /** What the sender starts from: the raw picture (encoded per frame) or its q80 JPEG. */
  input: 'raw' | 'jpeg'
  /** What the receiver does with each frame. */
  output: 'decode' | 'discard'
  /** Frames per run, chosen for a few seconds per run on a 2-core machine (× --scale). */
  frames: number
  /** Latency rows: frames are captured at this rate and timed capture → decoded. */
  pacedFps?: number
}

const JOBS: readonly Job[] = [
  {
    key: 'encode-decode-640',
    label: '640x480 raw → JPEG q80 → TCP → decode to raw',
    width: 640,
    height: 480,
    input: 'raw',
    output: 'decode',
    frames: 500,
  },
  {
    key: 'encode-decode-1080',
    label: '1920x1080 raw → JPEG q80 → TCP → decode to raw',
    width: 1920,
    height: 1080,
    input: 'raw',
    output: 'decode',
    frames: 80,
  },
  {
    key: 'encode-discard-640',
    label: '640x480 raw → JPEG q80 → TCP → discard',
    width: 640,
    height: 480,
    input: 'raw',
    output: 'discard',
    frames: 500,
  },
  {
    key: 'jpeg-decode-640',
    label: 'pre-encoded 640x480 JPEG → TCP → decode',
    width: 640,
    height: 480,
    input: 'jpeg',
    output: 'decode',
    frames: 800,
  },
  {
    key: 'jpeg-decode-1080',
    label: 'pre-encoded 1920x1080 JPEG → TCP → decode',
    width: 1920,
    height: 1080,
    input: 'jpeg',
    output: 'decode',
    frames: 120,
  },
  {
    key: 'relay-640',
    label: 'pre-encoded 640x480 JPEG relay → TCP → discard',
    width: 640,
    height: 480,
    input: 'jpeg',
    output: 'discard',
    frames: 8000,
  },
  {
    key: 'latency-640',
    label: 'latency, paced 30 fps, 640x480 capture → decoded',
    width: 640,
    height: 480,
    input: 'raw',
    output: 'decode',
    frames: 135,
    pacedFps: 30,
  },
  {
    key: 'latency-1080',
    label: 'latency, paced 30 fps, 1920x1080 capture → decoded',
    width: 1920,
    height: 1080,
    input: 'raw',
    output: 'decode',
    frames: 135,
    pacedFps: 30,
  },
]

/** Frames at the start of each latency run that are not timed (warm-up). */
const SKIP = 15
const QUALITY = 80

function framesFor(job: Job, scale: number): number {
  return Math.max(job.pacedFps ? SKIP + 10 : 10, Math.round(job.frames * scale))
}

// ---------------------------------------------------------------------------

interface Picture {
  width: number
  height: number
  rawPath: string
  jpegPath: string
  raw: Buffer
  jpeg: Buffer
}

interface Context {
  tmp: string
  pictures: Map<string, Picture>
  /** FFmpeg's -q:v for the mjpeg encoder whose size is nearest to q80's, per size. */
  ffmpegQ: Map<string, number>
  python: string
  root: string
}

interface Plan {
  sender: Side
  receiver: Side
  /** Frames the receiver reported, and latency samples, from its output. */
  parse: (r: PairResult) => { frames: number; latency?: number[] } | string
}

interface Tool {
  name: string
  /** Version line, or undefined when not installed. */
  version: string | undefined
  plan(job: Job, port: number, frames: number, ctx: Context): Plan | undefined
}

const sizeKey = (w: number, h: number): string => `${w}x${h}`

function picture(ctx: Context, job: Job): Picture {
  return ctx.pictures.get(sizeKey(job.width, job.height))!
}

function lastJson(out: Output, pred: (o: Record<string, unknown>) => boolean): Record<string, unknown> | undefined {
  for (let i = out.tail.length - 1; i >= 0; i--) {
    const line = out.tail[i]!.trim()
    if (!line.startsWith('{')) continue
    try {
      const o = JSON.parse(line) as Record<string, unknown>
      if (pred(o)) return o
    } catch {
      // A progress line cut short: keep looking.
    }
  }
  return undefined
}

function fill(description: string, values: Record<string, string | number>): string {
  return description.replace(/\{(\w+)\}/g, (whole, key: string) => (key in values ? String(values[key]) : whole))
}

const framePipe = (ctx0: { root: string }): Tool => ({
  name: 'frame-pipe',
  version: readPackageVersion(ctx0.root),
  plan(job, port, frames, ctx) {
    const cli = join(ctx.root, 'bin', 'frame-pipe.js')
    const tap = join(ctx.root, 'dist', 'bench', 'peers', 'fp-tap.js')
    const { send, recv } = FRAME_PIPE[job.key]
    const pic = picture(ctx, job)
    const values = {
      port,
      raw: pic.rawPath,
      jpeg: pic.jpegPath,
      width: pic.width,
      height: pic.height,
      frames,
      pace: job.pacedFps ? ` fps=${job.pacedFps}` : '',
    }
    const receiver: Command = job.pacedFps
      ? { file: process.execPath, args: [tap, fill(recv, values), String(SKIP)] }
      : { file: process.execPath, args: [cli, '--json', '--quiet', fill(recv, values)] }
    return {
      sender: { command: { file: process.execPath, args: [cli, '--quiet', fill(send, values)] } },
      receiver: { command: receiver },
      parse(r) {
        if (job.pacedFps) {
          const o = lastJson(r.receiverOut, (x) => 'latency_ms' in x)
          return o ? { frames: Number(o.frames), latency: o.latency_ms as number[] } : 'no result line from fp-tap'
        }
        const o = lastJson(r.receiverOut, (x) => x.final === true)
        return o ? { frames: Number(o.frames) } : 'no final --json line from the receiver'
      },
    }
  },
})

const gstreamer = (): Tool => ({
  name: 'GStreamer',
  version: versionOf('gst-launch-1.0', ['--version'], /GStreamer ([\d.]+)/, 'GStreamer '),
  plan(job, port, frames, ctx) {
    // No capture timestamps travel end to end here: no latency row.
    if (job.pacedFps) return undefined
    const pic = picture(ctx, job)
    const source =
      job.input === 'raw'
        ? [
            'filesrc',
            `location=${pic.rawPath}`,
            '!',
            'rawvideoparse',
            `width=${pic.width}`,
            `height=${pic.height}`,
            'format=rgb',
            'framerate=30/1',
            '!',
            'imagefreeze',
            `num-buffers=${frames}`,
            '!',
            'videoconvert',
            '!',
            'jpegenc',
            `quality=${QUALITY}`,
          ]
        : ['multifilesrc', `location=${pic.jpegPath}`, 'loop=true', `num-buffers=${frames}`, 'caps=image/jpeg,framerate=30/1']
    // sync=false on both sinks: imagefreeze stamps 30 fps and a syncing sink would play them in real time.
    const send = ['-q', ...source, '!', 'gdppay', '!', 'tcpclientsink', 'host=127.0.0.1', `port=${port}`, 'sync=false']
    // The count: fakesink silent=false + -v prints one 'last-message = chain' line per buffer received.
    const recv = [
      '-v',
      'tcpserversrc',
      'host=127.0.0.1',
      `port=${port}`,
      '!',
      'gdpdepay',
      '!',
      ...(job.output === 'decode' ? ['jpegdec', '!'] : []),
      'fakesink',
      'sync=false',
      'silent=false',
    ]
    return {
      sender: { command: { file: 'gst-launch-1.0', args: send } },
      receiver: { command: { file: 'gst-launch-1.0', args: recv }, countLines: /last-message = chain/ },
      parse: (r) => ({ frames: r.receiverOut.count }),
    }
  },
})

const python = (py: string | undefined): Tool => ({
  name: 'Python+OpenCV',
  version: py ? pythonVersion(py) : undefined,
  plan(job, port, frames, ctx) {
    const pic = picture(ctx, job)
    const script = join(ctx.root, 'bench', 'peers', 'cv_peer.py')
    const stamp = job.pacedFps ? ['--stamp'] : []
    const input = job.input === 'raw' ? ['--raw', pic.rawPath, '--size', sizeKey(pic.width, pic.height)] : ['--jpeg', pic.jpegPath]
    return {
      sender: {
        command: {
          file: ctx.python,
          args: [
            script,
            'send',
            '--port',
            String(port),
            ...input,
            '--frames',
            String(frames),
            '--quality',
            String(QUALITY),
            '--fps',
            String(job.pacedFps ?? 0),
            ...stamp,
          ],
        },
      },
      receiver: {
        command: {
          file: ctx.python,
          args: [script, 'recv', '--port', String(port), '--mode', job.output, ...stamp, '--skip', String(SKIP)],
        },
      },
      parse(r) {
        const o = lastJson(r.receiverOut, (x) => 'frames' in x)
        if (!o) return 'no result line from cv_peer.py'
        if (Number(o.bad) > 0) return `${String(o.bad)} frames did not decode`
        return { frames: Number(o.frames), latency: job.pacedFps ? (o.latency_ms as number[]) : undefined }
      },
    }
  },
})

const ffmpeg = (): Tool => ({
  name: 'FFmpeg',
  version: versionOf('ffmpeg', ['-version'], /ffmpeg version (\S+)/, 'FFmpeg '),
  plan(job, port, frames, ctx) {
    if (job.pacedFps) return undefined
    const pic = picture(ctx, job)
    const common = ['-nostdin', '-hide_banner', '-v', 'error', '-nostats']
    const url = `tcp://127.0.0.1:${port}`
    const source =
      job.input === 'raw'
        ? [
            '-f',
            'rawvideo',
            '-pix_fmt',
            'rgb24',
            '-s',
            sizeKey(pic.width, pic.height),
            '-stream_loop',
            '-1',
            '-i',
            pic.rawPath,
            '-frames:v',
            String(frames),
            '-pix_fmt',
            'yuvj420p',
            '-c:v',
            'mjpeg',
            '-q:v',
            String(ctx.ffmpegQ.get(sizeKey(pic.width, pic.height))),
          ]
        : ['-f', 'image2', '-loop', '1', '-i', pic.jpegPath, '-frames:v', String(frames), '-c:v', 'copy']
    const sink = job.output === 'decode' ? ['-f', 'rawvideo', '-y', '/dev/null'] : ['-c:v', 'copy', '-f', 'null', '-']
    return {
      sender: { command: { file: 'ffmpeg', args: [...common, ...source, '-f', 'mjpeg', url] } },
      receiver: { command: { file: 'ffmpeg', args: [...common, '-progress', 'pipe:1', '-f', 'mjpeg', '-i', `${url}?listen`, ...sink] } },
      parse(r) {
        const line = [...r.receiverOut.tail].reverse().find((l) => l.startsWith('frame='))
        return line ? { frames: Number(line.slice(6)) } : "no frame= line in the receiver's -progress output"
      },
    }
  },
})

// ---------------------------------------------------------------------------

interface Cell {
  runs: Array<{ fps: number; sendCpu?: number; recvCpu?: number; wallMs: number; latency?: number[] }>
  failed?: string
  /** The plan's verdict: the tool has no way to do this job here. */
  notApplicable?: boolean
}

export async function runPeers(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string', default: '3' },
      scale: { type: 'string', default: '1' },
      jobs: { type: 'string' },
      tools: { type: 'string' },
      budget: { type: 'string', default: '500' },
    },
  })
  const runs = Number(values.runs)
  const scale = Number(values.scale)
  const budgetMs = Number(values.budget) * 1000
  const started = performance.now()
  const root = fileURLToPath(new URL('../..', import.meta.url))
  const jobs = values.jobs ? JOBS.filter((j) => values.jobs!.split(',').includes(j.key)) : JOBS
  const tmp = mkdtempSync(join(tmpdir(), 'frame-pipe-peers-'))
  const out = process.stdout
  const log = (s: string): boolean => process.stderr.write(s + '\n')
  try {
    const py = findPython()
    let tools: Tool[] = [framePipe({ root }), gstreamer(), python(py), ffmpeg()]
    if (values.tools)
      tools = tools.filter((t) =>
        values
          .tools!.toLowerCase()
          .split(',')
          .some((n) => t.name.toLowerCase().startsWith(n)),
      )
    const ctx: Context = { tmp, pictures: new Map(), ffmpegQ: new Map(), python: py ?? 'python3', root }

    out.write(`frame-pipe peers benchmark — ${new Date().toISOString()}\n`)
    out.write(machineLine(tools) + '\n')
    out.write(`load before: ${loadLine()}\n`)
    if (!haveTime) out.write('no /usr/bin/time: CPU columns unavailable\n')

    for (const [w, h] of [
      [640, 480],
      [1920, 1080],
    ] as const) {
      const raw = makePicture(w, h)
      // frame-pipe's jpeg stage settings at q80 (optimize off, 4:2:0).
      const jpeg = await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
        .jpeg({ quality: QUALITY, optimiseCoding: false })
        .toBuffer()
      const rawPath = join(tmp, `picture-${w}x${h}.rgb`)
      const jpegPath = join(tmp, `picture-${w}x${h}.jpg`)
      writeFileSync(rawPath, raw)
      writeFileSync(jpegPath, jpeg)
      ctx.pictures.set(sizeKey(w, h), { width: w, height: h, rawPath, jpegPath, raw, jpeg })
      const ff = tools.find((t) => t.name === 'FFmpeg')?.version ? calibrateFfmpeg(rawPath, w, h, jpeg.length) : undefined
      if (ff) ctx.ffmpegQ.set(sizeKey(w, h), ff.q)
      out.write(
        `picture ${w}x${h}: raw RGB ${kb(raw.length)}, JPEG q80 (sharp, 4:2:0; frame-pipe's jpeg stage makes one of the same size) ${kb(jpeg.length)}` +
          (ff ? `; FFmpeg mjpeg -q:v ${ff.q} (integer qscale nearest that size) ${kb(ff.bytes)}` : '') +
          '\n',
      )
    }
    out.write(startupLine(root, tools, ctx) + '\n')

    const cells = new Map<string, Cell>()
    const cellOf = (job: Job, tool: Tool): Cell => {
      const key = `${job.key}|${tool.name}`
      let c = cells.get(key)
      if (!c) cells.set(key, (c = { runs: [] }))
      return c
    }
    let repMs = 0
    let repsDone = 0
    let outOfTime = false
    for (let rep = 0; rep < runs && !outOfTime; rep++) {
      const repStart = performance.now()
      if (rep > 0 && performance.now() - started + repMs > budgetMs) {
        log(`peers: stopping after ${rep} runs per cell: another would pass the ${budgetMs / 1000} s budget`)
        break
      }
      for (const job of jobs) {
        const frames = framesFor(job, scale)
        for (const tool of tools) {
          if (!tool.version) continue
          const cell = cellOf(job, tool)
          if (cell.failed || cell.notApplicable) continue
          if (performance.now() - started > budgetMs) {
            outOfTime = true
            break
          }
          const port = await freePort()
          const plan = tool.plan(job, port, frames, ctx)
          if (!plan) {
            cell.notApplicable = true
            continue
          }
          log(`peers: run ${rep + 1}/${runs} ${job.key} ${tool.name} (${frames} frames)…`)
          const timeoutMs = job.pacedFps ? (frames / job.pacedFps) * 1000 + 60_000 : 120_000
          const r = await runPair({
            port,
            receiver: plan.receiver,
            sender: plan.sender,
            timeoutMs,
            tmpDir: tmp,
          })
          if (r.error) {
            cell.failed = r.error
            continue
          }
          const got = plan.parse(r)
          if (typeof got === 'string') {
            cell.failed = got
            continue
          }
          if (got.frames !== frames) {
            cell.failed = `receiver got ${got.frames} of ${frames} frames`
            continue
          }
          cell.runs.push({
            fps: frames / (r.wallMs / 1000),
            sendCpu: r.sendCpuMs === undefined ? undefined : r.sendCpuMs / frames,
            recvCpu: r.recvCpuMs === undefined ? undefined : r.recvCpuMs / frames,
            wallMs: r.wallMs,
            latency: got.latency,
          })
        }
        if (outOfTime) break
      }
      repMs = performance.now() - repStart
      if (!outOfTime) repsDone++
    }
    const elapsed = (performance.now() - started) / 1000
    out.write(`load after: ${loadLine()}\n\n`)
    out.write(resultTable(jobs, tools, cellOf, scale) + '\n\n')
    out.write(
      `runs per cell: ${repsDone < runs ? `${repsDone} complete reps (budget)` : runs}; whole --peers run ${elapsed.toFixed(0)} s\n`,
    )
    out.write(NOTES + '\n')
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}

const NOTES = `fps: frames ÷ (sender launch → later exit), start-up included; CPU: user+sys ms per frame of each process (GNU time), start-up included.
fp ÷ tool: frame-pipe's fps ÷ the tool's (above 1: frame-pipe faster); latency rows: frame-pipe's p99 ÷ the tool's (below 1: frame-pipe lower).
frame-pipe senders read the picture with the files source (raw with width/height, or the JPEG), repeated with loop count=N, as the other tools repeat theirs.
GStreamer's receiver counts buffers through fakesink silent=false + -v (one printed line per buffer: measured about 0.02 ms CPU per frame, no change in wall time, on the relay row).
Decoded formats: frame-pipe RGB (libjpeg-turbo), OpenCV BGR, GStreamer jpegdec and FFmpeg their native YUV 4:2:0 (no colour conversion).
Latency: frame-pipe from the capture time in the native header (set by the files source when it makes the frame, before jpeg) to the receiver's tap after decode; Python from an 8-byte capture time the sender puts after the length (time.time() before imencode) to after imdecode; samples of all runs pooled, first ${SKIP} frames of each run skipped.`

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!
}

function resultTable(jobs: readonly Job[], tools: Tool[], cellOf: (j: Job, t: Tool) => Cell, scale: number): string {
  const head = ['job', 'tool', 'frames', 'result', 'send CPU ms/frame', 'recv CPU ms/frame', 'fp ÷ tool', 'note']
  const rows: string[][] = []
  for (const job of jobs) {
    const frames = String(framesFor(job, scale))
    const fp = tools.find((t) => t.name === 'frame-pipe')
    const fpCell = fp?.version ? cellOf(job, fp) : undefined
    const fpFps = fpCell && !fpCell.failed && fpCell.runs.length ? median(fpCell.runs.map((r) => r.fps)) : undefined
    const fpP99 =
      fpCell && !fpCell.failed && fpCell.runs.length && job.pacedFps
        ? percentile(
            fpCell.runs.flatMap((r) => r.latency ?? []),
            99,
          )
        : undefined
    let first = true
    for (const tool of tools) {
      const label = first ? job.label : ''
      first = false
      if (!tool.version) {
        rows.push([label, tool.name, '', 'absent', '', '', '', ''])
        continue
      }
      const cell = cellOf(job, tool)
      if (cell.notApplicable) {
        rows.push([label, tool.name, '', '—', '', '', '', job.pacedFps ? 'no end-to-end capture time' : ''])
        continue
      }
      if (cell.failed) {
        rows.push([label, tool.name, frames, 'FAILED', '', '', '', cell.failed.slice(0, 160)])
        continue
      }
      if (cell.runs.length === 0) {
        rows.push([label, tool.name, frames, 'not run', '', '', '', 'out of time budget'])
        continue
      }
      const fps = median(cell.runs.map((r) => r.fps))
      const cpu = (pick: (r: Cell['runs'][number]) => number | undefined): string => {
        const xs = cell.runs.map(pick).filter((x): x is number => x !== undefined)
        return xs.length ? fmt(median(xs)) : '?'
      }
      const notes: string[] = []
      let result: string
      let ratio = ''
      if (job.pacedFps) {
        const lat = cell.runs.flatMap((r) => r.latency ?? [])
        const p99 = percentile(lat, 99)
        result = `p50 ${fmt(percentile(lat, 50))} / p99 ${fmt(p99)} ms`
        if (tool.name !== 'frame-pipe' && fpP99 !== undefined) ratio = `${(fpP99 / p99).toFixed(2)}`
        notes.push(`${lat.length} samples`)
      } else {
        result = `${fmt(fps)} fps`
        if (tool.name !== 'frame-pipe' && fpFps !== undefined) ratio = `${(fpFps / fps).toFixed(2)}`
        if (cell.runs.length > 1) notes.push(`runs ${cell.runs.map((r) => fmt(r.fps)).join('/')}`)
      }
      rows.push([label, tool.name, frames, result, cpu((r) => r.sendCpu), cpu((r) => r.recvCpu), ratio, notes.join('; ')])
    }
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const right = new Set([2, 3, 4, 5, 6])
  const line = (c: string[]): string =>
    '| ' + c.map((x, i) => (right.has(i) ? x.padStart(widths[i]!) : x.padEnd(widths[i]!))).join(' | ') + ' |'
  return [
    line(head),
    '|' + widths.map((w, i) => (right.has(i) ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|') + '|',
    ...rows.map(line),
  ].join('\n')
}

function fmt(v: number): string {
  if (v >= 100) return Math.round(v).toLocaleString('en-US')
  if (v >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

function kb(n: number): string {
  return n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`
}

// ---------------------------------------------------------------------------
// The machine and the tools.

function versionOf(bin: string, args: string[], pattern: RegExp, prefix: string): string | undefined {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 10_000 })
  if (r.error || r.status !== 0) return undefined
  const m = pattern.exec(r.stdout + r.stderr)
  return prefix + (m?.[1] ?? '?')
}

/** An interpreter with cv2: Debian's python3-opencv lives under /usr/bin/python3, which a pyenv python3 on PATH would hide. */
function findPython(): string | undefined {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import cv2, numpy'], { timeout: 20_000 })
    if (!r.error && r.status === 0) return py
  }
  return undefined
}

function pythonVersion(py: string): string {
  return execFileSync(
    py,
    [
      '-c',
      'import sys, cv2, numpy; print("Python %d.%d.%d" % sys.version_info[:3], "OpenCV", cv2.__version__, "NumPy", numpy.__version__)',
    ],
    { encoding: 'utf8' },
  ).trim()
}

function readPackageVersion(root: string): string {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'frame-pipe.js'), '--version'], { encoding: 'utf8' })
  return `frame-pipe ${r.stdout.trim() || '?'}`
}

function machineLine(tools: Tool[]): string {
  const cpu = cpus()
  const versions = tools.map((t) => `${t.name}: ${t.version ?? 'absent'}`).join('; ')
  return (
    `machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips})\n` +
    `tools: ${versions}`
  )
}

function loadLine(): string {
  const r = spawnSync('uptime', { encoding: 'utf8' })
  return r.status === 0
    ? r.stdout.trim()
    : `load average ${loadavg()
        .map((x) => x.toFixed(2))
        .join(', ')}`
}

/** FFmpeg's mjpeg encoder takes an integer qscale: the one whose output is nearest q80's size. */
function calibrateFfmpeg(rawPath: string, w: number, h: number, target: number): { q: number; bytes: number } | undefined {
  let best: { q: number; bytes: number } | undefined
  for (let q = 2; q <= 8; q++) {
    const r = spawnSync(
      'ffmpeg',
      [
        '-nostdin',
        '-v',
        'error',
        '-f',
        'rawvideo',
        '-pix_fmt',
        'rgb24',
        '-s',
        `${w}x${h}`,
        '-i',
        rawPath,
        '-frames:v',
        '1',
        '-pix_fmt',
        'yuvj420p',
        '-c:v',
        'mjpeg',
        '-q:v',
        String(q),
        '-f',
        'mjpeg',
        '-',
      ],
      { maxBuffer: 64 * 2 ** 20, timeout: 30_000 },
    )
    if (r.status !== 0 || !r.stdout) continue
    const bytes = r.stdout.length
    if (!best || Math.abs(bytes - target) < Math.abs(best.bytes - target)) best = { q, bytes }
    if (bytes < target) break
  }
  return best
}

/** Start-up as issue 9 measures it: wall time of a command that does nothing but load, median of 3. */
function startupLine(root: string, tools: Tool[], ctx: Context): string {
  const cli = join(root, 'bin', 'frame-pipe.js')
  const cases: Array<[string, string, string[]]> = [
    ['frame-pipe --help', process.execPath, [cli, '--help']],
    ['frame-pipe inspect', process.execPath, [cli, 'inspect']],
  ]
  if (tools.find((t) => t.name === 'GStreamer')?.version) cases.push(['gst-launch-1.0 --version', 'gst-launch-1.0', ['--version']])
  if (tools.find((t) => t.name === 'FFmpeg')?.version) cases.push(['ffmpeg -version', 'ffmpeg', ['-version']])
  if (tools.find((t) => t.name === 'Python+OpenCV')?.version) cases.push(['python -c "import cv2"', ctx.python, ['-c', 'import cv2']])
  const parts = cases.map(([name, file, args]) => {
    const ms: number[] = []
    for (let i = 0; i < 3; i++) {
      const t = performance.now()
      spawnSync(file, args, { stdio: 'ignore' })
      ms.push(performance.now() - t)
    }
    return `${name} ${fmt(median(ms))} ms`
  })
  return `start-up (wall, median of 3): ${parts.join(', ')}`
}
