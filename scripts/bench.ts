// npm run bench [-- --quick] [--only <scenario>|replicas] [--profile] [--write|--no-write] [--no-e2e]
//
// Measures the relay end to end over real sockets on 127.0.0.1 and prints one table with every
// scenario side by side; a full run also rewrites the generated block of docs/benchmarks.md.
// Then the end-to-end scenarios (scripts/bench/e2e.ts): k8stail through the API server's proxy.
// Each scenario gets fresh processes: the relay (scripts/bench/relay.ts), the stream clients
// (scripts/bench/clients.ts) and the load generator (scripts/bench/loadgen.ts); all of them exit
// by themselves when the scenario ends, when this process goes away, or at a deadline.
import { type ChildProcess, fork } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { SelectionSpec } from '../api/selection.ts'
import { buildForBench } from './bench/build.ts'
import { E2E_BEGIN, E2E_END, runEndToEnd } from './bench/e2e.ts'
import { Histogram } from './bench/histogram.ts'
import {
  HOSTILE_BUDGET,
  HOSTILE_TAP,
  type HostileResult,
  hostileCell,
  startHostile,
} from './bench/hostile-scenario.ts'
import { productionNodeFlags } from './bench/production-flags.ts'
import type {
  ClientsParams,
  ClientsResult,
  ClientsStop,
  LoadgenParams,
  LoadgenResult,
  RelayReady,
  RelayStats,
} from './bench/protocol.ts'
import { benchChunks, benchPods, nowMicros } from './bench/records.ts'
import { REPLICAS_BEGIN, REPLICAS_END, runReplicasBench } from './bench/replicas.ts'

const here = path.dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const flag = (name: string): boolean => args.includes(name)
const quick = flag('--quick')
// One scenario key, or several separated by commas (e.g. --only max-1,filter-1pct,project).
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined
const onlyKeys = only?.split(',')
const profileDir = flag('--profile') ? path.join(os.tmpdir(), 'log-socket-bench-profiles') : undefined
const write = flag('--write') || (!quick && !only && !flag('--no-write'))
const PER_CHUNK = 1000
// Relay limits overriding DEFAULT_LIMITS, e.g. --relay-limits='{"queueRecords":50000}'
const relayLimitsArg = args.find((a) => a.startsWith('--relay-limits='))?.slice('--relay-limits='.length)
const relayLimits = relayLimitsArg ? (JSON.parse(relayLimitsArg) as Record<string, number>) : undefined
// The relay runs with the production Node/V8 flags (the Dockerfile's ENTRYPOINT) plus extra ones,
// e.g. --relay-flags=--max-old-space-size=96 (a later flag overrides an earlier one).
const productionFlags = productionNodeFlags(path.join(here, '..', 'Dockerfile'))
// The relay as built for the image (scripts/bench/build.ts); --typescript runs the sources instead.
const relayEntry = flag('--typescript')
  ? 'relay.ts'
  : buildForBench(path.join(here, '..'), 'scripts/bench/relay.ts')
const relayFlags = (args.find((a) => a.startsWith('--relay-flags='))?.slice('--relay-flags='.length) ?? '')
  .split(' ')
  .filter(Boolean)

interface Scenario {
  key: string
  title: string
  rate: number // records/s offered; 0 = as fast as the relay answers
  seconds: number
  warmup: number
  healthy: number
  stalled: number
  concurrency: number
  hostile?: boolean // beside it, hostile senders on another tap (scripts/bench/hostile-scenario.ts)
  selection?: SelectionSpec // every healthy listener's selection (docs/selection.md)
}

