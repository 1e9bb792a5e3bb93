// The relay's routing core: one state per tap (ring, listeners, counters). Ingest appends to a
// tap's ring and pumps that tap's listeners right away; it never waits for them (a listener
// whose socket is full returns at once and resumes when it drains).
import { isUtf8 } from 'node:buffer'
import { randomBytes } from 'node:crypto'
import type { WebSocket } from 'ws'
import {
  combineSelections,
  EMPTY_SELECTION,
  isEmptySelection,
  type Selection,
  selectionSummary,
} from '../../api/selection.ts'
import {
  CloseCodes,
  type HelloMessage,
  type ReplicaRef,
  type ReplicasMessage,
} from '../../api/stream-protocol.ts'
import type { RelayUser } from './access.ts'
import { TapFrames } from './frames.ts'
import { Listener } from './listener.ts'
import type { RelayMemory } from './memory.ts'
import type { RelayMetrics, ShedCause, TapMetrics } from './metrics.ts'
import type { RelayLimits } from './options.ts'
import { type BodyFormat, recordMeta, splitRecords } from './records.ts'
import type { ReplicaDirectory } from './replicas.ts'
import { RecordRing } from './ring.ts'
import { ListenerSelection, membersRead } from './selection/listener-selection.ts'
import { RecordFields } from './selection/record-fields.ts'
import type { TapInfo } from './tap-directory.ts'
import type { StatusSink } from './tap-status.ts'

interface ResumeQuery {
  since?: number
  epoch?: string
  tail?: number
}

// What a listener asked for: where to start, and its own selection (api/selection.ts).
export interface StreamRequest extends ResumeQuery {
  selection?: Selection
}

// A listener's socket may hold at least this much before the relay stops writing to it; a new
// stream is refused when the listeners' memory pool cannot give it this much.
const MIN_SOCKET_HIGH_WATER = 64 * 1024

class TapState {
  readonly ring: RecordRing
  readonly frames: TapFrames
  readonly listeners = new Set<Listener>()
  // What the listeners' selections read from records, read once per record for all of them.
  readonly fields = new RecordFields()
  readonly metrics: TapMetrics
  readonly memory: RelayMemory
  info: TapInfo
  received = 0
  lastRecordTime: string | undefined

  constructor(info: TapInfo, metrics: TapMetrics, memory: RelayMemory) {
    this.info = info
    this.metrics = metrics
    this.memory = memory
    this.ring = new RecordRing((store) => memory.frames.release(store))
    this.frames = new TapFrames(memory.frames)
  }

  pump(): void {
    for (const l of this.listeners) l.pump()
  }
}

export interface HubOptions {
  metrics: RelayMetrics
  limits: RelayLimits
  memory: RelayMemory
  onStatus?: StatusSink
  replicas?: ReplicaDirectory
}

export class Hub {
  readonly epoch = randomBytes(6).toString('base64url')
  #taps = new Map<string, TapState>()
  #o: HubOptions
  #buffered = 0
  #replicasSent = '' // the ready set listeners were last told, as JSON

  constructor(o: HubOptions) {
    this.#o = o
    this.#replicasSent = JSON.stringify(o.replicas?.ready())
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
      s = new TapState(info, this.#o.metrics.tap(info.namespace, info.name), this.#o.memory)
      this.#taps.set(key, s)
    } else if (s.info.selection?.key !== info.selection?.key) {
      // The LogTap's own selection changed: its listeners reconnect and are told the new one.
      s.info = info
      for (const l of s.listeners) {
        l.markClosed()
        l.ws.close(CloseCodes.TapReconfigured, "the LogTap's selection changed")
      }
    } else if (s.info.replay !== info.replay) {
      // The LogTap's replay size changed: keep the state, use the new bound.
      s.info = info
    }
    return s
  }

