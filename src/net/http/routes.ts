// The http sink's URLs, including the ones other MJPEG servers are reached
// at, so a client configured for mjpg-streamer (OctoPrint, Home Assistant,
// motionEye) or µStreamer (PiKVM) works unchanged:
//
//   /  /index.html                    the live page
//   /stream.mjpg   /stream            MJPEG (multipart/x-mixed-replace)
//   /?action=stream                   (mjpg-streamer)
//   /snapshot.jpg  /snapshot          the latest frame as one JPEG
//   /?action=snapshot                 (mjpg-streamer)
//   /stats                            frame-pipe's numbers as JSON
//   /state                            µStreamer's /state JSON shape
//   /metrics                          Prometheus text format
//
// Pure functions: the viewer (viewer.ts) asks which route a request is for
// and builds the /state body here.

import type { LatencySummary } from '../../core/stats.js'

export type Route = 'page' | 'stream' | 'snapshot' | 'stats' | 'state' | 'metrics' | 'not-found'

/** The paths listed in a 404, and in the docs. */
export const ROUTE_LIST =
  '/, /stream.mjpg, /snapshot.jpg, /stats, /state, /metrics (and /stream, /snapshot, /?action=stream, /?action=snapshot)'

/** Which route a request target (`/path?query`) is for. */
export function routeOf(target: string): { route: Route; path: string } {
  const q = target.indexOf('?')
  const path = q < 0 ? target : target.slice(0, q)
  switch (path) {
    case '/':
    case '/index.html': {
      // mjpg-streamer serves everything from its root, picked by ?action=.
      const action = q < 0 ? null : new URLSearchParams(target.slice(q + 1)).get('action')
      if (action === 'stream') return { route: 'stream', path }
      if (action === 'snapshot') return { route: 'snapshot', path }
      return { route: 'page', path }
    }
    case '/stream.mjpg':
    case '/stream':
      return { route: 'stream', path }
    case '/snapshot.jpg':
    case '/snapshot':
      return { route: 'snapshot', path }
    case '/stats':
      return { route: 'stats', path }
    case '/state':
      return { route: 'state', path }
    case '/metrics':
      return { route: 'metrics', path }
    default:
      return { route: 'not-found', path }
  }
}

/** What /state is made from. */
export interface StateInput {
  width: number
  height: number
  /** A frame arrived recently and the stream has not ended. */
  online: boolean
  /** Frames per second arriving at the sink. */
  fps: number
  viewers: { id: number; sent: number; seconds: number }[]
}

/**
 * µStreamer's /state: `{ok, result: {encoder, source, stream}}`. The frames
 * arrive as JPEG and are passed on as they are, which µStreamer calls the
 * NOOP encoder (quality unknown: 0); desired_fps 0 is µStreamer's "as fast as
 * the source goes". A viewer's fps is its frames sent over its time connected.
 */
export function ustreamerState(s: StateInput): unknown {
  const fps = Math.round(s.fps)
  const clientsStat: Record<string, unknown> = {}
  for (const v of s.viewers) {
    clientsStat[v.id.toString(16)] = {
      fps: v.seconds > 0 ? Math.round(v.sent / v.seconds) : 0,
      extra_headers: false,
      advance_headers: false,
      dual_final_frames: false,
      zero_data: false,
    }
  }
  return {
    ok: true,
    result: {
      encoder: { type: 'NOOP', quality: 0 },
      source: { resolution: { width: s.width, height: s.height }, online: s.online, desired_fps: 0, captured_fps: fps },
      stream: { queued_fps: s.viewers.length > 0 ? fps : 0, clients: s.viewers.length, clients_stat: clientsStat },
    },
  }
}

export type { LatencySummary }
