// Everything the relay is configured with. The program (controller/program/program.ts) builds
// this once from its configuration; nothing below reads process.env.
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import type { RelayAuth } from './access.ts'
import type { ReplicaDirectory } from './replicas.ts'
import type { TapDirectory } from './tap-directory.ts'
import type { StatusSink } from './tap-status.ts'

// Bounds of one relay. The byte bounds are caps: the memory budget (budget.ts) may make them
// smaller, never larger.
export interface RelayLimits {
  maxBodyBytes: number // posted (possibly compressed) chunk; larger → 413
  maxDecompressedBytes: number // a gzip chunk inflating past this → 413 (bomb guard)
  // Ingest requests in progress, in all, per tap and per sender (remote address); past a share,
  // a chunk is answered 200 and dropped, and its records are reported to the tap's listeners.
  maxInflightChunks: number
  maxInflightPerTap: number // default: a quarter of maxInflightChunks
  maxInflightPerSender: number // default: half of maxInflightChunks
  bodyIdleMs: number // a poster that sends no byte of its body for this long loses its slot
  bodyMaxMs: number // nor may a body take longer than this in all
  queueRecords: number // how far (records) a listener may fall behind before it loses the oldest
  queueBytes: number // same, in record bytes
  replayBytes: number // byte bound of each tap's replay buffer (spec.replay bounds the records)
  replayDefault: number // records replayed to a client that asks for neither since nor tail
  socketHighWater: number // bytes queued in one client's socket before we stop writing to it
  pingIntervalMs: number // keepalive: a client that misses one ping interval is dropped
  accessRecheckMs: number // an open stream's token and access are checked again this often
  shutdownGraceMs: number // how long closing clients may take before they are cut off
  // At shutdown, how long the relay keeps serving after /readyz starts failing, so the Service's
  // endpoints (kube-proxy) stop sending it posts before it stops taking them.
  shutdownDelayMs: number
}

const DEFAULT_LIMITS: Omit<RelayLimits, 'maxInflightPerTap' | 'maxInflightPerSender'> = {
  maxBodyBytes: 16 * 1024 * 1024,
  maxDecompressedBytes: 64 * 1024 * 1024,
  maxInflightChunks: 64,
  bodyIdleMs: 5_000,
  bodyMaxMs: 30_000,
  queueRecords: 10_000,
  queueBytes: 16 * 1024 * 1024,
  replayBytes: 32 * 1024 * 1024,
  replayDefault: 0,
  socketHighWater: 256 * 1024,
  pingIntervalMs: 30_000,
  accessRecheckMs: 60_000,
  shutdownGraceMs: 5_000,
  shutdownDelayMs: 0,
}

export interface RelayOptions {
  logger: Logger
  registry: Registry
  taps: TapDirectory
  ingestKey: Uint8Array
  auth: RelayAuth
  onStatus?: StatusSink
  // This replica and its peers, when the relay runs as replicas behind one Service; streams then
  // say which replica they come from and which replicas are ready (api/stream-protocol.ts).
  replicas?: ReplicaDirectory
  // Extra readiness beyond "tap directory synced", e.g. leader election state known.
  ready?: () => boolean
  limits?: Partial<RelayLimits>
  memoryBudget?: number // bytes the relay's process may use in all (budget.ts); default DEFAULT_BUDGET
  host?: string // default 0.0.0.0 (probes and the service proxy reach the pod IP)
  ingestPort?: number // default 10000
  streamPort?: number // default 10001
  opsPort?: number // default 8080
}

export function limitsOf(o: Pick<RelayOptions, 'limits'>): RelayLimits {
  const l = { ...DEFAULT_LIMITS, ...o.limits }
  return {
    ...l,
    maxInflightPerTap: o.limits?.maxInflightPerTap ?? Math.ceil(l.maxInflightChunks / 4),
    maxInflightPerSender: o.limits?.maxInflightPerSender ?? Math.ceil(l.maxInflightChunks / 2),
  }
}
