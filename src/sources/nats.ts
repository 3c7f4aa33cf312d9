// Frames from a NATS subject: one camera, all of them (wildcards), a share of
// them (queue group), or from what JetStream kept (last frame, pre-roll).

import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { LINK_OPTIONS, subjectOption } from '../net/nats/options.js'
import { NatsSubscriber, type NatsSubscribeConfig } from '../net/nats/subscribe.js'

export type NatsSourceOptions = Partial<NatsSubscribeConfig> & { subject: string }

export const spec = defineStage<NatsSourceOptions, NatsSubscriber>({
  name: 'nats',
  kind: 'source',
  input: null,
  output: 'frames',
  description: 'Subscribe to frames on a NATS subject (wildcards, queue groups, JetStream replay); a slow reader drops to the newest frame',
  options: {
    subject: subjectOption('Subject to subscribe to; * matches one token, > the rest (frames.* : every camera)'),
    ...LINK_OPTIONS,
    queue: {
      type: 'string',
      default: '',
      doc: "Queue group: the subscribers of one group share the frames, each frame going to one of them (workers); '': every frame",
    },
    maxQueue: {
      type: 'int',
      min: 1,
      default: 4,
      doc: 'Frames waiting while downstream is busy; when full the oldest is dropped (counted in drops): the broker and the publisher never wait for us',
    },
    last: {
      type: 'boolean',
      default: false,
      doc: 'JetStream: start with the last kept frame of each matching subject (a picture at once), then live frames',
    },
    preroll: {
      type: 'duration',
      min: 0,
      default: 0,
      doc: "JetStream: start with the kept frames of this last span (a recorder's pre-roll: never dropped, however slow downstream is), then live frames; 0: live only",
    },
    stream: { type: 'string', default: '', doc: "JetStream stream to read with last/preroll; '': the one that captures the subject" },
  },
  create(o, ctx) {
    return new NatsSubscriber(o, ctx)
  },
})

export const nats = stageFactory(spec)
