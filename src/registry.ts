// The one list of stages. The CLI, `frame-pipe inspect` and the README tables read it.

import type { StageSpec, StageKind } from './core/spec.js'
import { spec as testsrc } from './sources/testsrc.js'
import { spec as filesSource } from './sources/files.js'
import { spec as tcpServerSource } from './sources/tcp-server.js'
import { spec as tcpClientSource } from './sources/tcp-client.js'
import { spec as stdin } from './sources/stdin.js'
import { spec as jpeg } from './transforms/jpeg.js'
import { spec as png } from './transforms/png.js'
import { spec as webp } from './transforms/webp.js'
import { spec as decode } from './transforms/decode.js'
import { spec as resize } from './transforms/resize.js'
import { spec as prefix } from './transforms/prefix.js'
import { spec as unprefix } from './transforms/unprefix.js'
import { spec as rate } from './transforms/rate.js'
import { spec as stats } from './transforms/stats.js'
import { spec as filesSink } from './sinks/files.js'
import { spec as tcpServerSink } from './sinks/tcp-server.js'
import { spec as tcpClientSink } from './sinks/tcp-client.js'
import { spec as stdout } from './sinks/stdout.js'
import { spec as nullSink } from './sinks/null.js'
import { spec as regServer } from './sinks/reg-server.js'
import { spec as avi } from './sinks/avi.js'
import { spec as cmdServer } from './sinks/cmd-server.js'
import { spec as cmdClient } from './sources/cmd-client.js'
import { spec as snapshotServer } from './sinks/snapshot-server.js'
import { spec as snapshotClient } from './sources/snapshot-client.js'
import { spec as mp4 } from './sinks/mp4.js'
import { spec as httpSink } from './sinks/http.js'
import { spec as httpSource } from './sources/http.js'
import { spec as camera } from './sources/camera.js'
import { spec as video } from './sources/video.js'
import { spec as udpServer } from './sources/udp-server.js'
import { spec as udpClient } from './sinks/udp-client.js'
import { spec as regClient } from './sources/reg-client.js'
import { spec as natsSource } from './sources/nats.js'
import { spec as natsSink } from './sinks/nats.js'

export const STAGES: readonly StageSpec[] = [
  testsrc,
  camera,
  video,
  filesSource,
  httpSource,
  tcpServerSource,
  tcpClientSource,
  udpServer,
  stdin,
  cmdClient,
  snapshotClient,
  regClient,
  natsSource,
  jpeg,
  png,
  webp,
  decode,
  resize,
  prefix,
  unprefix,
  rate,
  stats,
  filesSink,
  tcpServerSink,
  tcpClientSink,
  udpClient,
  stdout,
  nullSink,
  cmdServer,
  snapshotServer,
  regServer,
  avi,
  mp4,
  httpSink,
  natsSink,
] as StageSpec[]

export function findStage(name: string, kind: StageKind): StageSpec | undefined {
  return STAGES.find((s) => s.name === name && s.kind === kind)
}

export function stagesNamed(name: string): StageSpec[] {
  return STAGES.filter((s) => s.name === name)
}

export function stageNames(): string[] {
  return [...new Set(STAGES.map((s) => s.name))]
}
