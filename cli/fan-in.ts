// Reading a tap from every relay replica at once. The relay may run as several replicas behind one
// Service, each ingesting the chunks the Service gives it, so a tap's records are spread over
// them. The first stream goes through the Service (the API server's service proxy), as a single
// relay's would; its hello names the replica that answered and the ready replicas. Then there is
// one stream per ready replica, each addressed to its replica through the API server's pod proxy,
// merged into one output. Sequence numbers, epoch and resume are per replica; every loss, and
// every replica that goes away or comes back, is told with the replica's name. A relay that names
// no replica is a single relay: its one stream is all there is, exactly as before replicas.
import type { ReplicaRef } from '../api/stream-protocol.ts'
import { K8stailError } from './errors.ts'
import {
  type NoticeMessage,
  type ResumeState,
  type StreamEnd,
  type StreamOptions,
  streamTap,
} from './relay-client.ts'

export interface FanInHandlers {
  // As StreamHandlers, with the replica the record or message came from (undefined: a single relay).
  record(seq: number, bytes: Buffer, frame: Buffer, replica: string | undefined): void
  message(msg: NoticeMessage, frame: Buffer, replica: string | undefined): void
  flush?(): Promise<void> | undefined
  notice(line: string): void
  debug?(line: string): void
}

export interface FanInOptions extends StreamOptions {
  // o.url: the stream through the Service. replicaUrl: the stream of one replica.
  replicaUrl(r: ReplicaRef): URL
}

interface ReplicaStream {
  name: string | undefined // undefined: the first stream, until its hello names its replica
  ref: ReplicaRef | undefined
  state: ResumeState // epoch and last seq of this replica, kept across its streams
  running: boolean
  connected: boolean // got a hello and has not lost the connection since
  abrupt: boolean // a connection was lost without the relay saying it is shutting down
  why: string // how the last connection was lost
  abort: AbortController
}

