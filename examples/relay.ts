// Both ends in one script: test pattern → JPEG → native header → TCP → files.
// Run it with `npx tsx examples/relay.ts [dir]`.
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { filesSink, jpeg, pipeline, prefix, tcpClientSource, tcpServerSink, testsrc, unprefix } from '../src/index.js'

const dir = process.argv[2] ?? 'out/example'

// Sender: the server holds the first frame until one client is connected (wait: 1).
const server = tcpServerSink({ port: 0, wait: 1 })
const sending = pipeline(
  testsrc({ width: 320, height: 240, fps: 30, count: 90 }),
  jpeg({ quality: 80 }),
  prefix({ header: 'native' }),
  server,
)

// Receiver: connect to the port the server picked, cut frames, write files.
const [address] = (await once(server, 'listening')) as [AddressInfo]
const receiving = pipeline(tcpClientSource({ port: address.port }), unprefix({ header: 'native' }), filesSink({ dir }))

await Promise.all([sending, receiving])
console.log(`90 frames in ${dir}`)
