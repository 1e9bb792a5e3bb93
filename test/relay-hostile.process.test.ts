// The relay in its own process under a hostile mix, over real sockets: 64 slow posters and 16
// senders of gzip bombs on one tap, a stalled listener on another, while that other tap's
// fluentd-shaped posts (10,000 records/s) keep being taken and its healthy listener gets every
// record. The relay's memory stays under its budget all along.
import { type ChildProcess, fork } from 'node:child_process'
import http from 'node:http'
import path from 'node:path'
import t from 'tap'
import { basicAuthorization } from '../api/credential.ts'
import type { StreamMessage } from '../api/stream-protocol.ts'
import { MiB } from '../controller/relay/budget.ts'
import { buildForBench } from '../scripts/bench/build.ts'
import { startHostileLoad } from '../scripts/bench/hostile-load.ts'
import { productionNodeFlags } from '../scripts/bench/production-flags.ts'
import { BENCH_TOKEN, type RelayParams, type RelayReady, type RelayStats } from '../scripts/bench/protocol.ts'
import { benchChunks, benchPods } from '../scripts/bench/records.ts'
import { connect } from './support/relay.ts'

const root = path.resolve(import.meta.dirname, '..')
const BUDGET = 192 * MiB

function next<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: { type?: string }) => {
      if (m.type !== type) return
      child.off('exit', onExit)
      child.off('message', onMessage)
      resolve(m as T)
    }
    const onExit = (code: number | null) => reject(new Error(`relay exited (${code}) before ${type}`))
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

// The relay's memory is measured as it runs in production: without the coverage instrumentation
// (V8 coverage, tap's process-info hooks) that `npm test` puts in every child's environment.
function withoutCoverage(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(env).filter(([k]) => !/^(NODE_V8_COVERAGE|NODE_OPTIONS)$|^_?TAPJS|^TAP_/.test(k)),
  )
}

t.test(
  'slow posters, gzip bombs and a stalled listener: the healthy tap is served, memory stays under budget',
  async (t) => {
    const params: RelayParams & { limits: object } = {
      deadlineSeconds: 120,
      extraTaps: ['hostile'],
      memoryBudget: BUDGET,
      limits: { bodyIdleMs: 2000 },
    }
    // Compiled as the image runs it: type stripping would add ~30 MB of RSS outside the budget.
    const entry = buildForBench(root, 'scripts/bench/relay.ts', 'log-socket-hostile-test')
    const relay = fork(entry, [JSON.stringify(params)], {
      execArgv: productionNodeFlags(path.join(root, 'Dockerfile')),
      env: withoutCoverage(process.env),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    t.teardown(() => {
      if (relay.exitCode === null) relay.kill()
    })
    const ready = await next<RelayReady>(relay, 'ready')
    const healthy = await connect(ready.streamUrl, BENCH_TOKEN)
    const stalled = await connect(ready.streamUrl, BENCH_TOKEN)
    await stalled.until((m) => m.length === 1)
    stalled.ws.pause() // reads nothing more

    const hostileTap = ready.taps['hostile']!
    const hostile = startHostileLoad({
      ingestUrl: hostileTap.ingestUrl,
      credential: hostileTap.credential,
      slowPosters: 64,
      bombs: 16,
    })
    t.teardown(() => hostile.stop())

    // The healthy tap's fluentd: one keep-alive connection, a 1,000-record chunk every 100 ms.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    t.teardown(() => agent.destroy())
    const chunks = benchChunks(benchPods(60), 8, 1000)
    const post = (body: Buffer) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(ready.ingestUrl, {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/x-ndjson',
            'content-length': body.length,
            authorization: basicAuthorization('bench', ready.credential),
          },
        })
        req.on('response', (res) => {
          let text = ''
          res.on('data', (d: Buffer) => {
            text += d.toString()
          })
          res.on('end', () => resolve({ status: res.statusCode!, body: text }))
        })
        req.on('error', reject)
        req.end(body)
      })
    await new Promise((resolve) => setTimeout(resolve, 1000)) // the hostile senders are at it
    const posted = 80
    let taken = 0
    const started = Date.now()
    for (let i = 0; i < posted; i++) {
      const due = started + i * 100
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now())))
      const answer = await post(chunks[i % chunks.length]!.body)
      t.equal(answer.status, 200, `chunk ${i}`, { diagnostic: false })
      if (answer.body === '{"records":1000,"skipped":0}') taken++
      else t.fail(`chunk ${i} answered ${answer.body}`)
    }
    t.equal(taken, posted, 'every chunk of the healthy tap was taken')
    const served = (m: StreamMessage[]) =>
      m.reduce((n, x) => n + (x.type === 'record' ? 1 : x.type === 'denied' ? x.count : 0), 0)
    await healthy.until((m) => served(m) === posted * 1000, 30_000)
    t.same(
      healthy.messages.filter((m) => m.type === 'dropped'),
      [],
      'the healthy listener lost nothing',
    )

    const counts = hostile.stop()
    t.ok(counts.slowCut >= 64, `slow posters were cut off and came back (${counts.slowCut} cut)`)
    t.ok((counts.bombAnswers['413'] ?? 0) > 0, `bombs refused: ${JSON.stringify(counts.bombAnswers)}`)
    t.notOk(counts.bombAnswers['500'], 'no bomb broke the relay')

    const metrics = await (await fetch(`${ready.opsUrl}/metrics`)).text()
    const gauge = (name: string, pool: string) =>
      Number(new RegExp(`${name}\\{pool="${pool}"\\} (\\d+)`).exec(metrics)?.[1])
    t.ok(gauge('log_socket_memory_pool_peak_bytes', 'inflate') > 0, 'the bombs pressed on the inflate pool')
    for (const pool of ['inflight', 'inflate', 'listeners'])
      t.ok(
        gauge('log_socket_memory_pool_peak_bytes', pool) <= gauge('log_socket_memory_budget_bytes', pool),
        `the ${pool} pool never went past its share`,
      )
    relay.send({ type: 'stop' })
    const stats = await next<RelayStats>(relay, 'stats')
    const peak = Math.max(stats.peakRssBytes, stats.maxRssBytes)
    t.comment(
      `relay RSS ${(stats.startupRssBytes / MiB).toFixed(0)} MiB once listening, peak ${(peak / MiB).toFixed(0)} MiB ` +
        `(heap ${(stats.atPeak.heapTotal / MiB).toFixed(0)}, external ${(stats.atPeak.external / MiB).toFixed(0)})`,
    )
    t.ok(peak < BUDGET, `peak RSS ${(peak / MiB).toFixed(0)} MiB < budget ${BUDGET / MiB} MiB`)
    healthy.ws.close()
    stalled.ws.terminate()
  },
)