const S = (full: number, short: number): number => (quick ? short : full)
const scenarios: Scenario[] = [
  {
    key: 'max-1',
    title: 'max, 1 listener',
    rate: 0,
    seconds: S(15, 4),
    warmup: S(3, 1),
    healthy: 1,
    stalled: 0,
    concurrency: 4,
  },
  {
    key: 'max-10',
    title: 'max, 10 listeners',
    rate: 0,
    seconds: S(15, 4),
    warmup: S(3, 1),
    healthy: 10,
    stalled: 0,
    concurrency: 4,
  },
  {
    key: 'fixed-10k',
    title: '10k/s, 1 listener',
    rate: 10_000,
    seconds: S(20, 5),
    warmup: S(3, 1),
    healthy: 1,
    stalled: 0,
    concurrency: 4,
  },
  {
    key: 'fixed-20k',
    title: '20k/s, 1 listener',
    rate: 20_000,
    seconds: S(20, 5),
    warmup: S(3, 1),
    healthy: 1,
    stalled: 0,
    concurrency: 4,
  },
  {
    key: 'stalled-20k',
    title: '20k/s, 1 + 1 stalled',
    rate: 20_000,
    seconds: S(60, 8),
    warmup: S(5, 1),
    healthy: 1,
    stalled: 1,
    concurrency: 4,
  },
  {
    key: 'hostile-20k',
    title: '20k/s, 1 + 1 stalled, hostile',
    rate: 20_000,
    seconds: S(30, 8),
    warmup: S(5, 2),
    healthy: 1,
    stalled: 1,
    concurrency: 4,
    hostile: true,
  },
  // Selections at full speed, against max-1: a selective filter (n ends in 00: 1% of the records
  // pass; a regex over each record's text) and a projection of two fields.
  {
    key: 'filter-1pct',
    title: 'max, 1 listener, 1% filter',
    rate: 0,
    seconds: S(15, 4),
    warmup: S(3, 1),
    healthy: 1,
    stalled: 0,
    concurrency: 4,
    selection: { grep: ' n=[0-9]*00\\b' },
  },
  {
    key: 'project',
    title: 'max, 1 listener, projection',
    rate: 0,
    seconds: S(15, 4),
    warmup: S(3, 1),
    healthy: 1,
    stalled: 0,
    concurrency: 4,
    selection: { fields: ['message', 'kubernetes.pod_name'] },
  },
].filter((s) => !onlyKeys || onlyKeys.includes(s.key))

function helper(file: string, p: object, execArgv: string[] = []): ChildProcess {
  return fork(path.resolve(here, 'bench', file), [JSON.stringify(p)], {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
}

// The next IPC message of `type` from the child; rejects if it exits first.
function next<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: { type?: string }): void => {
      if (m.type !== type) return
      cleanup()
      resolve(m as T)
    }
    const onExit = (code: number | null): void => {
      cleanup()
      reject(new Error(`${child.spawnargs[1]} exited (${code}) before sending ${type}`))
    }
    const cleanup = (): void => {
      child.off('message', onMessage)
      child.off('exit', onExit)
    }
    child.on('message', onMessage)
    child.on('exit', onExit)
  })
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

interface Outcome {
  s: Scenario
  load: LoadgenResult
  clients: ClientsResult
  relay: RelayStats
  hostile?: HostileResult
}

async function run(s: Scenario): Promise<Outcome> {
  const execArgv = profileDir
    ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `relay-${s.key}.cpuprofile`]
    : []
  const relay = helper(
    relayEntry,
    {
      deadlineSeconds: s.seconds + 120,
      ...(relayLimits ? { limits: relayLimits } : {}),
      ...(s.hostile ? { extraTaps: [HOSTILE_TAP], memoryBudget: HOSTILE_BUDGET } : {}),
    },
    ['--expose-gc', ...productionFlags, ...relayFlags, ...execArgv],
  )
  const children: ChildProcess[] = [relay]
  try {
    const ready = await next<RelayReady>(relay, 'ready')
    const clients = helper('clients.ts', {
      streamUrl: ready.streamUrl,
      healthy: s.healthy,
      stalled: s.stalled,
      ...(s.selection ? { selection: s.selection } : {}),
    } satisfies ClientsParams)
    children.push(clients)
    await next(clients, 'ready')
    const hostile = s.hostile ? await startHostile(ready, helper, next, s.seconds + 120) : undefined
    if (hostile) children.push(hostile.child)
    const start = nowMicros() + 3e6 // the load generator builds its chunks meanwhile
    const lp: LoadgenParams = {
      ingestUrl: ready.ingestUrl,
      credential: ready.credential,
      rate: s.rate,
      seconds: s.seconds,
      measureFromSeconds: s.warmup,
      concurrency: s.concurrency,
      perChunk: PER_CHUNK,
      startAtMicros: start,
    }
    clients.send({ type: 'window', fromMicros: start + s.warmup * 1e6, toMicros: start + s.seconds * 1e6 })
    hostile?.start(start)
    const loadgen = helper('loadgen.ts', lp)
    children.push(loadgen)
    const load = await next<LoadgenResult>(loadgen, 'result')
    const hostileResult = await hostile?.stop()
    clients.send({
      type: 'stop',
      // With a selection the share delivered is not known here: the clients wait for quiet.
      expectFrames: s.selection ? Number.MAX_SAFE_INTEGER : load.measuredRecords - load.deniedInWindow,
    } satisfies ClientsStop)
    const c = await next<ClientsResult>(clients, 'result')
    relay.send({ type: 'stop' })
    const stats = await next<RelayStats>(relay, 'stats')
    await Promise.all(children.map(exited))
    return { s, load, clients: c, relay: stats, ...(hostileResult ? { hostile: hostileResult } : {}) }
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill()
  }
}

