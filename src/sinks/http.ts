// The http sink: its options, spec and factory. The engine is src/net/http/viewer.ts.

import { hostOption, lingerOption, portOption } from '../net/options.js'
import { defineStage } from '../core/spec.js'
import { stageFactory } from '../core/stage.js'
import { HttpSink } from '../net/http/viewer.js'
import type { ClientEvent } from '../net/socket.js'
import type { HttpListening } from '../net/http/viewer.js'

export type { HttpListening, ViewerStats } from '../net/http/viewer.js'

export interface HttpSinkOptions {
  host?: string
  port?: number
  auth?: string
  maxQueue?: number
  maxViewers?: number
  lazy?: boolean
  linger?: number
}

/** Events of the http sink (see core/events.ts): 'listening' carries the viewer's URL. */
export interface HttpSinkEvents {
  listening: HttpListening
  client: ClientEvent
}

export const spec = defineStage<HttpSinkOptions, HttpSink>({
  name: 'http',
  kind: 'sink',
  input: 'frames',
  output: 'frames',
  description: 'Serve JPEG frames over HTTP: a live viewer page, MJPEG stream, snapshot and stats',
  passes: 'each frame once it is queued to every viewer',
  options: {
    host: hostOption(),
    port: portOption(8080, 'Port to listen on; 0 picks a free one (see the listening event and url())'),
    auth: { type: 'string', default: '', doc: "Require HTTP basic auth on every route, given as 'user:password'; '' = open" },
    maxQueue: {
      type: 'int',
      min: 1,
      default: 2,
      doc: "Frames queued per viewer; when a slow viewer's queue is full its oldest frame is dropped (counted in drops), so it always gets the newest",
    },
    maxViewers: { type: 'int', min: 1, default: 64, doc: 'Streams served at once; more get 503 and are logged' },
    lazy: {
      type: 'boolean',
      default: false,
      doc: 'With no viewer, hold the next frame (backpressure) so the source pauses; the first viewer releases it. Pair with camera idle= to stop the camera between viewers',
    },
    linger: lingerOption('At the end, how long viewers get to receive their queued frames before their connections close'),
  },
  create(o, ctx) {
    return new HttpSink(o, ctx)
  },
})

export const httpSink = stageFactory<HttpSinkOptions, HttpSink, HttpSinkEvents>(spec)
