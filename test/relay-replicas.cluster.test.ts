// Three relay replicas, each its own process of the controller+relay program, on the run's control
// plane: a Service in front of them, a Pod and an EndpointSlice each (local-cluster/replica-set.ts
// plays the kubelet's readiness probe), fluentd's posts spread over the ready ones as kube-proxy
// would, and `k8stail` as a user runs it, reading every replica through the API server's pod
// proxy. What a user sees: every record, whichever replica took it; a SIGKILLed replica named with
// what was lost while the stream goes on; a rolling restart of all three ending no stream; and no
// Flow referencing a missing Output at any revision. The three processes share one leader
// identity (the default, the hostname): never two leaders.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { getCluster } from '../local-cluster/cluster.ts'
import { startFluentdSender } from '../local-cluster/fluentd-sender.ts'
import { STREAM_SERVICE_PORT, startReplicaSet } from '../local-cluster/replica-set.ts'
import { samplePods } from '../local-cluster/sample-records.ts'
import { standInLogging, writeTokenKubeconfig } from '../local-cluster/stack.ts'
import { InvariantWatcher, Objects, sleep } from './controller-helpers.ts'
import { grantTapper, k8stail, until as untilRun } from './support/k8stail-user.ts'

const c = await getCluster()
const ns = await c.newNamespace('replicas')
const dir = mkdtempSync(path.join(tmpdir(), 'replicas-'))
const set = await startReplicaSet(c, { namespace: ns, count: 3 })
const names = set.replicas.map((r) => r.name)
t.teardown(async () => {
  await set.stop()
  rmSync(dir, { recursive: true, force: true })
})

// Leadership, as each replica's /metrics says, sampled all along.
let bothLead = 0
let everLed = false
let sampling = true
const leaderSampler = (async () => {
  while (sampling) {
    const leading = await Promise.all(
      set.replicas.map(async (r) => {
        if (!r.child) return false
        try {
          const res = await fetch(`http://${c.testHost.ip}:${r.ports.ops}/metrics`, {
            signal: AbortSignal.timeout(1000),
          })
          return /^log_socket_controller_leader 1$/m.test(await res.text())
        } catch {
          return false
        }
      }),
    )
    const n = leading.filter(Boolean).length
    if (n > 1) bothLead++
    if (n === 1) everLed = true
    await sleep(100)
  }
})()

const o = new Objects(c.kc, ns)
const invariant = new InvariantWatcher(c.kc, ns)
await invariant.start()
await o.create('Output', 'es', { http: { endpoint: 'http://127.0.0.1:9/' } })
await o.create('Flow', 'flow1', { match: [{ select: { labels: { app: 'shop' } } }], localOutputRefs: ['es'] })

// The user: the tapper rules, the proxy part being the pod proxy of each replica's stream port
// (what the chart grants) and the Service's, for the first connection.
const token = await grantTapper(c, ns, {
  services: [`${set.service}:${STREAM_SERVICE_PORT}`],
  pods: set.replicas.map((r) => `${r.name}:${r.ports.stream}`),
})
const kubeconfig = writeTokenKubeconfig(c, dir, token, 'viewer')

// No logging-operator here: a stand-in Logging, and the sender writes the operator's acceptance.
t.teardown(await standInLogging(c, ns))
const sender = await startFluentdSender({
  acceptOutputs: true,
  kc: c.kc,
  namespace: ns,
  clusterOutputs: false,
  activationDelayMs: 500,
  flushIntervalMs: 200,
  recordsPerChunk: 4,
  pods: samplePods(ns),
  resolve: (url) => set.route(url),
  allowHosts: [c.testHost.ip],
})
t.teardown(() => sender.stop())

// k8stail -o json: each line names the replica it came from.
const run = k8stail(kubeconfig, ns, ['-o', 'json', `${ns}/flow1`])
const { child, exit } = run
t.teardown(() => {
  child.kill('SIGKILL')
})

interface Printed {
  replica: string
  type: string
  seq?: number
  record?: unknown
}
const printed = (): Printed[] =>
  run
    .out()
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Printed)
const records = (from = 0) =>
  printed()
    .slice(from)
    .filter((p) => p.type === 'record')
const fromReplica = (list: Printed[], name: string) => list.filter((p) => p.replica === name).length

