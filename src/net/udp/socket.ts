// UDP socket plumbing shared by udp-server and udp-client: binding and
// connecting with one-line errors that carry the stage and address. (Their
// per-datagram warnings go through core/warnings.ts's throttle.)

import dgram, { type Socket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import { networkError } from '../../core/errors.js'
import { formatAddress } from '../socket.js'

/** The wires udp-server and udp-client speak: frame-pipe's own, and seed 000a and 000b/c. */
export const UDP_PROTOS = ['native', 'whole', 'chunked'] as const
export type UdpProto = (typeof UDP_PROTOS)[number]

export function udpType(host: string): 'udp4' | 'udp6' {
  return isIPv6(host) ? 'udp6' : 'udp4'
}

/** Bind a new socket to host:port; the callback gets it, or a networkError (`udp-server: port in use: 127.0.0.1:9999`). */
export function bindUdp(host: string, port: number, stage: string, callback: (err: Error | null, socket?: Socket) => void): Socket {
  // Bursts of small datagrams fill the default buffer (about 200 KB) fast; the kernel caps this at net.core.rmem_max.
  const socket = dgram.createSocket({ type: udpType(host), recvBufferSize: 4 * 2 ** 20 })
  const onError = (err: Error) => {
    socket.off('listening', onListening)
    socket.close()
    callback(networkError(stage, err, formatAddress(host, port)))
  }
  const onListening = () => {
    socket.off('error', onError)
    callback(null, socket)
  }
  socket.once('error', onError)
  socket.once('listening', onListening)
  socket.bind(port, host)
  return socket
}

/** A socket from an ephemeral port, connected to host:port so that only that peer's datagrams arrive. */
export function connectUdp(host: string, port: number, stage: string, callback: (err: Error | null, socket?: Socket) => void): Socket {
  const socket = dgram.createSocket({ type: udpType(host) })
  const onError = (err: Error) => {
    socket.off('connect', onConnect)
    socket.close()
    callback(networkError(stage, err, formatAddress(host, port)))
  }
  const onConnect = () => {
    socket.off('error', onError)
    callback(null, socket)
  }
  socket.once('error', onError)
  socket.once('connect', onConnect)
  socket.connect(port, host)
  return socket
}

/** Close a socket that may already be closed. */
export function closeQuietly(socket: Socket | undefined): void {
  if (!socket) return
  try {
    socket.close()
  } catch (err) {
    // Only ERR_SOCKET_DGRAM_NOT_RUNNING: it was closed already. Anything else is a bug to surface.
    if ((err as NodeJS.ErrnoException).code !== 'ERR_SOCKET_DGRAM_NOT_RUNNING') throw err
  }
}