  // The listener's selection combined with its tap's, compiled against what the tap reads.
  #selectionOf(s: TapState, combined: Selection): ListenerSelection | null {
    if (isEmptySelection(combined)) return null
    s.fields.want(membersRead(combined))
    s.fields.ensureCapacity(s.ring.capacity)
    return new ListenerSelection(combined, s.fields)
  }

  // Appends the records of one posted (decompressed) chunk. Returns what was accepted/skipped.
  ingest(info: TapInfo, body: Buffer, format: BodyFormat): { records: number; skipped: number } {
    const s = this.#state(info)
    let records = 0
    let bytes = 0
    const ring = s.ring
    const frames = s.frames
    const before = ring.bytes
    const utf8 = isUtf8(body)
    const fields = s.fields
    const top = fields.top
    if (top) fields.ensureCapacity(ring.capacity)
    const skipped = splitRecords(body, format, (start, end) => {
      const meta = recordMeta(body, start, end, utf8, top)
      if (!meta) return false
      const seq = ring.lastSeq + 1
      if (!frames.place(seq, body, start, end)) {
        // The rings' memory is spent: free the oldest store of the tap holding the most. Stores
        // still being written to sockets come back later; past a few tries, take one anyway.
        let placed = false
        for (let k = 0; k < 4 && !placed; k++) {
          this.#evict()
          placed = frames.place(seq, body, start, end)
        }
        if (!placed) frames.place(seq, body, start, end, true)
      }
      ring.push(frames.store!, frames.off, frames.len, end - start, meta)
      if (top) fields.store(seq, start)
      records++
      bytes += end - start
      return true
    })
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

  // `count` records posted to the tap were dropped at ingest, unread (`cause`): they take
  // sequence numbers like any record, so each listener is told of them in order.
  dropped(info: TapInfo, count: number, cause: ShedCause): void {
    const s = this.#state(info)
    s.metrics.shed(cause)
    if (count <= 0) return
    const before = s.ring.bytes
    s.ring.pushDropped(count, 'relay-overloaded', this.#bounds(s).maxRecords)
    s.metrics.dropped('relay-overloaded', count)
    this.#trim(s)
    this.#buffered += s.ring.bytes - before
    this.#o.metrics.bufferedBytes.set(this.#buffered)
    s.pump()
  }

  // `count` records of a chunk were skipped before they were split (lines too long to carry).
  skipped(info: TapInfo, count: number): void {
    const s = this.#state(info)
    s.metrics.skipped.inc(count)
    for (const l of s.listeners) l.addSkipped(count)
    s.pump()
  }

  // A poster of the tap lost its slot for sending its body too slowly.
  bodyTimedOut(info: TapInfo): void {
    this.#state(info).metrics.bodyTimeouts.inc()
  }

  // Frees the oldest frame store of the tap whose ring holds the most bytes.
  #evict(): void {
    let victim: TapState | undefined
    for (const s of this.#taps.values()) if (!victim || s.ring.bytes > victim.ring.bytes) victim = s
    if (!victim) return
    const before = victim.ring.bytes
    victim.ring.trimOldestStore()
    this.#buffered += victim.ring.bytes - before
  }

  // The ring keeps `replay` records for new clients; while anyone listens it also keeps at least
  // the per-listener queue bounds, which is how far a listener may fall behind before dropping.
  #trim(s: TapState): void {
    const { maxRecords, maxBytes } = this.#bounds(s)
    s.ring.trim(maxRecords, maxBytes)
  }

  #bounds(s: TapState): { maxRecords: number; maxBytes: number } {
    const l = this.#o.limits
    const listening = s.listeners.size > 0
    return {
      maxRecords: listening ? Math.max(s.info.replay, l.queueRecords) : s.info.replay,
      maxBytes: listening ? Math.max(l.replayBytes, l.queueBytes) : l.replayBytes,
    }
  }

  // Whether the listeners' memory pool can take one more stream.
  canAttach(): boolean {
    const p = this.#o.memory.listeners
    return p.limit - p.used >= MIN_SOCKET_HIGH_WATER
  }

  // Registers a connected client and queues its hello and replay. Call synchronously after upgrade.
  attach(info: TapInfo, ws: WebSocket, user: RelayUser, q: StreamRequest): Listener {
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
    // Its share of the listeners' pool: up to socketHighWater, at least MIN_SOCKET_HIGH_WATER.
    const pool = this.#o.memory.listeners
    const highWater = Math.max(
      MIN_SOCKET_HIGH_WATER,
      Math.min(this.#o.limits.socketHighWater, pool.limit - pool.used),
    )
    pool.take(highWater)
    const listener = new Listener(s, ws, user, start, highWater)
    const tapSelection = s.info.selection?.selection ?? EMPTY_SELECTION
    const combined = combineSelections(tapSelection, q.selection ?? EMPTY_SELECTION)
    listener.setSelection(this.#selectionOf(s, combined))
    const hello: HelloMessage = {
      type: 'hello',
      tap: `${info.namespace}/${info.name}`,
      epoch: this.epoch,
      user: user.username,
      lastSeq: last,
      replayFrom: start <= last ? start : 0,
      resumed,
      ...(isEmptySelection(combined)
        ? {}
        : { selection: selectionSummary(combined, !isEmptySelection(tapSelection)) }),
      ...this.#replicaFields(),
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

  #replicaFields(): Pick<HelloMessage, 'replica' | 'replicas'> {
    const r = this.#o.replicas
    if (!r) return {}
    const ready = r.ready()
    return ready ? { replica: r.self, replicas: ready } : { replica: r.self }
  }

  // The ready replicas may have changed: tell every listener when they did, so clients read the
  // tap from the replicas that now take fluentd's posts.
  replicasChanged(): void {
    const ready: ReplicaRef[] | undefined = this.#o.replicas?.ready()
    const json = JSON.stringify(ready)
    if (!ready || json === this.#replicasSent) return
    this.#replicasSent = json
    const message: ReplicasMessage = { type: 'replicas', replicas: ready }
    for (const l of this.listeners()) l.sendNow(message)
  }

  #detach(s: TapState, l: Listener): void {
    l.markClosed()
    l.release()
    if (!s.listeners.delete(l)) return
    this.#o.memory.listeners.give(l.highWater)
    s.metrics.listeners.dec()
    if (![...s.listeners].some((x) => x.selection)) s.fields.clear()
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
      this.#o.memory.listeners.give(l.highWater)
    }
    s.listeners.clear()
    this.#buffered -= s.ring.bytes
    s.ring.trim(0, 0)
    s.frames.close()
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