export async function streamReplicas(o: FanInOptions, h: FanInHandlers): Promise<StreamEnd> {
  const streams = new Map<string, ReplicaStream>() // by replica name, once known
  let ready = new Map<string, ReplicaRef>() // the newest ready set any replica told us
  let fanIn = false // a relay named its replica: there may be several
  let settle!: (end: StreamEnd | { error: unknown }) => void
  const finished = new Promise<StreamEnd | { error: unknown }>((r) => {
    settle = r
  })
  let running = 0
  let lastError: unknown
  let tapDeleted = false

  const names = (): string =>
    [...streams.values()]
      .filter((s) => s.running)
      .map((s) => s.name)
      .join(', ')
  const label = (s: ReplicaStream) => (fanIn && s.name ? `replica ${s.name}: ` : '')
  const othersConnected = (s: ReplicaStream) => [...streams.values()].some((x) => x !== s && x.connected)

  // A new set of ready replicas: read from each of them (the first set quietly).
  let first = true
  const setReady = (list: ReplicaRef[]): void => {
    ready = new Map(list.map((r) => [r.name, r]))
    const quiet = first
    first = false
    for (const r of list) {
      const s = streams.get(r.name)
      if (!s) {
        start(newStream(r), o.replicaUrl(r))
        if (!quiet) h.notice(`replica ${r.name} is ready; reading from ${names()}`)
      } else {
        s.ref = r
        if (!s.running && !tapDeleted) {
          start(s, o.replicaUrl(r))
          h.notice(`replica ${r.name} is back; reading from ${names()}`)
        }
      }
    }
  }

  const newStream = (ref: ReplicaRef | undefined): ReplicaStream => {
    const s: ReplicaStream = {
      name: ref?.name,
      ref,
      state: { epoch: undefined, lastSeq: 0 },
      running: false,
      connected: false,
      abrupt: false,
      why: '',
      abort: new AbortController(),
    }
    if (ref) streams.set(ref.name, s)
    return s
  }

  const start = (s: ReplicaStream, url: URL): void => {
    s.running = true
    s.abort = new AbortController()
    const signal = AbortSignal.any([o.signal, s.abort.signal])
    running++
    const replica = () => (fanIn ? s.name : undefined)
    streamTap(
      {
        ...o,
        url,
        signal,
        state: s.state,
        nextUrl: () => (fanIn && s.ref ? o.replicaUrl(s.ref) : o.url),
        afterLoss: (why, graceful) => {
          s.connected = false
          s.why = why
          if (!graceful) s.abrupt = true
          if (!fanIn || !s.name) return undefined
          if (ready.has(s.name)) return 'retry'
          // Not among the ready replicas: it is going or gone. Keep trying it only while no
          // other replica is there to read from (a single replica restarting, say).
          return othersConnected(s) ? 'left' : 'retry'
        },
      },
      {
        record: (seq, bytes, frame) => h.record(seq, bytes, frame, replica()),
        message: (msg, frame) => {
          if (msg.type === 'hello') {
            s.connected = true
            s.abrupt = false
            if (msg.replica && !s.name) {
              // The first stream: now we know which replica it reads.
              fanIn = true
              s.name = msg.replica.name
              s.ref = msg.replica
              streams.set(s.name, s)
              if (msg.replicas) h.debug?.(`relay replicas: ${msg.replicas.map((r) => r.name).join(', ')}`)
            }
            if (msg.replica && fanIn) s.ref = msg.replica
            if (msg.replicas && fanIn) setReady(msg.replicas)
          } else if (msg.type === 'replicas' && fanIn) setReady(msg.replicas)
          h.message(msg, frame, replica())
        },
        ...(h.flush ? { flush: h.flush } : {}),
        notice: (line) => h.notice(`${label(s)}${line}`),
        ...(h.debug ? { debug: (line: string) => h.debug!(`${label(s)}${line}`) } : {}),
      },
    ).then(
      (end) => ended(s, end),
      (error: unknown) => ended(s, { error }),
    )
  }

  const ended = (s: ReplicaStream, end: StreamEnd | { error: unknown }): void => {
    s.running = false
    s.connected = false
    running--
    if (end === 'tap-deleted') {
      tapDeleted = true
      for (const x of streams.values()) x.abort.abort()
      settle('tap-deleted')
      return
    }
    if (end === 'aborted' && o.signal.aborted) {
      if (running === 0) settle('aborted')
      return
    }
    if (typeof end === 'object') {
      // Forbidden (a refused token, or no pods/proxy for this replica) ends only this replica's
      // stream while others are read: a replica scaled past what the tapper role names, say.
      const forbidden = end.error instanceof K8stailError && end.error.exitCode === 4
      lastError = end.error
      if (running === 0 || (forbidden && !fanIn)) {
        for (const x of streams.values()) x.abort.abort()
        settle({ error: end.error })
        return
      }
      const text = end.error instanceof Error ? end.error.message : String(end.error)
      h.notice(`${label(s)}${text}; reading from ${names()} until it is ready again`)
      return
    }
    if (end === 'left') {
      // A replica's ring dies with it: what it took from fluentd after the last record it sent
      // us is gone (fluentd retries only the posts it got no answer for, through the others).
      const lost = s.abrupt
        ? `; records it received after #${s.state.lastSeq} and had not sent yet are lost`
        : ''
      if (running > 0) {
        h.notice(`replica ${s.name} went away (${s.why})${lost}; reading from ${names()}`)
        return
      }
      // The others went too, meanwhile: keep trying this one rather than stop reading.
      h.notice(`replica ${s.name} went away (${s.why})${lost}; no replica left to read from, retrying`)
      if (s.ref) {
        start(s, o.replicaUrl(s.ref))
        return
      }
    }
    if (running === 0) settle(lastError !== undefined ? { error: lastError } : end)
  }

  start(newStream(undefined), o.url)
  const end = await finished
  if (typeof end === 'object') throw end.error
  return end
}
