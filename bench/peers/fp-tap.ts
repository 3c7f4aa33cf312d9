// frame-pipe's receiver in the peers bench's latency rows. It runs a pipeline
// description as the CLI does (same parser, same stages, sharp's cache off),
// and taps the frames that leave the last stage (a `null` sink passes them on
// once someone reads): for each, now − frame.timestamp, the capture time that
// came in the native header; then it releases the frame, as the null sink
// does when nobody reads it (Frame.release). Prints one JSON line when the pipeline ends:
// {"frames": n, "latency_ms": [...]} (the first `skip` frames not timed).
//
//   node dist/bench/peers/fp-tap.js '<description>' [skip]

import { isFrame, now, releaseFrame } from '../../src/core/frame.js'
import { pipeline } from '../../src/core/pipeline.js'
import { launch } from '../../src/launch.js'
import { disableSharpCache } from '../../src/image/sharp-loader.js'

async function main(): Promise<void> {
  const [description, skipText] = process.argv.slice(2)
  if (!description) throw new Error('usage: fp-tap.js <description> [skip]')
  const skip = Number(skipText ?? 0)
  disableSharpCache()
  const stages = launch(description)
  let frames = 0
  const latency: number[] = []
  stages[stages.length - 1]!.on('data', (chunk: unknown) => {
    if (!isFrame(chunk)) return
    if (frames >= skip) latency.push(Math.round((now() - chunk.timestamp) * 1000) / 1000)
    frames++
    // The tap is the frame's last holder, as the null sink is when nobody reads it: decode's buffer can go back.
    releaseFrame(chunk)
  })
  await pipeline(...stages)
  process.stdout.write(JSON.stringify({ frames, latency_ms: latency }) + '\n')
}

main().then(
  () => setTimeout(() => process.exit(0), 100).unref(),
  (err: Error) => {
    process.stderr.write(`fp-tap: ${err.message}\n`)
    process.exit(1)
  },
)
