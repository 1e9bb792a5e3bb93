// The relay's routing core: one state per tap (ring, listeners, counters). Ingest appends to a
// tap's ring and pumps that tap's listeners right away; it never waits for them (a listener
// whose socket is full returns at once and resumes when it drains).
import { isUtf8 } from 'node:buffer'
import { randomBytes } from 'node:crypto'
import type { WebSocket } from 'ws'
import { CloseCodes, type HelloMessage } from '../../api/stream-protocol.ts'
import type { RelayUser } from './access.ts'
import { FrameStores } from './frames.ts'
import { type Entry, Listener } from './listener.ts'
import type { RelayMetrics, TapMetrics } from './metrics.ts'
import type { RelayLimits } from './options.ts'
import { type BodyFormat, recordMeta, splitRecords } from './records.ts'
import { Ring } from './ring.ts'
import type { TapInfo } from './tap-directory.ts'
import type { StatusSink } from './tap-status.ts'

export interface ResumeQuery {
  since?: number
  epoch?: string
  tail?: number
}

class TapState {
  readonly ring = new Ring<Entry>()
  readonly frames = new FrameStores()
  readonly listeners = new Set<Listener>()
  readonly metrics: TapMetrics
  info: TapInfo
  received = 0
  lastRecordTime: string | undefined

  constructor(info: TapInfo, metrics: TapMetrics) {
    this.info = info
    this.metrics = metrics
  }

  pump(): void {
    for (const l of this.listeners) l.pump()
  }
}

export interface HubOptions {
  metrics: RelayMetrics
  limits: RelayLimits
  onStatus?: StatusSink
}

export class Hub {
  readonly epoch = randomBytes(6).toString('base64url')
  #taps = new Map<string, TapState>()
  #o: HubOptions
  #buffered = 0

  constructor(o: HubOptions) {
    this.#o = o
  }

  #state(info: TapInfo): TapState {
    const key = `${info.namespace}/${info.name}`
    let s = this.#taps.get(key)
    // A tap recreated under the same name is a new tap: its sequence starts afresh.
    if (s && s.info.uid !== info.uid) {
      this.removeTap(info.namespace, info.name)
      s = undefined
    }
    if (!s) {
      s = new TapState(info, this.#o.metrics.tap(info.namespace, info.name))
      this.#taps.set(key, s)
    } else if (s.info.replay !== info.replay) {
      // The LogTap's replay size changed: keep the state, use the new bound.
      s.info = info
    }
    return s
  }

  // Appends the records of one posted (decompressed) chunk. Returns what was accepted/skipped.
  ingest(info: TapInfo, body: Buffer, format: BodyFormat): { records: number; skipped: number } {
    const s = this.#state(info)
    let records = 0
    let bytes = 0
    let skipped = 0
    const ring = s.ring
    const before = ring.bytes
    const utf8 = isUtf8(body)
    const badElements = splitRecords(body, format, (start, end) => {
      const meta = recordMeta(body, start, end, utf8)
      if (!meta) {
        skipped++
        return
      }
      // Its frame's place is filled in by `place`, without another object per record.
      const entry: Entry = {
        size: end - start,
        store: body,
        off: 0,
        len: 0,
        pod: meta.pod,
        rules: meta.rules,
      }
      s.frames.place(entry, ring.lastSeq + 1, body, start, end)
      ring.push(entry)
      records++
      bytes += end - start
    })
    skipped += badElements
    this.#trim(s)
    this.#buffered += ring.bytes - before
    this.#o.metrics.bufferedBytes.set(this.#buffered)
    if (records) {
      s.received += records
      s.lastRecordTime = new Date().toISOString()
      s.metrics.recordsIn.inc(records)
      s.metrics.bytesIn.inc(bytes)
    }
    if (skipped) {
      s.metrics.skipped.inc(skipped)
      for (const l of s.listeners) l.addSkipped(skipped)
    }
    s.pump()
    if (records) this.#report(s)
    return { records, skipped }
  }

