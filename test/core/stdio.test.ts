// stdin, stdout, null and toWritable: byte edges in and out of plain streams.

import test from 'ava'
import { testProp, fc } from '@fast-check/ava'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough, Readable, Writable, type Stream } from 'node:stream'
import { pathToFileURL } from 'node:url'
import { makeFrame, type Boundary } from '../../src/core/frame.js'
import { pipeline } from '../../src/core/pipeline.js'
import { nullSink } from '../../src/sinks/null.js'
import { fromReadable } from '../../src/sources/stdin.js'
import { toWritable, writePacket } from '../../src/core/packets.js'
import { stageInfo, type Counters } from '../../src/core/stage.js'
import { collect, fromItems, rechunk, run, tempDir, withTimeout } from '../helpers/index.js'

function counters(stream: Stream): Counters {
  return stageInfo(stream)!.counters
}

function packet(i: number, size: number): Buffer[] {
  const header = Buffer.alloc(4)
  header.writeUInt32BE(size, 0)
  return [header, Buffer.alloc(size, i & 0xff)]
}

const boundary: Boundary = { boundary: true, peer: '127.0.0.1:1', reason: 'end' }

/** A byte Writable that records each write and completes it after `delayMs`. */
function slowWritable(delayMs: number, highWaterMark: number): Writable & { writes: Buffer[]; maxBuffered: number } {
  const w = new Writable({
    highWaterMark,
    write(chunk: Buffer, _e, cb) {
      w.writes.push(chunk)
      w.maxBuffered = Math.max(w.maxBuffered, w.writableLength)
      setTimeout(cb, delayMs)
    },
  }) as Writable & { writes: Buffer[]; maxBuffered: number }
  w.writes = []
  w.maxBuffered = 0
  return w
}

// ---------------------------------------------------------------- stdin / fromReadable

testProp(
  'fromReadable passes bytes through under any chunking',
  [fc.uint8Array({ maxLength: 5000 }), fc.integer({ min: 1, max: 300 }), fc.nat()],
  async (t, bytes, maxPiece, seed) => {
    const input = Buffer.from(bytes)
    const source = fromReadable(Readable.from(rechunk(input, seed, maxPiece), { objectMode: false }))
    const out = await collect<Buffer>(source)
    t.true(Buffer.concat(out).equals(input))
    t.is(counters(source).bytes, input.length)
    t.is(counters(source).frames, out.length)
  },
)

test('fromReadable pauses its input when nobody reads', async (t) => {
  const input = new PassThrough({ highWaterMark: 1024 })
  const source = fromReadable(input)
  t.teardown(() => {
    source.destroy()
  })
  // Wants data (one _read), then never reads.
  source.once('readable', () => undefined)
  for (let i = 0; i < 200; i++) input.write(Buffer.alloc(1024))
  await new Promise((r) => setTimeout(r, 100))
  t.true(source.readableLength <= 16, `source holds ${source.readableLength} chunks`)
  const held = input.readableLength + input.writableLength
  t.true(held >= 150 * 1024, `the rest stays in the input (${held} bytes)`)
  t.true(input.isPaused())
})

test('fromReadable turns an input error into one line naming the stage', async (t) => {
  const input = new Readable({
    read() {
      this.destroy(new Error('disk on fire'))
    },
  })
  const err = await t.throwsAsync(collect(fromReadable(input)))
  t.is(err!.message, 'readable: read failed: disk on fire')
})

test('the stdin stage reads standard input until it ends', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const script = join(dir, 'stdin.mts')
  const src = (p: string) => pathToFileURL(join(process.cwd(), p)).href
  await writeFile(
    script,
    `
    import { stdin } from '${src('src/sources/stdin.ts')}'
    import { unprefix } from '${src('src/transforms/unprefix.ts')}'
    import { nullSink } from '${src('src/sinks/null.ts')}'
    import { pipeline } from '${src('src/core/pipeline.ts')}'
    import { stageInfo } from '${src('src/core/stage.ts')}'
    const sink = nullSink()
    await pipeline(stdin(), unprefix(), sink)
    process.stderr.write(JSON.stringify(stageInfo(sink).counters))
  `,
  )
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['pipe', 'ignore', 'pipe'] })
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => {
    stderr += d
  })
  const input = Buffer.concat(Array.from({ length: 20 }, (_, i) => packet(i, 10_000)).flat())
  child.stdin.end(input)
  const [code] = await withTimeout(new Promise<[number | null]>((resolve) => child.on('close', (c) => resolve([c]))), 20_000, 'child')
  t.is(code, 0, stderr)
  t.deepEqual(JSON.parse(stderr), { frames: 20, bytes: 200_000, drops: 0 })
})

// ---------------------------------------------------------------- stdout

