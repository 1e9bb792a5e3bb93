// The relay under test, in its own process: the LogTap `bench/tap` (and any `extraTaps`) in a
// plain-object directory, a fixed token for system:serviceaccount:bench:viewer, every port on
// 127.0.0.1 (or on `host`, the test host the end-to-end scenarios reach through the API server),
// the given memory budget. On {type:'stop'}
// it reports its peak RSS and CPU time, closes and exits. Run with --cpu-prof to profile it.
import { randomBytes, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { tapCredential } from '../../api/credential.ts'
import { ingestPath, streamPath } from '../../api/logtap.ts'
import type { RelayLimits } from '../../controller/relay/options.ts'
import { startRelay } from '../../controller/relay/server.ts'
import type { TapDirectory, TapInfo } from '../../controller/relay/tap-directory.ts'
import {
  BENCH_TOKEN,
  cpuMs,
  guard,
  params,
  type RelayParams,
  type RelayReady,
  type RelayStats,
  send,
} from './protocol.ts'
import { BENCH_USER } from './records.ts'

const p = params<RelayParams & { limits?: Partial<RelayLimits>; host?: string }>()
guard(p.deadlineSeconds * 1000)

const tapOf = (name: string): TapInfo => ({
  namespace: 'bench',
  name,
  uid: randomUUID(),
  replay: 1000,
  deleting: false,
})
const tap = tapOf('tap')
const all = new Map([tap, ...(p.extraTaps ?? []).map(tapOf)].map((x) => [x.name, x]))
const taps: TapDirectory = {
  get: (ns, name) => (ns === 'bench' ? all.get(name) : undefined),
  onRemoved: () => {},
  synced: () => true,
}
const key = randomBytes(32)
const relay = await startRelay({
  logger: pino({ level: 'warn' }),
  registry: new Registry(),
  taps,
  ingestKey: key,
  auth: {
    authenticate: async (token) => (token === BENCH_TOKEN ? { username: BENCH_USER, groups: [] } : null),
    mayGetTap: async (user) => user.username === BENCH_USER,
  },
  ...(p.limits ? { limits: p.limits } : {}),
  ...(p.memoryBudget ? { memoryBudget: p.memoryBudget } : {}),
  host: p.host ?? '127.0.0.1',
  ingestPort: 0,
  streamPort: 0,
  opsPort: 0,
})

const startupCpu = cpuMs()
const startupRss = process.memoryUsage.rss()
let peak = 0
let atPeak = process.memoryUsage()
let rssAtPeak: RelayStats['rssAtPeak'] = null
const sample = (): void => {
  const m = process.memoryUsage()
  if (m.rss > peak) {
    peak = m.rss
    atPeak = m
    rssAtPeak = rssKinds()
  }
}
// Read only when RSS reaches a new peak, which after the first seconds is rare.
function rssKinds(): RelayStats['rssAtPeak'] {
  try {
    const status = readFileSync('/proc/self/status', 'utf8')
    const kB = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024
    const anon = kB('RssAnon')
    const file = kB('RssFile')
    return Number.isFinite(anon) && Number.isFinite(file) ? { anon, file } : null
  } catch {
    return null
  }
}
const startupRssKinds = rssKinds()
const sampler = setInterval(sample, 50)
process.on('message', async (m: { type?: string }) => {
  if (m.type !== 'stop') return
  clearInterval(sampler)
  sample()
  // With --expose-gc: what is really retained, as opposed to garbage not yet collected.
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  const after = process.memoryUsage()
  const u = process.resourceUsage()
  const stats: RelayStats = {
    type: 'stats',
    peakRssBytes: peak,
    atPeak: {
      heapUsed: atPeak.heapUsed,
      heapTotal: atPeak.heapTotal,
      external: atPeak.external,
      arrayBuffers: atPeak.arrayBuffers,
    },
    rssAtPeak,
    maxRssBytes: u.maxRSS * 1024,
    cpuMs: (u.userCPUTime + u.systemCPUTime) / 1000,
    startupCpuMs: startupCpu,
    startupRssBytes: startupRss,
    startupRssKinds,
    afterGc: gc ? { heapUsed: after.heapUsed, external: after.external, rss: after.rss } : null,
  }
  await send(stats)
  await relay.close()
  process.exit(0)
})

const endpoints = (x: TapInfo) => ({
  ingestUrl: `${relay.addresses.ingest}${ingestPath(x.namespace, x.name)}`,
  streamUrl: `${relay.addresses.stream.replace(/^http/, 'ws')}${streamPath(x.namespace, x.name)}`,
  credential: tapCredential(key, x.namespace, x.name, x.uid),
})
const ready: RelayReady = {
  type: 'ready',
  ...endpoints(tap),
  taps: Object.fromEntries([...all.values()].map((x) => [x.name, endpoints(x)])),
  opsUrl: relay.addresses.ops,
}
await send(ready)
