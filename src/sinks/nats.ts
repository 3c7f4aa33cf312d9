// Publish frames to a NATS subject, for any number of subscribers on any
// number of machines; optionally kept by JetStream for late joiners.

import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { lingerOption } from '../net/options.js'
import { LINK_OPTIONS, subjectOption } from '../net/nats/options.js'
import { NatsPublisher, type NatsPublishConfig } from '../net/nats/publish.js'

export type NatsSinkOptions = Partial<NatsPublishConfig> & { subject: string }

export const spec = defineStage<NatsSinkOptions, NatsPublisher>({
  name: 'nats',
  kind: 'sink',
  input: 'frames',
  output: 'frames',
  description: 'Publish frames to a NATS subject (metadata in headers); nats-server fans them out and cuts off slow subscribers',
  passes: 'each frame once it is published',
  options: {
    subject: subjectOption('Subject to publish to, e.g. frames.cam1 (no wildcards)'),
    ...LINK_OPTIONS,
    maxInFlight: {
      type: 'size',
      min: 1,
      default: 2 ** 20,
      doc: 'Bytes published but not yet confirmed by the server (a PING follows each frame; one frame goes whatever its size); at this much, or while disconnected, whenFull decides. It bounds the delay a slow uplink adds (1 MiB: under 1 s at 10 Mbit/s); raise it for more than ~2000 frames/s on fast links',
    },
    whenFull: {
      type: 'enum',
      values: ['wait', 'drop'],
      default: 'wait',
      doc: 'Server slow or gone: wait holds the source back (a live camera then drops its own oldest frames); drop discards the frame (counted in drops). Subscribers never slow the publisher',
    },
    oversize: {
      type: 'enum',
      values: ['drop', 'error'],
      default: 'drop',
      doc: "A frame over the server's max_payload (1 MB unless raised; frames are never split): drop it, counted in drops and oversize, with a warning saying how to raise max_payload; error: end the pipeline",
    },
    keep: {
      type: 'int',
      min: 0,
      default: 0,
      doc: 'JetStream: keep the last this many frames of the subject, so that late subscribers (last=true) get a picture at once; 0: keep none (unless keepFor)',
    },
    keepFor: {
      type: 'duration',
      min: 0,
      default: 0,
      doc: "JetStream: keep the frames of this last span (a recorder's preroll=); 0: no age limit (with keep) or keep none",
    },
    keepBytes: {
      type: 'size',
      min: 1024,
      default: 64 * 2 ** 20,
      doc: 'JetStream: most bytes the stream keeps, the oldest frames going first (the server sets this much aside: its max_memory_store / max_file_store must have room)',
    },
    stream: {
      type: 'string',
      default: '',
      doc: "JetStream stream to keep frames in, created or its limits updated; '': a stream that already captures the subject, used as it is, else one named after the subject (frames.cam1 → frames_cam1)",
    },
    storage: {
      type: 'enum',
      values: ['memory', 'file'],
      default: 'memory',
      doc: 'JetStream storage of a stream we create: memory (fast, lost when the server restarts) or file',
    },
    linger: lingerOption('At the end, how long to wait for the server to confirm the frames in flight before closing'),
  },
  create(o, ctx) {
    return new NatsPublisher(o, ctx)
  },
})

export const nats = stageFactory(spec)
