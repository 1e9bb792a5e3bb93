// The load generator: posts NDJSON chunks of records to the relay's ingest endpoint over
// keep-alive connections, as fluentd's out_http does, either at a fixed rate (records/s) or as
// fast as the relay answers with `concurrency` chunks in flight. Each chunk's records carry the
// monotonic time of the post, written in place just before the chunk is sent.
import http from 'node:http'
import { basicAuthorization } from '../../api/credential.ts'
import { Histogram } from './histogram.ts'
import { cpuMs, guard, type LoadgenParams, type LoadgenResult, params, send } from './protocol.ts'
import { benchChunks, benchPods, nowMicros, stamp } from './records.ts'

const p = params<LoadgenParams>()
guard((p.seconds + 60) * 1000)

const POOL = Math.max(16, p.concurrency * 2)
const chunks = benchChunks(benchPods(60), POOL, p.perChunk)
const free = [...chunks.keys()]
const url = new URL(p.ingestUrl)
const agent = new http.Agent({ keepAlive: true, maxSockets: p.concurrency })

const ingest = new Histogram()
const r: Omit<LoadgenResult, 'ingest' | 'cpuMs'> = {
  type: 'result',
  chunks: 0,
  records: 0,
  measuredRecords: 0,
  deniedInWindow: 0,
  windowStartMicros: 0,
  windowEndMicros: 0,
  bytes: 0,
  non200: 0,
  dropped: 0,
}

let inflight = 0
let slotWaiter: (() => void) | null = null

function post(index: number): void {
  const c = chunks[index]!
  const sentAt = nowMicros()
  // Decided on the stamped time, as the clients do.
  const inWindow = sentAt >= r.windowStartMicros && sentAt < r.windowEndMicros
  stamp(c, sentAt)
  inflight++
  r.chunks++
  r.records += c.records
  r.bytes += c.body.length
  if (inWindow) {
    r.measuredRecords += c.records
    r.deniedInWindow += c.denied
  }
  const req = http.request(
    {
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'POST',
      agent,
      headers: {
        'content-type': 'application/x-ndjson',
        'content-length': c.body.length,
        authorization: basicAuthorization('bench', p.credential),
      },
    },
    (res) => {
      const parts: Buffer[] = []
      res.on('data', (d: Buffer) => parts.push(d))
      res.on('end', () => {
        if (inWindow) ingest.record(nowMicros() - sentAt)
        if (res.statusCode !== 200) r.non200++
        else if (Buffer.concat(parts).includes('"dropped"')) r.dropped++
        done(index)
      })
    },
  )
  req.on('error', (err) => {
    console.error(`loadgen: ${err.message}`)
    r.non200++
    done(index)
  })
  req.end(c.body)
}

function done(index: number): void {
  inflight--
  free.push(index)
  const w = slotWaiter
  slotWaiter = null
  w?.()
}

function slot(): Promise<void> {
  if (inflight < p.concurrency && free.length > 0) return Promise.resolve()
  return new Promise<void>((resolve) => {
    slotWaiter = resolve
  }).then(slot)
}

const sleepUntil = (micros: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, (micros - nowMicros()) / 1000)))

// The window is fixed by startAtMicros (the clients use the same one), even if we start late.
const start = p.startAtMicros ?? nowMicros()
if (nowMicros() > start) console.error(`loadgen: started ${((nowMicros() - start) / 1e6).toFixed(1)} s late`)
await sleepUntil(start)
const end = start + p.seconds * 1e6
r.windowStartMicros = start + p.measureFromSeconds * 1e6
r.windowEndMicros = end
const interval = p.rate > 0 ? (p.perChunk / p.rate) * 1e6 : 0
for (let i = 0; ; i++) {
  const due = start + i * interval
  if (due >= end) break
  if (interval) await sleepUntil(due)
  await slot()
  const t = nowMicros()
  if (t >= end) break
  post(free.shift()!)
}
while (inflight > 0) await new Promise<void>((resolve) => (slotWaiter = resolve))
agent.destroy()
await send({ ...r, ingest: ingest.toJSON(), cpuMs: cpuMs() } satisfies LoadgenResult)
process.exit(0)