// The parse-only ceiling: the same record stream (the chunk bodies, as bytes) decoded, split into
// lines and JSON.parse'd, in this process (one core, no I/O). `preDecoded` is JSON.parse alone.
function ceiling(seconds: number): { recordsPerSec: number; mbPerSec: number; preDecoded: number } {
  const chunks = benchChunks(benchPods(60), 16, PER_CHUNK)
  const decoded = chunks.map((c) => c.body.toString('utf8').split('\n').filter(Boolean))
  const spin = (until: number, decode: boolean): { records: number; bytes: number } => {
    let records = 0
    let bytes = 0
    for (let i = 0; nowMicros() < until; i++) {
      const c = chunks[i % chunks.length]!
      const lines = decode ? c.body.toString('utf8').split('\n') : decoded[i % chunks.length]!
      for (const l of lines) if (l) JSON.parse(l)
      records += c.records
      bytes += c.body.length
    }
    return { records, bytes }
  }
  const measure = (decode: boolean): { records: number; bytes: number; el: number } => {
    spin(nowMicros() + 0.5e6, decode) // warm-up
    const t0 = nowMicros()
    const r = spin(t0 + seconds * 1e6, decode)
    return { ...r, el: (nowMicros() - t0) / 1e6 }
  }
  const pre = measure(false)
  const r = measure(true)
  return { recordsPerSec: r.records / r.el, mbPerSec: r.bytes / r.el / 1e6, preDecoded: pre.records / pre.el }
}

// --- report ---

const ms = (us: number): string => (us >= 100_000 ? (us / 1000).toFixed(0) : (us / 1000).toFixed(1))
const kps = (n: number): string => (n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0))

interface Figures {
  windowSec: number
  ingestRate: number
  ingestMBps: number
  listenerMin: number // stream records/s served to the slowest healthy listener (frames + denied)
  listenerMedian: number // the same for the median healthy listener
  framesPerSec: number // record frames/s to the slowest healthy listener
  lossPct: number // records the slowest healthy listener lost (dropped)
  latency: Histogram
  ingest: Histogram
  peakRssMB: number
  relayCpuPct: number
  cpuPerRecordUs: number // relay CPU (after startup) per ingested record
  stalledConnected: string
}

function figures(o: Outcome): Figures {
  const { load, clients, relay } = o
  const windowSec = (load.windowEndMicros - load.windowStartMicros) / 1e6
  const expectedFrames = load.measuredRecords - load.deniedInWindow
  const latency = new Histogram()
  let minFrames = Number.POSITIVE_INFINITY
  for (const h of clients.healthy) {
    latency.merge(h.latency)
    minFrames = Math.min(minFrames, h.records)
  }
  const share = expectedFrames > 0 ? minFrames / expectedFrames : 0
  const sorted = clients.healthy.map((h) => h.records).sort((a, b) => a - b)
  const medianFrames = sorted[Math.floor((sorted.length - 1) / 2)] ?? 0
  const elapsed = o.s.seconds + 3
  return {
    windowSec,
    ingestRate: load.measuredRecords / windowSec,
    ingestMBps: ((load.bytes / load.chunks) * (load.measuredRecords / PER_CHUNK)) / windowSec / 1e6,
    listenerMin: (share * load.measuredRecords) / windowSec,
    listenerMedian:
      expectedFrames > 0 ? (medianFrames / expectedFrames) * (load.measuredRecords / windowSec) : 0,
    framesPerSec: minFrames / windowSec,
    lossPct: (1 - share) * 100,
    latency,
    ingest: Histogram.from(load.ingest),
    peakRssMB: Math.max(relay.peakRssBytes, relay.maxRssBytes) / 1048576,
    relayCpuPct: ((relay.cpuMs - relay.startupCpuMs) / 1000 / elapsed) * 100,
    cpuPerRecordUs: ((relay.cpuMs - relay.startupCpuMs) * 1000) / load.records,
    stalledConnected: clients.stalled.length
      ? clients.stalled.map((x) => (x.connected ? 'open' : 'closed')).join(',')
      : '–',
  }
}

