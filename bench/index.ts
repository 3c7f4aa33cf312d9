// `npm run bench`: every benchmark in one run, printed as one table with units
// and the machine, so figures are compared side by side (ratios, not absolutes).

import { cpus, totalmem, platform, release } from 'node:os'
import sharp from 'sharp'
import type { Bench, BenchRow } from './types.js'

const SUITES: Record<string, () => Promise<{ bench: Bench }>> = {
  framing: () => import('./framing.js'),
  relay: () => import('./relay.js'),
  encode: () => import('./encode.js'),
  capture: () => import('./capture.js'),
  udp: () => import('./udp.js'),
  nats: () => import('./nats.js'),
  tls: () => import('./tls.js'),
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  if (args.includes('--peers')) {
    // frame-pipe against GStreamer, FFmpeg and Python+OpenCV, in separate processes (bench/peers.ts).
    const { runPeers } = await import('./peers.js')
    await runPeers(args.filter((a) => a !== '--peers'))
    return
  }
  const only = args
  const names = only.length > 0 ? only : Object.keys(SUITES)
  const cpu = cpus()
  process.stdout.write(`frame-pipe benchmark — ${new Date().toISOString()}\n`)
  process.stdout.write(
    `machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${platform()} ${release()}, node ${process.version}, sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips})\n\n`,
  )
  const rows: BenchRow[] = []
  for (const name of names) {
    const load = SUITES[name]
    if (!load) throw new Error(`unknown bench '${name}'; have: ${Object.keys(SUITES).join(', ')}`)
    process.stderr.write(`running ${name}…\n`)
    const { bench } = await load()
    rows.push(...(await bench()))
  }
  process.stdout.write(table(rows) + '\n')
}

function table(rows: BenchRow[]): string {
  const cells = rows.map((r) => [r.group, r.name, formatValue(r.value), r.unit, r.note ?? ''])
  const head = ['group', 'case', 'value', 'unit', 'note']
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)))
  const line = (c: string[]): string => '| ' + c.map((x, i) => (i === 2 ? x.padStart(widths[i]!) : x.padEnd(widths[i]!))).join(' | ') + ' |'
  return [
    line(head),
    '|' + widths.map((w, i) => (i === 2 ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|') + '|',
    ...cells.map(line),
  ].join('\n')
}

function formatValue(v: number): string {
  if (v >= 100) return Math.round(v).toLocaleString('en-US')
  if (v >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`)
  process.exitCode = 1
})
