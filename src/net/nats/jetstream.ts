// JetStream for the nats stages: the sink makes sure a stream keeps the last
// frames of its subject (the broker stores them as they are published; the
// publisher still sends plain NATS messages and never waits for acks), and
// the source starts from what is kept: the last frame of each subject (a
// late viewer has a picture at once), or the last few seconds (a recorder's
// pre-roll), then goes on live, in order.

import type { NatsConnection } from '@nats-io/transport-node'
import {
  DeliverPolicy,
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  StorageType,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
  type StreamConfig,
} from '@nats-io/jetstream'
import { FramePipeError } from '../../core/errors.js'

/** What the sink keeps per subject. */
export interface KeepConfig {
  subject: string
  /** Frames kept per subject; 0: no count limit (keepFor bounds them). */
  keep: number
  /** Frames older than this (ms) are discarded; 0: no age limit. */
  keepFor: number
  /** The stream's size limit in bytes (oldest frames go first). */
  keepBytes: number
  /** '' : the stream that already captures the subject, else one named after it. */
  stream: string
  /** JetStream storage of a stream we create: memory (fast, lost when the server restarts) or file (default memory) */
  storage: 'memory' | 'file'
}

/** A stream name for a subject: `frames.cam1` → `frames_cam1` (stream names cannot hold . * > or spaces). */
export function streamNameFor(subject: string): string {
  return subject.replace(/[.*>\s/\\]/g, '_')
}

async function manager(nc: NatsConnection, stage: string, server: string, why: string): Promise<JetStreamManager> {
  try {
    return await jetstreamManager(nc)
  } catch (err) {
    const text = (err as Error).message
    const hint = /not enabled|no responders|503/i.test(text) ? ' (start nats-server with -js, or jetstream {} in its config)' : ''
    throw new FramePipeError('ERR_NETWORK', `${why} needs JetStream, which ${server} does not offer: ${text}${hint}`, { stage, cause: err })
  }
}

/**
 * Make sure a stream keeps the subject's last frames. A stream that already
 * captures the subject (made by an operator) is used as it is, unless
 * `stream=` names one: that one is created or its limits updated to ours.
 * Returns a line for the log.
 */
export async function ensureStream(nc: NatsConnection, k: KeepConfig, stage: string, server: string): Promise<string> {
  const jsm = await manager(nc, stage, server, 'keep')
  const limits: Partial<StreamConfig> = {
    max_msgs_per_subject: k.keep > 0 ? k.keep : -1,
    // Nanoseconds.
    max_age: k.keepFor * 1e6,
    max_bytes: k.keepBytes,
    discard: DiscardPolicy.Old,
  }
  const what = `${k.keep > 0 ? `the last ${k.keep} frame${k.keep === 1 ? '' : 's'}` : 'frames'}${k.keepFor > 0 ? ` of the last ${k.keepFor / 1000} s` : ''} of ${k.subject}`
  try {
    if (k.stream === '') {
      const existing = await findStream(jsm, k.subject)
      if (existing) return `JetStream stream ${existing} already keeps ${k.subject}; its limits are left as they are`
    }
    const name = k.stream === '' ? streamNameFor(k.subject) : k.stream
    const info = await jsm.streams.info(name).catch((err: Error & { code?: number }) => {
      if (err.name === 'StreamNotFoundError') return null
      throw err
    })
    if (!info) {
      await jsm.streams.add({
        name,
        subjects: [k.subject],
        storage: k.storage === 'file' ? StorageType.File : StorageType.Memory,
        num_replicas: 1,
        ...limits,
      })
      return `JetStream stream ${name} (${k.storage}) keeps ${what}`
    }
    const subjects = info.config.subjects ?? []
    await jsm.streams.update(name, {
      ...info.config,
      ...limits,
      subjects: subjects.includes(k.subject) ? subjects : [...subjects, k.subject],
    })
    return `JetStream stream ${name} updated: keeps ${what}`
  } catch (err) {
    throw new FramePipeError('ERR_NETWORK', `JetStream on ${server} refused the stream for ${k.subject}: ${(err as Error).message}`, {
      stage,
      cause: err,
    })
  }
}

async function findStream(jsm: JetStreamManager, subject: string): Promise<string | null> {
  try {
    return await jsm.streams.find(subject)
  } catch (err) {
    if ((err as Error).name === 'StreamNotFoundError') return null
    throw err
  }
}

/** Where the source starts in a stream: the last frame of each subject, or the frames of the last `preroll` ms. */
export interface ReplayConfig {
  subject: string
  stream: string
  last: boolean
  preroll: number
  /** Messages the client asks for at a time; bounds what it holds. */
  batch: number
}

/**
 * An ordered consumer of the stream that keeps `subject` (wildcards allowed):
 * it starts at the kept frames, then delivers live ones, in order, and
 * recreates itself after a gap or a reconnect. `deliver` gets every message.
 */
export async function replay(
  nc: NatsConnection,
  r: ReplayConfig,
  stage: string,
  server: string,
  deliver: (m: JsMsg) => void,
): Promise<{ stream: string; messages: ConsumerMessages }> {
  const jsm = await manager(nc, stage, server, r.last ? 'last=true' : 'preroll')
  let stream = r.stream
  try {
    if (stream === '') {
      const found = await findStream(jsm, r.subject)
      if (!found) {
        throw new FramePipeError(
          'ERR_NETWORK',
          `no JetStream stream keeps ${r.subject} on ${server}: publish with the nats sink's keep= or keepFor=, or name the stream with stream=`,
          { stage },
        )
      }
      stream = found
    }
    const consumer = await jetstream(nc).consumers.get(stream, {
      filter_subjects: r.subject,
      ...(r.last
        ? { deliver_policy: DeliverPolicy.LastPerSubject }
        : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(Date.now() - r.preroll).toISOString() }),
    })
    const messages = await consumer.consume({ max_messages: r.batch, callback: deliver })
    return { stream, messages }
  } catch (err) {
    if (err instanceof FramePipeError) throw err
    throw new FramePipeError(
      'ERR_NETWORK',
      `JetStream on ${server}: cannot read ${r.subject} from ${stream || 'its stream'}: ${(err as Error).message}`,
      { stage, cause: err },
    )
  }
}