function table(ceil: { recordsPerSec: number; mbPerSec: number } | undefined, outs: Outcome[]): string {
  const fs = outs.map(figures)
  const cols = ['', ...(ceil ? ['parse-only ceiling'] : []), ...outs.map((o) => o.s.title)]
  const row = (name: string, c: string, f: (x: Figures, o: Outcome) => string): string[] => [
    name,
    ...(ceil ? [c] : []),
    ...fs.map((x, i) => f(x, outs[i]!)),
  ]
  const rate = (o: Outcome): string => (o.s.rate ? kps(o.s.rate) : 'max')
  const rows: string[][] = [
    row('offered records/s', '–', (_x, o) => rate(o)),
    row('measured seconds', '–', (x) => x.windowSec.toFixed(0)),
    row('ingested records/s', ceil ? kps(ceil.recordsPerSec) : '', (x) => kps(x.ingestRate)),
    row('ingested MB/s', ceil ? ceil.mbPerSec.toFixed(1) : '', (x) => x.ingestMBps.toFixed(1)),
    row('% of parse-only ceiling', '100%', (x) =>
      ceil ? `${((x.ingestRate / ceil.recordsPerSec) * 100).toFixed(0)}%` : '–',
    ),
    row('records/s served per listener (min)', '–', (x) => kps(x.listenerMin)),
    row('records/s served per listener (median)', '–', (x) => kps(x.listenerMedian)),
    row('record frames/s per listener (min)', '–', (x) => kps(x.framesPerSec)),
    row('records lost by a healthy listener', '–', (x) => `${x.lossPct.toFixed(1)}%`),
    row('  of which told as dropped', '–', (_x, o) =>
      kps(Math.max(...o.clients.healthy.map((h) => h.dropped))),
    ),
    row('post→arrival p50 ms', '–', (x) => ms(x.latency.percentile(0.5))),
    row('post→arrival p99 ms', '–', (x) => ms(x.latency.percentile(0.99))),
    row('post→arrival max ms', '–', (x) => ms(x.latency.max)),
    row('ingest answer p50 ms (poster)', '–', (x) => ms(x.ingest.percentile(0.5))),
    row('ingest answer p99 ms (poster)', '–', (x) => ms(x.ingest.percentile(0.99))),
    row('ingest answer max ms (poster)', '–', (x) => ms(x.ingest.max)),
    row('chunks not accepted (non-200/dropped)', '–', (_x, o) => `${o.load.non200}/${o.load.dropped}`),
    row('relay peak RSS MB', '–', (x) => x.peakRssMB.toFixed(0)),
    row('  of which anonymous / file-backed (node binary)', '–', (_x, o) =>
      o.relay.rssAtPeak
        ? `${(o.relay.rssAtPeak.anon / 1048576).toFixed(0)} / ${(o.relay.rssAtPeak.file / 1048576).toFixed(0)}`
        : '–',
    ),
    row('relay RSS MB once listening (before load)', '–', (_x, o) => {
      const k = o.relay.startupRssKinds
      const split = k ? ` (${(k.anon / 1048576).toFixed(0)} / ${(k.file / 1048576).toFixed(0)})` : ''
      return `${(o.relay.startupRssBytes / 1048576).toFixed(0)}${split}`
    }),
    row(
      'relay heap / external MB at peak',
      '–',
      (_x, o) =>
        `${(o.relay.atPeak.heapTotal / 1048576).toFixed(0)} / ${(o.relay.atPeak.external / 1048576).toFixed(0)}`,
    ),
    row('relay heap / external MB retained (after GC)', '–', (_x, o) =>
      o.relay.afterGc
        ? `${(o.relay.afterGc.heapUsed / 1048576).toFixed(0)} / ${(o.relay.afterGc.external / 1048576).toFixed(0)}`
        : '–',
    ),
    row('bytes to the listener per ingested record', '–', (_x, o) =>
      (Math.min(...o.clients.healthy.map((h) => h.bytes)) / o.load.records).toFixed(0),
    ),
    row('relay CPU (% of one core)', '–', (x) => x.relayCpuPct.toFixed(0)),
    row('relay CPU µs per ingested record', ceil ? (1e6 / ceil.recordsPerSec).toFixed(1) : '', (x) =>
      x.cpuPerRecordUs.toFixed(1),
    ),
    row('relay capacity on one whole core, records/s', ceil ? kps(ceil.recordsPerSec) : '', (x) =>
      kps(1e6 / x.cpuPerRecordUs),
    ),
    row('  as % of the parse-only ceiling', '100%', (x) =>
      ceil ? `${((1e6 / x.cpuPerRecordUs / ceil.recordsPerSec) * 100).toFixed(0)}%` : '–',
    ),
    row('loadgen / clients CPU (% of one core)', '–', (_x, o) => {
      const el = o.s.seconds + 3
      return `${(o.load.cpuMs / 10 / el).toFixed(0)} / ${(o.clients.cpuMs / 10 / el).toFixed(0)}`
    }),
    row('stalled listener', '–', (x) => x.stalledConnected),
    row('hostile senders (other tap)', '–', (_x, o) => hostileCell(o.hostile)),
  ]
  const all = [cols, ...rows]
  const widths = cols.map((_, i) => Math.max(...all.map((r) => r[i]!.length)))
  const line = (r: string[]): string =>
    `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`
  const sep = `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`
  return [line(cols), sep, ...rows.map(line)].join('\n')
}

