// Typed events: `stage.on('client', (e) => …)` knows what `e` is. The type
// checks here run in `tsc -p .` (npm test); the runtime part checks the events
// really carry what their types say.

import test from 'ava'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { httpSink } from '../../src/sinks/http.js'
import { stats } from '../../src/transforms/stats.js'
import { camera } from '../../src/sources/camera.js'
import { tcpClient } from '../../src/sources/tcp-client.js'
import { tcpServer } from '../../src/sinks/tcp-server.js'
import { avi } from '../../src/sinks/avi.js'
import type { ClientEvent, ConnectionEvent } from '../../src/net/socket.js'
import type { StatsSnapshot } from '../../src/core/stats.js'
import type { FfmpegEvent } from '../../src/media/capture.js'
import { withTimeout } from '../helpers/index.js'

type IsAny<T> = 0 extends 1 & T ? true : false
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
/** Compiles only when `Actual` is exactly `Expected` (and not any). */
function expectType<Expected>() {
  return <Actual>(
    _value: Actual,
    ..._check: Equal<Actual, Expected> extends true ? (IsAny<Actual> extends true ? [never] : []) : [never]
  ) => undefined
}

test("listeners of a stage's own events get typed details; stream events keep theirs", async (t) => {
  const sink = httpSink({ port: 0 })
  t.teardown(() => sink.destroy())
  sink.on('client', (e) => expectType<ClientEvent>()(e))
  const listening = new Promise<string>((resolve) =>
    sink.once('listening', (a) => {
      expectType<string>()(a.url)
      resolve(a.url)
    }),
  )
  // Stream events are untouched: 'close' still takes no argument, 'error' an Error.
  sink.on('error', (err) => expectType<Error>()(err))
  t.regex(await withTimeout(listening, 5000, 'listening'), /^http:\/\/127\.0\.0\.1:\d+\/$/)

  const tap = stats({ interval: 10 })
  tap.on('stats', (s) => expectType<StatsSnapshot>()(s))
  const server = tcpServer({ port: 0 })
  t.teardown(() => server.destroy())
  server.on('listening', (a) => expectType<AddressInfo>()(a))
  const [address] = (await withTimeout(once(server, 'listening'), 5000, 'tcp listening')) as [AddressInfo]
  t.is(typeof address.port, 'number')
  const client = tcpClient({ port: address.port })
  t.teardown(() => client.destroy())
  client.on('connect', (e) => expectType<ConnectionEvent>()(e))
  const [connected] = (await withTimeout(once(client, 'connect'), 5000, 'connect')) as [ConnectionEvent]
  t.regex(connected.message, /^connected to 127\.0\.0\.1:\d+$/)
  client.resume()
  tap.destroy()

  // Declared, not run: the recorders' and capture's events are typed too.
  const declared = (): void => {
    camera({ driver: 'lavfi' }).on('ffmpeg', (e) => expectType<FfmpegEvent>()(e))
    avi().on('segment', (e) => expectType<string>()(e.file))
  }
  t.is(typeof declared, 'function')
})