  // The ring keeps `replay` records for new clients; while anyone listens it also keeps at least
  // the per-listener queue bounds, which is how far a listener may fall behind before dropping.
  #trim(s: TapState): void {
    const l = this.#o.limits
    const listening = s.listeners.size > 0
    const maxRecords = listening ? Math.max(s.info.replay, l.queueRecords) : s.info.replay
    const maxBytes = listening ? Math.max(l.replayBytes, l.queueBytes) : l.replayBytes
    s.ring.trim(maxRecords, maxBytes)
  }

  // Registers a connected client and queues its hello and replay. Call synchronously after upgrade.
  attach(info: TapInfo, ws: WebSocket, user: RelayUser, q: ResumeQuery): Listener {
    const s = this.#state(info)
    const ring = s.ring
    const last = ring.lastSeq
    // Only the newest `replay` records are offered to clients that are not resuming.
    const replayStart = Math.max(ring.firstSeq, last - s.info.replay + 1)
    let start = last + 1
    let resumed = false
    let gap: [number, number] | null = null
    if (q.since !== undefined && q.epoch === this.epoch) {
      start = Math.min(q.since, last) + 1
      if (start < ring.firstSeq) {
        gap = [start, ring.firstSeq - 1]
        start = ring.firstSeq
      }
      resumed = gap === null && q.since <= last
    } else if (q.since !== undefined) {
      start = replayStart // another epoch: all we still have of this one is new to the client
    } else {
      const n = Math.min(q.tail ?? this.#o.limits.replayDefault, s.info.replay)
      start = Math.max(replayStart, last - n + 1)
    }
    const listener = new Listener(s, ws, user, start, this.#o.limits.socketHighWater)
    const hello: HelloMessage = {
      type: 'hello',
      tap: `${info.namespace}/${info.name}`,
      epoch: this.epoch,
      user: user.username,
      lastSeq: last,
      replayFrom: start <= last ? start : 0,
      resumed,
    }
    listener.sendNow(hello)
    if (gap) listener.addDropped(gap[0], gap[1], 'replay-exhausted')
    s.listeners.add(listener)
    s.metrics.listeners.inc()
    ws.on('pong', () => {
      listener.alive = true
    })
    ws.on('close', () => this.#detach(s, listener))
    listener.pump()
    this.#report(s)
    return listener
  }

  #detach(s: TapState, l: Listener): void {
    l.markClosed()
    if (!s.listeners.delete(l)) return
    s.metrics.listeners.dec()
    // A listener that leaves while behind loses the rest; count it so drops are visible.
    if (l.cursor <= s.ring.lastSeq) s.metrics.dropped('slow-consumer', s.ring.lastSeq - l.cursor + 1)
    this.#report(s)
  }

  #report(s: TapState): void {
    const { namespace, name, uid } = s.info
    this.#o.onStatus?.(
      { namespace, name, uid },
      {
        listeners: s.listeners.size,
        recordsReceived: s.received,
        ...(s.lastRecordTime ? { lastRecordTime: s.lastRecordTime } : {}),
      },
    )
  }

  // The tap is gone: tell its listeners (do not reconnect), free its buffer and metric series.
  removeTap(namespace: string, name: string): void {
    const key = `${namespace}/${name}`
    const s = this.#taps.get(key)
    if (!s) return
    this.#taps.delete(key)
    for (const l of s.listeners) {
      l.sendNow({ type: 'status', phase: 'deleted', message: `LogTap ${key} was deleted` })
      l.markClosed()
      l.ws.close(CloseCodes.TapDeleted, 'tap deleted')
    }
    s.listeners.clear()
    this.#buffered -= s.ring.bytes
    this.#o.metrics.bufferedBytes.set(this.#buffered)
    this.#o.metrics.removeTap(namespace, name)
  }

  // Keepalive sweep: terminate clients that did not answer the previous ping, ping the rest.
  sweep(): void {
    for (const s of this.#taps.values())
      for (const l of s.listeners) {
        if (!l.alive) {
          l.ws.terminate()
          continue
        }
        l.alive = false
        l.ws.ping()
      }
  }

  listeners(): Listener[] {
    return [...this.#taps.values()].flatMap((s) => [...s.listeners])
  }

  // Sends what each listener can still take, then closes it with `code`.
  closeAll(code: number, reason: string): void {
    for (const l of this.listeners()) {
      l.pump()
      l.markClosed()
      l.ws.close(code, reason)
    }
  }

  stats(): { taps: number; listeners: number; bufferedBytes: number } {
    return { taps: this.#taps.size, listeners: this.listeners().length, bufferedBytes: this.#buffered }
  }
}
