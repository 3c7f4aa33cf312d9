// Public API of frame-pipe. Each factory validates its options with the same
// rules as the CLI and returns a stream tagged with its stage, so `pipeline`
// can refuse links that cannot work before anything starts.

export * from './core/frame.js'
export * from './core/errors.js'
export type { Counters, StageInfo, Staged, StageContext } from './core/stage.js'
export { stageInfo, tagStage, passOn, stageFactory } from './core/stage.js'
export type { OptionSpec, OptionSpecs, PortType, StageKind, StageSpec } from './core/spec.js'
export { defineStage, resolveOptions } from './core/spec.js'
export { pipeline, chain, checkLinks, stopSource, stopPipeline, type PipelineOptions } from './core/pipeline.js'
export { launch, parseDescription, planDescription, buildPlan, loadPlan, PipelineSyntaxError } from './launch.js'
export { STAGES, findStage, stagesNamed } from './registry.js'

// Sources
export { testsrc, type TestsrcOptions } from './sources/testsrc.js'
export { renderTestFrame } from './image/test-pattern.js'
export { camera, type CameraOptions } from './sources/camera.js'
export { video, type VideoOptions } from './sources/video.js'
export { httpSource, type HttpSourceOptions } from './sources/http.js'
export { files as filesSource, type FilesSourceOptions } from './sources/files.js'
export { tcpServer as tcpServerSource, type TcpServerSourceOptions } from './sources/tcp-server.js'
export { tcpClient as tcpClientSource, type TcpClientSourceOptions } from './sources/tcp-client.js'
export { stdin as stdinSource, fromReadable } from './sources/stdin.js'

// Transforms
export { jpeg, type JpegOptions } from './transforms/jpeg.js'
export { png, type PngOptions } from './transforms/png.js'
export { webp, type WebpOptions } from './transforms/webp.js'
export { decode, type DecodeOptions } from './transforms/decode.js'
export { resize, type ResizeOptions } from './transforms/resize.js'
export { prefix, type PrefixOptions } from './transforms/prefix.js'
export { unprefix, type UnprefixOptions } from './transforms/unprefix.js'
export { HEADER_FORMATS, FIXED_HEADER_FORMATS, UNPREFIX_HEADERS, type HeaderFormat } from './wire/headers.js'
export { rate, type RateOptions } from './transforms/rate.js'
export { stats, type StatsOptions, type StatsSnapshot } from './transforms/stats.js'
export { mapFrames, type MapFramesOptions, type MapFunction, type MapResult } from './core/map-frames.js'

// Sinks
export { files as filesSink, type FilesSinkOptions } from './sinks/files.js'
export { tcpServer as tcpServerSink, type TcpServerSinkOptions } from './sinks/tcp-server.js'
export { tcpClient as tcpClientSink, type TcpClientSinkOptions } from './sinks/tcp-client.js'
export { stdout as stdoutSink } from './sinks/stdout.js'
export { nullSink } from './sinks/null.js'
export { httpSink, type HttpSinkOptions } from './sinks/http.js'
export { toWritable } from './core/packets.js'

// Seed 004: TCP registration + UDP frames with per-frame replies
export { regServer, type RegServerOptions } from './sinks/reg-server.js'
export { regClient, type RegClientOptions } from './sources/reg-client.js'

// Recording
export { avi, type AviOptions } from './sinks/avi.js'
export { mp4, type Mp4Options } from './sinks/mp4.js'

// Seed 003 (one-character commands) and request/reply snapshots
export { cmdServer, type CmdServerOptions } from './sinks/cmd-server.js'
export { cmdClient, type CmdClientOptions } from './sources/cmd-client.js'
export { snapshotServer, type SnapshotServerOptions } from './sinks/snapshot-server.js'
export { snapshotClient, requestSnapshot, type SnapshotClientOptions } from './sources/snapshot-client.js'

// UDP: seed 000 (whole JPEG per datagram, 8-byte length + 1024-byte chunks, JSON side port) and frame-pipe's native datagrams
export { udpServer, type UdpServerSourceOptions } from './sources/udp-server.js'
export { udpClient, type UdpClientSinkOptions } from './sinks/udp-client.js'

// NATS: publish/subscribe through nats-server (wildcards, queue groups, JetStream last frame and pre-roll)
export { nats as natsSink, type NatsSinkOptions } from './sinks/nats.js'
export { nats as natsSource, type NatsSourceOptions } from './sources/nats.js'

// Typed events of the stages (each stage file exports its own map, e.g. HttpSinkEvents)
export type { TypedEvents, WithEvents } from './core/events.js'
export type { ServerEvents, ConnectionEvents, WarningEvents } from './net/events.js'
export type { ClientEvent, ConnectionEvent } from './net/socket.js'
export type { LatencySummary } from './core/stats.js'