test('the stdout sink writes every packet, and a reader that goes away (head) ends it without a crash', async (t) => {
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const script = join(dir, 'stdout.mts')
  const src = (p: string) => pathToFileURL(join(process.cwd(), p)).href
  await writeFile(
    script,
    `
    import { Readable } from 'node:stream'
    import { stdout, isReaderGone } from '${src('src/sinks/stdout.ts')}'
    import { pipeline } from '${src('src/core/pipeline.ts')}'
    const count = Number(process.argv[2])
    let i = 0
    const source = Readable.from((function* () {
      while (i < count) { const h = Buffer.alloc(4); h.writeUInt32BE(1000); yield [h, Buffer.alloc(1000, i++ & 0xff)] }
    })(), { objectMode: true })
    try {
      await pipeline(source, stdout())
      process.stderr.write('done')
    } catch (err) {
      process.stderr.write(isReaderGone(err) ? 'reader gone after ' + i : 'error: ' + err.message)
    }
  `,
  )
  const runChild = (count: number, keep: number) =>
    withTimeout(
      new Promise<{ code: number | null; out: Buffer; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script, String(count)], { stdio: ['ignore', 'pipe', 'pipe'] })
        t.teardown(() => {
          child.kill('SIGKILL')
        })
        const out: Buffer[] = []
        let got = 0
        let stderr = ''
        child.stdout.on('data', (d: Buffer) => {
          out.push(d)
          got += d.length
          // Like `head -c keep`: stop reading and close the pipe.
          if (got >= keep) child.stdout.destroy()
        })
        child.stderr.on('data', (d: Buffer) => {
          stderr += d
        })
        child.on('close', (code) => resolve({ code, out: Buffer.concat(out), stderr }))
      }),
      20_000,
      'child',
    )

  const whole = await runChild(50, Infinity)
  t.is(whole.code, 0)
  t.is(whole.stderr, 'done')
  t.true(whole.out.equals(Buffer.concat(Array.from({ length: 50 }, (_, i) => packet(i, 1000)).flat())))

  const cut = await runChild(1_000_000, 100)
  t.is(cut.code, 0)
  t.regex(cut.stderr, /^reader gone after \d+$/)
  t.true(Number(cut.stderr.split(' ').pop()) < 1_000_000, 'the source stopped early')
})

// ---------------------------------------------------------------- toWritable / writePacket

test('toWritable writes header and payload as separate writes, waits for drain and ends the writable', async (t) => {
  const out = slowWritable(1, 16)
  const packets = Array.from({ length: 30 }, (_, i) => packet(i, 100))
  const sink = toWritable(out)
  const passed = await withTimeout(run(fromItems([...packets.slice(0, 10), boundary, ...packets.slice(10)]), sink), 10_000, 'pipeline')
  t.is(out.writes.length, 60, 'one write per piece, never joined')
  t.true(Buffer.concat(out.writes).equals(Buffer.concat(packets.flat())))
  t.true(out.maxBuffered <= 16 + 104, `at most one packet above the highWaterMark (saw ${out.maxBuffered})`)
  t.true(out.writableFinished)
  t.is(passed.length, 31, 'packets and the Boundary are passed on')
  t.is(counters(sink).frames, 30)
  t.is(counters(sink).bytes, 30 * 104)
  t.is(stageInfo(sink)!.name, 'writable')
})

test('toWritable with end: false leaves the writable open', async (t) => {
  const out = slowWritable(0, 1024)
  await pipeline(fromItems([packet(1, 10)]), toWritable(out, { end: false }))
  t.false(out.writableEnded)
  t.is(out.writes.length, 2)
})

test('toWritable reports an error of the writable as its own', async (t) => {
  const out = new Writable({
    write(_c, _e, cb) {
      cb(new Error('ENOSPC'))
    },
  })
  const err = await t.throwsAsync(pipeline(fromItems([packet(1, 10), packet(2, 10)]), toWritable(out)))
  t.is(err!.message, 'writable: write failed: ENOSPC')
})

test('writePacket skips empty pieces and reports backpressure', (t) => {
  const out = slowWritable(1000, 8)
  t.teardown(() => {
    out.destroy()
  })
  const header = Buffer.alloc(4)
  t.true(writePacket(out, [header, Buffer.alloc(0)]))
  t.is(out.writes.length, 1)
  t.false(writePacket(out, [header, Buffer.alloc(10)]))
})

// ---------------------------------------------------------------- null

test('null counts frames and packets, ignores Boundary markers and passes all on', async (t) => {
  const sink = nullSink()
  const items = [makeFrame(Buffer.alloc(10)), packet(0, 6), Buffer.alloc(3), boundary]
  const passed = await run(fromItems(items), sink)
  t.is(passed.length, 4)
  t.deepEqual({ ...counters(sink) }, { frames: 3, bytes: 10 + 10 + 3, drops: 0 })
})
