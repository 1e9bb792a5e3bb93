// The load of the replica scenario (scripts/bench/replicas.ts): fluentd's posts for one hot tap (at
// a fixed rate or as fast as the relays answer, at most `hotConcurrency` chunks in flight) and many small taps (a fixed rate
// each), every post going to the next relay replica in turn, as the Service spreads fluentd's
// connections. Counts the records each replica took (answered 200).
import http from 'node:http'
import { basicAuthorization } from '../../api/credential.ts'
import { cpuMs, guard, params, send } from './protocol.ts'
import { benchChunks, benchPods, nowMicros, stamp } from './records.ts'

interface ReplicaTarget {
  ingestUrl: string
  credential: string
}

export interface ReplicasLoadParams {
  hot: ReplicaTarget[] // the hot tap, one entry per replica
  small: ReplicaTarget[][] // each small tap, one entry per replica
  hotConcurrency: number
  hotRate: number // records/s for the hot tap; 0: as fast as the relays answer
  smallRate: number // records/s per small tap
  perChunk: number
  smallPerChunk: number
  seconds: number
  measureFromSeconds: number
  startAtMicros: number
}

export interface ReplicasLoadResult {
  type: 'result'
  perReplica: number[] // records each replica took in the window
  perReplicaAll: number[] // and over the whole run (the relays' CPU covers it all)
  hotInWindow: number
  smallInWindow: number
  deniedInWindow: number // of the window's records, the ones the bench listener is denied
  non200: number
  dropped: number
  cpuMs: number
}

const p = params<ReplicasLoadParams>()
guard((p.seconds + 60) * 1000)

const replicas = p.hot.length
const hotChunks = benchChunks(benchPods(60), Math.max(16, p.hotConcurrency * 2), p.perChunk)
const smallChunks = benchChunks(benchPods(20, 9), 16, p.smallPerChunk, 13)
const agents = Array.from({ length: replicas }, () => new http.Agent({ keepAlive: true, maxSockets: 64 }))
const r: ReplicasLoadResult = {
  type: 'result',
  perReplica: Array(replicas).fill(0),
  perReplicaAll: Array(replicas).fill(0),
  hotInWindow: 0,
  smallInWindow: 0,
  deniedInWindow: 0,
  non200: 0,
  dropped: 0,
  cpuMs: 0,
}
const start = p.startAtMicros
const end = start + p.seconds * 1e6
const windowFrom = start + p.measureFromSeconds * 1e6
let next = 0

function post(target: ReplicaTarget[], chunk: (typeof hotChunks)[number], hot: boolean): Promise<void> {
  const replica = next++ % replicas
  const t = target[replica]!
  const sentAt = nowMicros()
  const inWindow = sentAt >= windowFrom && sentAt < end
  stamp(chunk, sentAt)
  const url = new URL(t.ingestUrl)
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        agent: agents[replica],
        headers: {
          'content-type': 'application/x-ndjson',
          'content-length': chunk.body.length,
          // fluentd's out_http sends the tap's credential as Basic auth (the relay reads the password)
          authorization: basicAuthorization('bench', t.credential),
        },
      },
      (res) => {
        const parts: Buffer[] = []
        res.on('data', (d: Buffer) => parts.push(d))
        res.on('end', () => {
          if (res.statusCode !== 200) r.non200++
          else if (Buffer.concat(parts).includes('"dropped"')) r.dropped++
          else {
            r.perReplicaAll[replica]! += chunk.records
            if (inWindow) {
              r.perReplica[replica]! += chunk.records
              r.deniedInWindow += chunk.denied
              if (hot) r.hotInWindow += chunk.records
              else r.smallInWindow += chunk.records
            }
          }
          resolve()
        })
      },
    )
    req.on('error', () => {
      r.non200++
      resolve()
    })
    req.end(chunk.body)
  })
}

const sleepUntil = (micros: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, (micros - nowMicros()) / 1000)))

await sleepUntil(start)
// The hot tap: `hotConcurrency` posting loops, each with its own chunks.
// At a fixed rate, each lane posts its next chunk when due (or as soon as its previous one is answered).
const laneInterval = p.hotRate > 0 ? ((p.perChunk * p.hotConcurrency) / p.hotRate) * 1e6 : 0
const hot = Array.from({ length: p.hotConcurrency }, async (_, lane) => {
  for (let i = 0; nowMicros() < end; i++) {
    if (laneInterval) {
      const due = start + (lane / p.hotConcurrency) * laneInterval + i * laneInterval
      if (due >= end) break
      await sleepUntil(due)
    }
    const chunk = hotChunks[(lane + i * p.hotConcurrency) % hotChunks.length]!
    await post(p.hot, chunk, true)
  }
})
// The small taps: one chunk per tap every smallPerChunk/smallRate seconds, staggered.
const interval = (p.smallPerChunk / p.smallRate) * 1e6
const small = p.small.map(async (tap, k) => {
  const inflight: Promise<void>[] = []
  for (let i = 0; ; i++) {
    const due = start + (k / p.small.length) * interval + i * interval
    if (due >= end) break
    await sleepUntil(due)
    inflight.push(post(tap, smallChunks[(k + i) % smallChunks.length]!, false))
  }
  await Promise.all(inflight)
})
await Promise.all([...hot, ...small])
for (const a of agents) a.destroy()
r.cpuMs = cpuMs()
await send(r)
process.exit(0)
