// Messages between the benchmark's orchestrator (scripts/bench.ts) and its helper processes,
// and the helpers' shared plumbing: each helper gets its parameters as JSON in argv[2], talks over
// the fork IPC channel, and exits by itself when the parent goes away or its deadline passes.

import type { SelectionSpec } from '../../api/selection.ts'
import type { HistogramData } from './histogram.ts'

export const BENCH_TOKEN = 'bench-viewer-token'

export interface RelayParams {
  deadlineSeconds: number
  extraTaps?: string[] // LogTaps besides bench/tap, in namespace bench
  memoryBudget?: number // bytes (the relay's default when absent)
}

interface TapEndpoints {
  ingestUrl: string
  streamUrl: string
  credential: string
}

// bench/tap's endpoints, and every tap's by name.
export interface RelayReady extends TapEndpoints {
  type: 'ready'
  taps: Record<string, TapEndpoints>
  opsUrl: string
}

export interface RelayStats {
  type: 'stats'
  peakRssBytes: number // sampled every 50 ms
  atPeak: { heapUsed: number; heapTotal: number; external: number; arrayBuffers: number } // when RSS peaked
  // RSS at its sampled peak split as Linux counts it (/proc/self/status): anonymous memory (heaps,
  // buffers, malloc) and file-backed pages (the node binary's code and data, shared and
  // reclaimable); null where there is no /proc.
  rssAtPeak: { anon: number; file: number } | null
  maxRssBytes: number // getrusage ru_maxrss: the process's peak
  cpuMs: number // user + system
  startupCpuMs: number // of which spent before the relay was listening (module loading)
  startupRssBytes: number // once listening, before any load
  startupRssKinds: { anon: number; file: number } | null // the same, split as rssAtPeak
  afterGc: { heapUsed: number; external: number; rss: number } | null // at the end, after a full GC
}

export interface LoadgenParams {
  ingestUrl: string
  credential: string
  rate: number // records/s; 0 = as fast as the relay answers
  seconds: number
  measureFromSeconds: number // warm-up excluded from the figures
  concurrency: number // chunks in flight (fluentd flush threads)
  perChunk: number
  startAtMicros?: number // monotonic µs at which to start (to align with the clients)
}

export interface LoadgenResult {
  type: 'result'
  chunks: number
  records: number
  measuredRecords: number // posted within the measurement window
  deniedInWindow: number // of those, records the bench listener is denied
  windowStartMicros: number
  windowEndMicros: number
  bytes: number
  non200: number
  dropped: number // chunks the relay answered {"dropped":true}
  ingest: HistogramData // post → response, per chunk, within the window
  cpuMs: number
}

export interface ClientsParams {
  streamUrl: string
  healthy: number
  stalled: number
  selection?: SelectionSpec // sent by every client (api/selection.ts)
}

export interface ClientsWindow {
  type: 'window'
  fromMicros: number
  toMicros: number
}

export interface ClientsStop {
  type: 'stop'
  expectFrames: number // record frames each healthy listener should get for the window
}

export interface ListenerResult {
  records: number // record frames whose send time lies in the window
  denied: number // records covered by denied notices (any time)
  dropped: number // records reported dropped to this listener
  latency: HistogramData // post → frame arrival, records in the window
  lastArrivalMicros: number
  bytes: number // WebSocket payload bytes received (all frames, from the hello on)
}

export interface ClientsResult {
  type: 'result'
  healthy: ListenerResult[]
  stalled: { connected: boolean; framesRead: number }[]
  cpuMs: number
}

// Parameters of a helper process, from argv[2].
export function params<T>(): T {
  const raw = process.argv[2]
  if (!raw) throw new Error('expected the parameters as JSON in argv[2]')
  return JSON.parse(raw) as T
}

// Helpers never outlive the orchestrator, nor a deadline.
export function guard(deadlineMs: number): void {
  if (!process.send) throw new Error('run me through scripts/bench.ts (fork with IPC)')
  process.on('disconnect', () => process.exit(0))
  setTimeout(() => {
    console.error(`${process.argv[1]}: deadline passed, exiting`)
    process.exit(2)
  }, deadlineMs).unref()
}

export function cpuMs(): number {
  const u = process.resourceUsage()
  return (u.userCPUTime + u.systemCPUTime) / 1000
}

export function send(m: object): Promise<void> {
  return new Promise((resolve, reject) =>
    process.send!(m, (err: Error | null) => (err ? reject(err) : resolve())),
  )
}
