// /metrics of the http sink in Prometheus' text format (version 0.0.4): the
// sink's own numbers, and the counters of every stage of the pipeline it runs
// in. A stage learns its pipeline from pipeline() (pipelineOf in core/stage.ts),
// so the viewer needs no registry of its own: a viewer piped by hand, outside
// pipeline(), reports its own numbers only.

import type { Stream } from 'node:stream'
import { stageInfo } from '../../core/stage.js'
import { LATENCY, measuresLatency, type LatencySummary } from '../../core/stats.js'

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** The sink's own numbers. */
export interface ViewerMetrics {
  frames: number
  /** JPEG bytes received. */
  bytes: number
  /** Bytes written to viewers (part headers included). */
  sentBytes: number
  drops: number
  viewers: number
  fps: number
  uptime: number
  width: number
  height: number
  /** Latency quantiles over the last second (ms), null without timestamps. */
  latency: LatencySummary | null
  /** Since the start: total ms and frames measured. */
  latencyTotals: { sum: number; count: number }
}

/** Counters every stage keeps; other counters are stage-specific gauges. */
const COUNTERS: Record<string, string> = {
  frames: 'Frames (or packets on a byte edge) the stage handled',
  bytes: 'Bytes the stage handled',
  drops: 'Frames the stage dropped by its policy (slow clients, rate caps, lost connections)',
}

export function prometheusText(own: ViewerMetrics, stages: readonly Stream[] | undefined): string {
  const out = new Metrics()
  out.metric('frame_pipe_http_frames_total', 'counter', 'Frames received by the http sink', [[{}, own.frames]])
  out.metric('frame_pipe_http_bytes_total', 'counter', 'JPEG bytes received by the http sink', [[{}, own.bytes]])
  out.metric('frame_pipe_http_sent_bytes_total', 'counter', 'Bytes written to viewers, part headers included', [[{}, own.sentBytes]])
  out.metric('frame_pipe_http_drops_total', 'counter', 'Frames dropped for slow viewers', [[{}, own.drops]])
  out.metric('frame_pipe_http_viewers', 'gauge', 'Viewers of the MJPEG stream now', [[{}, own.viewers]])
  out.metric('frame_pipe_http_fps', 'gauge', 'Frames per second arriving at the sink, over the last second', [[{}, own.fps]])
  out.metric('frame_pipe_http_width', 'gauge', 'Width of the latest frame in pixels', [[{}, own.width]])
  out.metric('frame_pipe_http_height', 'gauge', 'Height of the latest frame in pixels', [[{}, own.height]])
  out.metric('frame_pipe_http_uptime_seconds', 'gauge', 'Seconds since the viewer started listening', [[{}, own.uptime]])
  const l = own.latency
  out.metric('frame_pipe_http_latency_seconds', 'summary', 'Capture to sent-on latency (quantiles over the last second)', [
    ...(l ? quantiles({}, l) : []),
    [{}, own.latencyTotals.sum / 1000, '_sum'],
    [{}, own.latencyTotals.count, '_count'],
  ])

  if (stages && stages.length > 0) {
    const infos = stages.map((s, index) => ({ s, index, info: stageInfo(s) })).filter((x) => x.info !== undefined)
    const label = (x: (typeof infos)[number]): Labels => ({ index: String(x.index), stage: x.info!.name, kind: x.info!.kind })
    for (const [key, help] of Object.entries(COUNTERS)) {
      out.metric(
        `frame_pipe_stage_${key}_total`,
        'counter',
        help,
        infos.map((x) => [label(x), x.info!.counters[key] ?? 0]),
      )
    }
    const gauges = new Set<string>()
    for (const x of infos) for (const key of Object.keys(x.info!.counters)) if (!(key in COUNTERS)) gauges.add(key)
    for (const key of [...gauges].sort()) {
      const samples = infos.flatMap((x): Sample[] => {
        const v = x.info!.counters[key]
        return typeof v === 'number' && Number.isFinite(v) ? [[label(x), v]] : []
      })
      out.metric(`frame_pipe_stage_${metricName(key)}`, 'gauge', `The stage's '${key}' counter`, samples)
    }
    const measured = infos.flatMap((x): Sample[] => {
      if (!measuresLatency(x.s)) return []
      const m = x.s[LATENCY]()
      return m ? quantiles(label(x), m) : []
    })
    if (measured.length > 0) {
      out.metric(
        'frame_pipe_stage_latency_seconds',
        'gauge',
        'Latency quantiles measured by a stage (stats, http), over its window',
        measured,
      )
    }
  }
  return out.text()
}

type Labels = Record<string, string>
/** Labels, value, and a suffix on the metric's name (_sum, _count). */
type Sample = [Labels, number] | [Labels, number, string]

function quantiles(labels: Labels, l: LatencySummary): Sample[] {
  return [
    [{ ...labels, quantile: '0.5' }, l.p50 / 1000],
    [{ ...labels, quantile: '0.95' }, l.p95 / 1000],
    [{ ...labels, quantile: '0.99' }, l.p99 / 1000],
  ]
}

/** Counter keys are camelCase words: `maxQueue` → `max_queue`; anything else outside [a-z0-9_] → `_`. */
function metricName(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
}

class Metrics {
  private readonly lines: string[] = []

  metric(name: string, type: 'counter' | 'gauge' | 'summary', help: string, samples: Sample[]): void {
    if (samples.length === 0) return
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`)
    for (const [labels, value, suffix] of samples) this.lines.push(`${name}${suffix ?? ''}${formatLabels(labels)} ${formatValue(value)}`)
  }

  text(): string {
    return this.lines.join('\n') + '\n'
  }
}

function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels)
  if (entries.length === 0) return ''
  return `{${entries.map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}`
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  return String(v)
}
