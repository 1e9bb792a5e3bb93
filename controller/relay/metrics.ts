// The relay's Prometheus metrics. Labels are bounded: a tap's namespace and name (series are
// removed when the tap goes away), a drop reason from a fixed set, an HTTP status code.
// Never a user name or a pod.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { DroppedMessage } from '../../api/stream-protocol.ts'

export type DropReason = DroppedMessage['reason']

const TAP_LABELS = ['namespace', 'name'] as const

export interface TapMetrics {
  recordsIn: { inc(n: number): void }
  bytesIn: { inc(n: number): void }
  recordsOut: { inc(n: number): void }
  bytesOut: { inc(n: number): void }
  denied: { inc(n: number): void }
  skipped: { inc(n: number): void }
  dropped(reason: DropReason, n: number): void
  listeners: { inc(): void; dec(): void }
}

export interface RelayMetrics {
  tap(namespace: string, name: string): TapMetrics
  removeTap(namespace: string, name: string): void
  ingestRequest(code: number, seconds: number): void
  chunksDropped: { inc(): void }
  bufferedBytes: Gauge
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
  const dropped = new Counter({
    name: 'log_socket_records_dropped_total',
    help: 'Records a listener lost (slow-consumer, replay-exhausted), per tap.',
    labelNames: [...TAP_LABELS, 'reason'],
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
  const chunksDropped = new Counter({
    name: 'log_socket_ingest_chunks_dropped_total',
    help: 'Chunks accepted (2xx) but dropped unread because the relay was overloaded.',
    registers,
  })
  const bufferedBytes = new Gauge({
    name: 'log_socket_buffered_bytes',
    help: 'Record bytes held in replay/listener buffers, all taps.',
    registers,
  })
  const all = [recordsIn, bytesIn, recordsOut, bytesOut, denied, skipped, listeners]

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
        listeners: listeners.labels(l),
      }
    },
    removeTap(namespace, name) {
      for (const m of all) m.remove({ namespace, name })
      for (const reason of ['slow-consumer', 'replay-exhausted', 'relay-overloaded'] as const)
        dropped.remove({ namespace, name, reason })
    },
    ingestRequest(code, seconds) {
      requests.labels({ code: String(code) }).inc()
      latency.observe(seconds)
    },
    chunksDropped,
    bufferedBytes,
  }
}