// Waits for `f`, failing with k8stail's stderr (and at once should k8stail exit).
const until = (what: string, ms: number, f: () => boolean | Promise<boolean>) => untilRun(what, ms, f, run)
const running = () => child.exitCode === null && child.signalCode === null

// Which replica a post went to (its ingest port), and the records it carried that this user may see.
const replicaOfPost = (url: string) => set.replicas.find((r) => url.includes(`:${r.ports.ingest}/`))?.name
const visible = new Set(
  samplePods(ns)
    .slice(0, 2)
    .map((p) => p.name),
)
const canon = (record: unknown) => JSON.stringify(record)

t.test('records posted to any replica reach the listener', async (t) => {
  await until('records from all three replicas', 90_000, () =>
    names.every((n) => fromReplica(records(), n) > 0),
  )
  // Every stream is open now: what is posted from here on must all be printed.
  const from = sender.posts.length
  await sleep(3000)
  const posted = sender.posts.slice(from).filter((p) => p.status === 200)
  await sleep(2000)
  const shown = new Set(records().map((p) => canon(p.record)))
  const perReplica = new Map<string, number>()
  const missing: string[] = []
  let checked = 0
  for (const post of posted) {
    const name = replicaOfPost(post.url) ?? post.url
    perReplica.set(name, (perReplica.get(name) ?? 0) + 1)
    for (const line of post.lines) {
      const record = JSON.parse(line) as { kubernetes?: { pod_name?: string } }
      if (!visible.has(record.kubernetes?.pod_name ?? '')) continue
      checked++
      if (!shown.has(canon(record))) missing.push(`${name}: ${line}`)
    }
  }
  t.ok(checked > 10, `${checked} visible records posted`)
  t.same(
    [...perReplica.keys()].sort(),
    names,
    'fluentd posts reached every replica (through the Service, round robin)',
  )
  t.same(missing.slice(0, 5), [], 'every visible record posted to any replica was printed')
  t.ok(running(), 'k8stail is streaming')
})

t.test('SIGKILL one replica: the stream goes on from the others and the gap is reported', async (t) => {
  await set.kill(1)
  const mark = printed().length
  await until('replica log-socket-1 reported gone', 30_000, () =>
    /replica log-socket-1 went away/.test(run.err()),
  )
  t.match(
    run.err(),
    /replica log-socket-1 went away \([^)]*\); records it received after #\d+ and had not sent yet are lost/,
  )
  await until('records from the two others after the kill', 30_000, () => {
    const after = records(mark)
    return fromReplica(after, 'log-socket-0') > 5 && fromReplica(after, 'log-socket-2') > 5
  })
  t.ok(running(), 'k8stail still streams')
  await set.start(1)
  const back = printed().length
  await until('log-socket-1 read again', 60_000, () => fromReplica(records(back), 'log-socket-1') > 0)
  t.match(run.err(), /replica log-socket-1 is back/, 'k8stail says the replica is back')
  t.ok(running(), 'k8stail still streams')
})

t.test('a rolling restart of all three replicas ends no stream', async (t) => {
  const errMark = run.err().length
  for (let i = 0; i < 3; i++) {
    await set.terminate(i)
    await set.start(i)
    await set.untilReady(names)
  }
  const mark = printed().length
  await until('records from all three after the roll', 60_000, () =>
    names.every((n) => fromReplica(records(mark), n) > 0),
  )
  t.ok(running(), 'k8stail is still streaming')
  const said = run.err().slice(errMark)
  for (const n of names) t.match(said, new RegExp(`replica ${n} went away`), `${n} going away was told`)
  t.notMatch(said, /are lost/, 'a graceful restart loses nothing k8stail is told of')
})

t.test('Ctrl-C ends k8stail cleanly; no Flow referenced a missing Output; never two leaders', async (t) => {
  child.kill('SIGINT')
  t.equal(await exit, 0, 'exit 0')
  t.comment(
    `what k8stail told about replicas:\n${run
      .err()
      .split('\n')
      .filter((l) => / replica /.test(l))
      .join('\n')}`,
  )
  await invariant.stop()
  t.ok(invariant.checks > 0, `flow/output revisions checked: ${invariant.checks}`)
  t.same(invariant.violations, [], 'no Flow referenced a missing Output at any revision')
  sampling = false
  await leaderSampler
  t.ok(everLed, 'one replica led')
  t.equal(bothLead, 0, 'never two leaders, though all three share one leader-election identity')
})
