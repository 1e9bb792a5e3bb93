// The relay's Prometheus metrics. Labels are bounded: a tap's namespace and name (series are
// removed when the tap goes away), a reason or cause from a fixed set, an HTTP status code, a
// memory pool. Never a user name or a pod.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { DroppedMessage } from '../../api/stream-protocol.ts'
import type { MemoryBudget, Pool } from './budget.ts'

export type DropReason = DroppedMessage['reason']
const DROP_REASONS: readonly DropReason[] = ['slow-consumer', 'replay-exhausted', 'relay-overloaded']

// Why ingest dropped a chunk unread: the tap's, the sender's or the relay's share of ingest
// slots was taken, or the memory pool for request bodies or gzip output was spent.
export type ShedCause = 'tap-slots' | 'sender-slots' | 'relay-slots' | 'memory'
const SHED_CAUSES: readonly ShedCause[] = ['tap-slots', 'sender-slots', 'relay-slots', 'memory']

// Why the relay closed a stream whose access ended.
type AccessEnd = 'token-expired' | 'unauthenticated' | 'forbidden'

const TAP_LABELS = ['namespace', 'name'] as const

export interface TapMetrics {
  recordsIn: { inc(n: number): void }
  bytesIn: { inc(n: number): void }
  recordsOut: { inc(n: number): void }
  bytesOut: { inc(n: number): void }
  denied: { inc(n: number): void }
  skipped: { inc(n: number): void }
  dropped(reason: DropReason, n: number): void
  shed(cause: ShedCause): void
  bodyTimeouts: { inc(): void }
  listeners: { inc(): void; dec(): void }
}

export interface RelayMetrics {
  tap(namespace: string, name: string): TapMetrics
  removeTap(namespace: string, name: string): void
  ingestRequest(code: number, seconds: number): void
  accessEnded(reason: AccessEnd): void
  bufferedBytes: Gauge
  // Reports each pool's limit and use at scrape time.
  watchMemory(budget: MemoryBudget, pools: Record<Exclude<keyof MemoryBudget, 'total'>, Pool>): void
}

export function createRelayMetrics(registry: Registry): RelayMetrics {
  const registers = [registry]
  const counter = (name: string, help: string) =>
    new Counter({ name: `log_socket_${name}_total`, help, labelNames: TAP_LABELS, registers })
  const recordsIn = counter('records_received', 'Records received from fluentd, per tap.')
  const bytesIn = counter('bytes_received', 'Record bytes received from fluentd (uncompressed), per tap.')
  const recordsOut = counter('records_sent', 'Records sent to listeners, per tap.')
  const bytesOut = counter('bytes_sent', 'Record bytes sent to listeners, per tap.')
  const denied = counter('records_denied', 'Records replaced by a denied notice for a listener, per tap.')
  const skipped = counter('records_skipped', 'Malformed records skipped at ingest, per tap.')
  const bodyTimeouts = counter(
    'ingest_body_timeouts',
    'Ingest requests cut off because the poster sent nothing for too long (or took too long), per tap.',
  )
  const dropped = new Counter({
    name: 'log_socket_records_dropped_total',
    help:
      'Records lost, per tap and reason: relay-overloaded once per record dropped at ingest; ' +
      'slow-consumer and replay-exhausted once per listener that lost the record.',
    labelNames: [...TAP_LABELS, 'reason'],
    registers,
  })
  const shed = new Counter({
    name: 'log_socket_ingest_chunks_dropped_total',
    help:
      'Chunks the relay did not take for want of capacity, per tap and cause: answered 200 and dropped ' +
      'unread (their records told as relay-overloaded), or 503 when gzip (fluentd sends them again).',
    labelNames: [...TAP_LABELS, 'cause'],
    registers,
  })
  const listeners = new Gauge({
    name: 'log_socket_listeners',
    help: 'Clients streaming now, per tap.',
    labelNames: TAP_LABELS,
    registers,
  })
  const requests = new Counter({
    name: 'log_socket_ingest_requests_total',
    help: 'Ingest requests by HTTP status code.',
    labelNames: ['code'],
    registers,
  })
  const latency = new Histogram({
    name: 'log_socket_ingest_duration_seconds',
    help: 'Time from an ingest request arriving to its answer.',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers,
  })
  const ended = new Counter({
    name: 'log_socket_streams_access_ended_total',
    help: 'Streams closed because access ended while they were open, by reason.',
    labelNames: ['reason'],
    registers,
  })
  const bufferedBytes = new Gauge({
    name: 'log_socket_buffered_bytes',
    help: 'Record bytes held in replay/listener buffers, all taps.',
    registers,
  })
  const memoryLimit = new Gauge({
    name: 'log_socket_memory_budget_bytes',
    help: 'The memory budget (pool="total") and the share of it each pool may use.',
    labelNames: ['pool'],
    registers,
  })
  let watched: [string, Pool][] = []
  new Gauge({
    name: 'log_socket_memory_pool_bytes',
    help: 'Bytes each memory pool holds now.',
    labelNames: ['pool'],
    registers,
    collect() {
      for (const [pool, p] of watched) this.labels({ pool }).set(p.used)
    },
  })
  new Gauge({
    name: 'log_socket_memory_pool_peak_bytes',
    help: 'The most bytes each memory pool has held at once.',
    labelNames: ['pool'],
    registers,
    collect() {
      for (const [pool, p] of watched) this.labels({ pool }).set(p.peak)
    },
  })
  const all = [recordsIn, bytesIn, recordsOut, bytesOut, denied, skipped, bodyTimeouts, listeners]

  return {
    tap(namespace, name) {
      const l = { namespace, name }
      return {
        recordsIn: recordsIn.labels(l),
        bytesIn: bytesIn.labels(l),
        recordsOut: recordsOut.labels(l),
        bytesOut: bytesOut.labels(l),
        denied: denied.labels(l),
        skipped: skipped.labels(l),
        dropped: (reason, n) => dropped.labels({ ...l, reason }).inc(n),
        shed: (cause) => shed.labels({ ...l, cause }).inc(),
        bodyTimeouts: bodyTimeouts.labels(l),
        listeners: listeners.labels(l),
      }
    },
    removeTap(namespace, name) {
      for (const m of all) m.remove({ namespace, name })
      for (const reason of DROP_REASONS) dropped.remove({ namespace, name, reason })
      for (const cause of SHED_CAUSES) shed.remove({ namespace, name, cause })
    },
    ingestRequest(code, seconds) {
      requests.labels({ code: String(code) }).inc()
      latency.observe(seconds)
    },
    accessEnded: (reason) => ended.labels({ reason }).inc(),
    bufferedBytes,
    watchMemory(budget, pools) {
      memoryLimit.labels({ pool: 'total' }).set(budget.total)
      watched = Object.entries(pools)
      for (const [pool, p] of watched) memoryLimit.labels({ pool }).set(p.limit)
    },
  }
}