function verdicts(ceil: { recordsPerSec: number } | undefined, outs: Outcome[]): string[] {
  const by = new Map(outs.map((o) => [o.s.key, figures(o)]))
  const out: string[] = []
  const mark = (ok: boolean): string => (ok ? 'met' : 'MISSED')
  const m1 = by.get('max-1')
  if (m1) {
    out.push(
      `- ≥ 100,000 records/s to one listener: ${kps(m1.listenerMin)}/s → ${mark(m1.listenerMin >= 100_000)}`,
    )
    if (ceil) {
      const cap = 1e6 / m1.cpuPerRecordUs
      out.push(
        `- ≥ 40% of the parse-only ceiling: ${((m1.ingestRate / ceil.recordsPerSec) * 100).toFixed(0)}% measured → ${mark(m1.ingestRate >= 0.4 * ceil.recordsPerSec)}; ` +
          `by CPU per record (capacity on a whole core) ${((cap / ceil.recordsPerSec) * 100).toFixed(0)}% → ${mark(cap >= 0.4 * ceil.recordsPerSec)}`,
      )
    }
  }
  const f10 = by.get('fixed-10k')
  if (f10)
    out.push(
      `- p99 ≤ 20 ms at 10,000 records/s: ${ms(f10.latency.percentile(0.99))} ms → ${mark(f10.latency.percentile(0.99) <= 20_000)}`,
    )
  const base = by.get('fixed-20k')
  const st = by.get('stalled-20k')
  if (st && base) {
    const change = Math.abs(st.listenerMin - base.listenerMin) / base.listenerMin
    out.push(
      `- stalled listener changes the healthy one's rate by < 10%: ${(change * 100).toFixed(1)}% → ${mark(change < 0.1)}`,
    )
  }
  // Selections: bytes to the listener fall with what is selected; CPU per record ≤ +30%.
  const ref = outs.find((o) => o.s.key === 'max-1')
  for (const o of outs.filter((x) => x.s.selection)) {
    const f = by.get(o.s.key)!
    const perRecord = (x: Outcome) => Math.min(...x.clients.healthy.map((h) => h.bytes)) / x.load.records
    const bytes = ref
      ? `${((perRecord(o) / perRecord(ref)) * 100).toFixed(1)}% of max-1's`
      : 'no max-1 to compare'
    const cpu = ref ? f.cpuPerRecordUs / by.get('max-1')!.cpuPerRecordUs - 1 : undefined
    out.push(
      `- ${o.s.title} (${JSON.stringify(o.s.selection)}): bytes to the listener per ingested record ${perRecord(o).toFixed(0)} (${bytes}); ` +
        `relay CPU per ingested record ${f.cpuPerRecordUs.toFixed(1)} µs` +
        (cpu === undefined
          ? ''
          : ` (${cpu >= 0 ? '+' : ''}${(cpu * 100).toFixed(0)}% vs max-1 → ${mark(cpu <= 0.3)})`),
    )
  }
  const normal = outs.filter((o) => !o.s.hostile)
  if (normal.length) {
    const worst = Math.max(...normal.map((o) => by.get(o.s.key)!.peakRssMB))
    out.push(
      `- peak RSS < 120 MB in every normal scenario: at most ${worst.toFixed(0)} MB → ${mark(worst < 120)}`,
    )
  }
  const h = by.get('hostile-20k')
  if (h) {
    const quiet = by.get('fixed-20k')
    if (quiet) {
      const change = Math.abs(h.listenerMin - quiet.listenerMin) / quiet.listenerMin
      out.push(
        `- hostile senders on another tap change the healthy tap's rate by < 10% (vs 20k/s, 1 listener): ${(change * 100).toFixed(1)}% → ${mark(change < 0.1)}`,
      )
    }
    const budget = HOSTILE_BUDGET / 1048576
    out.push(
      `- peak RSS under the memory budget with hostile senders: ${h.peakRssMB.toFixed(0)} MB of ${budget.toFixed(0)} MB → ${mark(h.peakRssMB < budget)}`,
    )
  }
  return out
}

