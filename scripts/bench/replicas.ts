// The replica scenario (`npm run bench -- --only replicas`): one hot tap and many small taps over
// 1, 2 and 3 relay processes. fluentd's posts go to the replicas in turn (as the Service spreads
// them) and every tap is read from every replica (as k8stail does), so each replica carries about
// 1/N of every tap. Reported: aggregate records/s taken and delivered, and each replica's CPU per
// record (its CPU time over the run, less start-up, divided by the records it took).
import type { ChildProcess } from 'node:child_process'
import os from 'node:os'
import type { RelayReady, RelayStats } from './protocol.ts'
import { nowMicros } from './records.ts'
import type { ReplicasClientsParams, ReplicasClientsResult, ReplicasClientsStop } from './replicas-clients.ts'
import type { ReplicasLoadParams, ReplicasLoadResult } from './replicas-load.ts'

export const REPLICAS_BEGIN = '<!-- bench:replicas:begin -->'
export const REPLICAS_END = '<!-- bench:replicas:end -->'

export interface ReplicasBenchDeps {
  quick: boolean
  relayEntry: string
  relayNodeFlags: string[]
  helper(file: string, p: object, execArgv?: string[]): ChildProcess
  next<T>(child: ChildProcess, type: string): Promise<T>
  exited(child: ChildProcess): Promise<void>
  log(line: string): void
}

const SMALL_TAPS = 40
const SMALL_RATE = 100 // records/s per small tap: 4,000/s together
const HOT_CONCURRENCY = 4 // chunks in flight for the hot tap, as fluentd's flush threads
const PER_CHUNK = 1000
const SMALL_PER_CHUNK = 50

const FIXED_HOT_RATE = 30_000

interface Measured {
  replicas: number
  hotRate: number // 0: max
  seconds: number // the window
  taken: number // records the replicas answered 200 for, in the window
  delivered: number // record frames the listeners got, in the window
  expectedFrames: number // taken less the records the listener is denied
  hot: number
  small: number
  perReplica: { inWindow: number; records: number; cpuMs: number; cpuUsPerRecord: number }[]
  non200: number
  dropped: number
  listenerDropped: number
}

async function runOnce(d: ReplicasBenchDeps, n: number, hotRate: number): Promise<Measured> {
  const seconds = d.quick ? 5 : 15
  const warmup = d.quick ? 1 : 3
  const small = Array.from({ length: SMALL_TAPS }, (_, i) => `small-${i}`)
  const children: ChildProcess[] = []
  try {
    const relays = Array.from({ length: n }, () =>
      d.helper(d.relayEntry, { deadlineSeconds: seconds + 120, extraTaps: small }, [
        '--expose-gc',
        ...d.relayNodeFlags,
      ]),
    )
    children.push(...relays)
    const ready = await Promise.all(relays.map((r) => d.next<RelayReady>(r, 'ready')))
    const tapsOf = (name: string) => ready.map((r) => r.taps[name]!)
    const clients = d.helper('replicas-clients.ts', {
      streams: ['tap', ...small].map((t) => tapsOf(t).map((e) => e.streamUrl)),
    } satisfies ReplicasClientsParams)
    children.push(clients)
    await d.next(clients, 'ready')
    const start = nowMicros() + 3e6
    clients.send({ type: 'window', fromMicros: start + warmup * 1e6, toMicros: start + seconds * 1e6 })
    const load = d.helper('replicas-load.ts', {
      hot: tapsOf('tap').map(({ ingestUrl, credential }) => ({ ingestUrl, credential })),
      small: small.map((t) => tapsOf(t).map(({ ingestUrl, credential }) => ({ ingestUrl, credential }))),
      hotConcurrency: HOT_CONCURRENCY,
      hotRate,
      smallRate: SMALL_RATE,
      perChunk: PER_CHUNK,
      smallPerChunk: SMALL_PER_CHUNK,
      seconds,
      measureFromSeconds: warmup,
      startAtMicros: start,
    } satisfies ReplicasLoadParams)
    children.push(load)
    const l = await d.next<ReplicasLoadResult>(load, 'result')
    const taken = l.hotInWindow + l.smallInWindow
    const expectedFrames = taken - l.deniedInWindow
    clients.send({ type: 'stop', expect: expectedFrames } satisfies ReplicasClientsStop)
    const c = await d.next<ReplicasClientsResult>(clients, 'result')
    const stats = await Promise.all(
      relays.map((r) => {
        r.send({ type: 'stop' })
        return d.next<RelayStats>(r, 'stats')
      }),
    )
    await Promise.all(children.map(d.exited))
    return {
      replicas: n,
      hotRate,
      seconds: seconds - warmup,
      taken,
      delivered: c.perTap.reduce((a, b) => a + b, 0),
      expectedFrames,
      hot: l.hotInWindow,
      small: l.smallInWindow,
      perReplica: stats.map((s, i) => {
        const cpuMs = s.cpuMs - s.startupCpuMs
        const records = l.perReplicaAll[i]!
        const inWindow = l.perReplica[i]!
        return { inWindow, records, cpuMs, cpuUsPerRecord: records ? (cpuMs * 1000) / records : 0 }
      }),
      non200: l.non200,
      dropped: l.dropped,
      listenerDropped: c.dropped,
    }
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill()
  }
}

const kps = (n: number) => `${(n / 1000).toFixed(1)}k`

export async function runReplicasBench(d: ReplicasBenchDeps): Promise<string> {
  const runs: Measured[] = []
  for (const hotRate of [0, FIXED_HOT_RATE]) {
    for (const n of [1, 2, 3]) {
      d.log(`running replicas-${n}, hot tap ${hotRate ? `${hotRate}/s` : 'max'} …`)
      runs.push(await runOnce(d, n, hotRate))
    }
  }
  const load = os.loadavg().map((x) => x.toFixed(1))
  const lines = [
    `Replicas: one hot tap (as fast as the relays answer, or ${kps(FIXED_HOT_RATE)}/s; at most ${HOT_CONCURRENCY} chunks of ${PER_CHUNK} in flight) and ` +
      `${SMALL_TAPS} small taps (${SMALL_RATE} records/s each), posts spread over the replicas in turn, every tap ` +
      `read from every replica. ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), shared with the load ` +
      `generator and the listeners; load average after: ${load.join(' ')}.`,
    '',
    '| hot tap | relay processes | records/s taken (hot + small) | delivered / expected (dropped for slow listeners) | per replica: records/s, CPU µs per record | non-200, shed chunks |',
    '| --- | --- | --- | --- | --- | --- |',
    ...runs.map(
      (r) =>
        `| ${r.hotRate ? `${kps(r.hotRate)}/s` : 'max'} | ${r.replicas} | ${kps(r.taken / r.seconds)} (${kps(r.hot / r.seconds)} + ${kps(r.small / r.seconds)}) | ` +
        `${r.delivered} / ${r.expectedFrames} (${r.listenerDropped}) | ` +
        r.perReplica
          .map((p, i) => `#${i}: ${kps(p.inWindow / r.seconds)}, ${p.cpuUsPerRecord.toFixed(1)} µs`)
          .join('; ') +
        ` | ${r.non200}, ${r.dropped} |`,
    ),
  ]
  return lines.join('\n')
}