function machine(loadBefore: number[], loadAfter: number[], ceil?: { preDecoded: number }): string {
  const cpus = os.cpus()
  const f = (l: number[]): string => l.map((x) => x.toFixed(2)).join(', ')
  return [
    `- CPU: ${cpus[0]?.model ?? 'unknown'}, ${cpus.length} cores (${os.availableParallelism()} available)`,
    `- memory: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB; Node ${process.version}; ${os.type()} ${os.release()}; relay Node flags (Dockerfile ENTRYPOINT): ${productionFlags.join(' ') || 'none'}`,
    `- date: ${new Date().toISOString()}; load average (1, 5, 15 min) before: ${f(loadBefore)}, after: ${f(loadAfter)}`,
    `- run: \`npm run bench${quick ? ' -- --quick' : ''}${relayFlags.length ? ` --relay-flags="${relayFlags.join(' ')}"` : ''}${relayLimitsArg ? ` --relay-limits='${relayLimitsArg}'` : ''}\`; chunks of ${PER_CHUNK} NDJSON records (600–900 bytes, 1/3 denied to the listener), keep-alive HTTP`,
    ...(ceil
      ? [
          `- parse-only ceiling = decode + split + JSON.parse of the chunk bytes; JSON.parse of pre-decoded lines alone: ${kps(ceil.preDecoded)} records/s`,
        ]
      : []),
  ].join('\n')
}

const BEGIN = '<!-- bench:begin (generated by npm run bench; edit outside this block) -->'
const END = '<!-- bench:end -->'

function writeDoc(block: string, begin = BEGIN, end = END): void {
  const file = path.join(here, '..', 'docs', 'benchmarks.md')
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    text = `# Relay benchmarks\n\n${BEGIN}\n${END}\n`
  }
  const a = text.indexOf(begin)
  const b = text.indexOf(end)
  text =
    a >= 0 && b > a
      ? `${text.slice(0, a + begin.length)}\n${block}\n${text.slice(b)}`
      : `${text}\n${begin}\n${block}\n${end}\n`
  mkdirSync(path.dirname(file), { recursive: true })
  writeFileSync(file, text)
  console.log(`wrote ${path.relative(process.cwd(), file)}`)
}

const loadBefore = os.loadavg()
const ceil = !only || onlyKeys?.includes('ceiling') ? ceiling(quick ? 1 : 3) : undefined
if (ceil)
  console.error(`parse-only ceiling: ${kps(ceil.recordsPerSec)} records/s, ${ceil.mbPerSec.toFixed(1)} MB/s`)
const outs: Outcome[] = []
for (const s of scenarios) {
  console.error(`running ${s.key} (${s.seconds} s) …`)
  outs.push(await run(s))
}
if (outs.length > 0 || ceil) {
  const block = [
    machine(loadBefore, os.loadavg(), ceil),
    '',
    table(ceil, outs),
    '',
    ...verdicts(ceil, outs),
  ].join('\n')
  console.log(block)
  if (profileDir) console.log(`relay CPU profiles in ${profileDir}`)
  if (write) writeDoc(block)
}
// Several relay processes (scripts/bench/replicas.ts), in a full run or with --only replicas.
if (!only || only === 'replicas') {
  const block = await runReplicasBench({
    quick,
    relayEntry,
    relayNodeFlags: [...productionFlags, ...relayFlags],
    helper,
    next,
    exited,
    log: (line) => console.error(line),
  })
  console.log(block)
  if (write) writeDoc(block, REPLICAS_BEGIN, REPLICAS_END)
}
if (!flag('--no-e2e')) {
  const e2e = await runEndToEnd({
    quick,
    only,
    k8stailMain: path.resolve(
      args.find((a) => a.startsWith('--k8stail='))?.slice('--k8stail='.length) ??
        path.join(here, '..', 'cli', 'main.ts'),
    ),
    relayNodeFlags: [...productionFlags, ...relayFlags],
    profileDir,
    log: (line) => console.error(line),
  })
  if (e2e) {
    console.log(e2e)
    if (write) writeDoc(e2e, E2E_BEGIN, E2E_END)
  }
}
