// npm run demo — log-socket end to end on this machine, in one command:
// a local control plane (the test harness's), the controller+relay, a sample Flow, lively records
// from a few pods (some allowed, some denied by their RBAC labels), and k8stail streaming it all
// through the API server's service proxy. Ctrl-C cleans everything up.
// When the real pipeline is beside the repository (../shared/real-pipeline), the real
// logging-operator renders the Flow and real fluentd runs it, so the records truly pass through the
// Flow's filters into the tap; otherwise a fluentd-faithful sender posts them. The demo says which.
//
//   npm run demo                              embedded local cluster (needs root: a network namespace)
//   npm run demo -- --for 30s                 stop by itself after 30 s
//   npm run demo -- --cluster current         use your kubeconfig's current cluster (chart installed)
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { CustomObjectsApi, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node'
import { KINDS, resourceOf } from '../api/kinds.ts'
import { GROUP, PLURAL } from '../api/logtap.ts'
import {
  type ClusterState,
  startCluster,
  stopCluster,
  type TestCluster,
  view,
} from '../local-cluster/cluster.ts'
import { followFlows, type LiveFluentd } from '../local-cluster/real-pipeline/live-fluentd.ts'
import { accepted, createLogging, waitForStatus } from '../local-cluster/real-pipeline/logging.ts'
import { startPipeline } from '../local-cluster/real-pipeline/pipeline.ts'
import {
  containerdRecord,
  type FakePod,
  type MessageFn,
  samplePods,
} from '../local-cluster/sample-records.ts'
import { type LogSocket, startLogSocket, startStack, writeTokenKubeconfig } from '../local-cluster/stack.ts'

const repoRoot = path.resolve(import.meta.dirname, '..')
const say = (line: string) => process.stderr.write(`\x1b[2m[demo]\x1b[0m ${line}\n`)

const { values } = parseArgs({
  options: {
    cluster: { type: 'string', default: 'local' },
    for: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
})
if (values.help) {
  process.stdout.write(`npm run demo [-- --for <duration>] [-- --cluster current]

  --cluster local     (default) start a local control plane, the controller+relay and a sample Flow
                      on this machine (root needed), records through the real logging-operator and
                      fluentd when ../shared/real-pipeline is there (else a fluentd-faithful sender),
                      then run k8stail on it
  --cluster current   the kubeconfig's current cluster: it must run logging-operator and the
                      log-socket chart; a demo namespace with a log generator and a Flow is created
  --for <duration>    stop after this long (e.g. 30s); default: until Ctrl-C
`)
  process.exit(0)
}

function k8stail(args: string[]): ChildProcess {
  return spawn(
    path.join(repoRoot, 'node_modules', '.bin', 'node'),
    [path.join(repoRoot, 'cli', 'main.ts'), ...args, ...(values.for ? ['--for', values.for] : [])],
    { stdio: 'inherit' },
  )
}

// Ctrl-C reaches k8stail too (same process group): it deletes its tap, then we clean up the rest.
let interrupted = false
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (interrupted) process.exit(130)
    interrupted = true
    say('stopping (Ctrl-C again to abandon the clean-up)')
  })
}

const exited = (child: ChildProcess) => new Promise<number>((r) => child.on('exit', (code) => r(code ?? 1)))

// A lively shop: allowed (policy or an explicit rule for the viewer) and denied pods.
function demoPods(ns: string): FakePod[] {
  return samplePods(ns).map((p) => ({ ...p, labels: { ...p.labels, 'app.kubernetes.io/part-of': 'shop' } }))
}

// The sample Flow: every shop pod, minus checkout's chatty "cart updated" lines (a grep filter).
const flowSpec = {
  match: [{ select: { labels: { 'app.kubernetes.io/part-of': 'shop' } } }],
  filters: [{ grep: { exclude: [{ key: 'message', pattern: '/cart updated/' }] } }],
  localOutputRefs: ['discard'],
}

const lines: Record<string, ((i: number) => object)[]> = {
  checkout: [
    (i) => ({ level: 'info', msg: 'order placed', order_id: `A-${1000 + i}`, items: 1 + (i % 4) }),
    (i) => ({ level: 'info', msg: 'cart updated', cart_id: `c-${(i * 7919) % 10000}` }),
    (i) => ({ level: 'warn', msg: 'slow dependency', dependency: 'inventory', latency_ms: 800 + (i % 500) }),
  ],
  payments: [
    (i) => ({ level: 'info', msg: 'payment authorised', amount: ((i * 37) % 20000) / 100, currency: 'EUR' }),
    (i) => ({ level: 'error', msg: 'card declined', code: '51', attempt: 1 + (i % 3) }),
  ],
  ledger: [(i) => ({ level: 'info', msg: 'entry booked', entry: i })],
  cache: [(i) => ({ level: 'debug', msg: 'evicted', keys: i % 50 })],
}

const demoMessage: MessageFn = (pod, i) => {
  const app = pod.labels['app.kubernetes.io/name'] ?? 'app'
  const choices = lines[app] ?? lines.checkout!
  return JSON.stringify({ ts: new Date().toISOString(), ...choices[(i * 7 + (i >> 2)) % choices.length]!(i) })
}

async function local(): Promise<void> {
  if (process.getuid?.() !== 0) {
    say(
      'the local demo needs root: it creates a network namespace as the relay pod address (or use --cluster current)',
    )
    process.exit(1)
  }
  const t0 = Date.now()
  say('starting a local Kubernetes control plane (the first run builds it from source: ~15 min)')
  let state: ClusterState | undefined
  let logSocket: LogSocket | undefined
  let live: LiveFluentd | undefined
  let feeder: NodeJS.Timeout | undefined
  const dir = mkdtempSync(path.join(tmpdir(), 'log-socket-demo-'))
  let code = 1
  try {
    state = await startCluster((line) => say(line))
    const c = view(state)
    say(`control plane ${c.version} ready in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
    state.pipeline = await startPipeline(c, state.registration, (line) => say(line))
    const missing = Object.entries(state.pipeline.missing).filter(([part]) => part !== 'syslog-ng')
    for (const name of ['log-socket', 'shop', 'logging']) {
      await c.kubectl(['create', 'namespace', name])
    }
    const custom = c.kc.makeApiClient(CustomObjectsApi)
    const create = (kind: 'Flow' | 'Output', name: string, spec: object) =>
      custom.createNamespacedCustomObject({
        ...resourceOf(kind),
        namespace: 'shop',
        body: { apiVersion: KINDS[kind].apiVersion, kind, metadata: { name }, spec },
      })
    if (state.pipeline.operator && !missing.length) {
      say('path: the REAL pipeline — logging-operator renders the Flow, real fluentd runs it into the tap')
      const real = await realPipeline(c, create)
      logSocket = real.logSocket
      live = real.live
      feeder = real.feeder
    } else {
      say('path: a fluentd-faithful SENDER stands in for fluentd; the real pipeline is missing here:')
      for (const [part, why] of missing) say(`  ${part}: ${why.split('\n')[0]}`)
      say('starting log-socket (controller + relay) and the fluentd-faithful sender')
      logSocket = await startStack(c, {
        namespace: 'log-socket',
        scope: 'shop',
        pods: demoPods('shop'),
        message: demoMessage,
        recordsPerChunk: 3,
        flushIntervalMs: 700,
        activationDelayMs: 1500,
      })
      await create('Output', 'discard', { nullout: {} })
      await create('Flow', 'checkout', flowSpec)
      say("the sender posts every record: it does not run the Flow's filters")
    }
    await grantViewer(c.kc, 'shop', 'log-socket')
    const kubeconfig = writeTokenKubeconfig(c, dir, await c.serviceAccountToken('shop', 'viewer'), 'viewer')
    say('Flow shop/checkout is ready. Running, as ServiceAccount shop/viewer:')
    say('  k8stail -n log-socket shop/checkout')
    say('records of checkout (rbac/policy: allow) and payments (rbac/shop_viewer: allow) are shown;')
    say(
      'ledger (rbac/policy: deny) and cache (no labels: default deny) are reported as denied. Ctrl-C to stop.',
    )
    code = await exited(k8stail(['--kubeconfig', kubeconfig, '-n', 'log-socket', 'shop/checkout']))
  } catch (err) {
    say(`failed: ${(err as Error).message}`)
  } finally {
    say('cleaning up')
    clearInterval(feeder)
    await live?.stop().catch(() => {})
    await logSocket?.stop().catch(() => {})
    if (state) {
      await stopCluster(state)
    }
    rmSync(dir, { recursive: true, force: true })
    say('done')
  }
  process.exit(code)
}

// The real path: a Logging for the shop namespace, log-socket, the sample Flow accepted by the real
// operator, real fluentd following what it renders (reloading as taps come and go, as the
// config-reloader does), fed the shop's records as fluent-bit would forward them.
async function realPipeline(
  c: TestCluster,
  create: (kind: 'Flow' | 'Output', name: string, spec: object) => Promise<unknown>,
): Promise<{ logSocket: LogSocket; live: LiveFluentd; feeder: NodeJS.Timeout }> {
  const logging = await createLogging(c.kc, {
    aggregator: 'fluentd',
    name: 'demo',
    loggingRef: '',
    controlNamespace: 'logging',
    watchNamespaces: ['shop'],
  })
  say('starting log-socket (controller + relay)')
  const logSocket = await startLogSocket(c, { namespace: 'log-socket', scope: 'shop' })
  await create('Output', 'discard', { nullout: {} })
  await create('Flow', 'checkout', flowSpec)
  await waitForStatus(c.kc, 'Flow', 'shop', 'checkout', accepted, 'active and no problems')
  say('logging-operator accepted Flow shop/checkout; starting fluentd on what it rendered')
  const live = await followFlows({
    kc: c.kc,
    logging,
    flows: ['flow:shop:checkout'],
    endpoint: logSocket.resolve,
    allowHosts: [c.testHost.ip],
    log: (line) => say(`fluentd: ${line}`),
  })
  say(`fluentd runs the Flow's filters: checkout's "cart updated" lines never reach the tap`)
  const pods = demoPods('shop')
  let i = 0
  const feeder = setInterval(() => {
    const records = [0, 1, 2].map(() => {
      const pod = pods[i % pods.length]!
      return containerdRecord(pod, demoMessage(pod, i++))
    })
    live.emit(records).catch((err) => say(`feeding fluentd: ${(err as Error).message}`))
  }, 700)
  return { logSocket, live, feeder }
}

// The viewer may tap Flows in `ns` and reach the relay's stream port in `relayNs`.
async function grantViewer(kc: KubeConfig, ns: string, relayNs: string): Promise<void> {
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api)
  const bind = async (namespace: string, rules: object[]) => {
    await rbac.createNamespacedRole({
      namespace,
      body: { metadata: { name: 'demo-tapper' }, rules } as never,
    })
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'demo-tapper' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'demo-tapper' },
        subjects: [{ kind: 'ServiceAccount', name: 'viewer', namespace: ns }],
      },
    })
  }
  await bind(ns, [
    { apiGroups: [GROUP], resources: [PLURAL], verbs: ['create', 'get', 'list', 'watch', 'delete'] },
    {
      apiGroups: ['coordination.k8s.io'],
      resources: ['leases'],
      verbs: ['create', 'get', 'update', 'delete'],
    },
  ])
  await bind(relayNs, [
    { apiGroups: [''], resources: ['services/proxy'], verbs: ['get'], resourceNames: ['log-socket:10001'] },
  ])
}

// Against a real cluster: logging-operator and the log-socket chart must be installed already.
async function currentCluster(): Promise<void> {
  const kc = new KubeConfig()
  try {
    kc.loadFromDefault()
  } catch (err) {
    say(`cannot read your kubeconfig: ${(err as Error).message}`)
    process.exit(2)
  }
  const ctx = kc.getCurrentContext()
  say(`using the current context ${JSON.stringify(ctx)} (${kc.getCurrentCluster()?.server})`)
  const ns = 'log-socket-demo'
  const apply = (yaml: string) =>
    new Promise<number>((resolve) => {
      const child = spawn('kubectl', ['apply', '-f', '-'], { stdio: ['pipe', 'inherit', 'inherit'] })
      child.stdin.end(yaml)
      child.on('exit', (c) => resolve(c ?? 1))
      child.on('error', () => resolve(127))
    })
  const manifest = `apiVersion: v1
kind: Namespace
metadata: {name: ${ns}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: checkout, namespace: ${ns}}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: checkout}}
  template:
    metadata:
      labels: {app.kubernetes.io/name: checkout, app.kubernetes.io/part-of: shop, rbac/policy: allow}
    spec:
      containers:
      - name: checkout
        image: busybox:1.36
        command: [sh, -c, 'i=0; while true; do i=$((i+1)); echo "{\\"level\\":\\"info\\",\\"msg\\":\\"order placed\\",\\"n\\":$i}"; sleep 1; done']
---
apiVersion: logging.banzaicloud.io/v1beta1
kind: Output
metadata: {name: discard, namespace: ${ns}}
spec: {nullout: {}}
---
apiVersion: logging.banzaicloud.io/v1beta1
kind: Flow
metadata: {name: checkout, namespace: ${ns}}
spec:
  match: [{select: {labels: {app.kubernetes.io/part-of: shop}}}]
  localOutputRefs: [discard]
`
  say(`creating namespace ${ns}: a log generator, an Output and Flow ${ns}/checkout (kubectl apply)`)
  if ((await apply(manifest)) !== 0) {
    say('kubectl apply failed: is kubectl installed, logging-operator running and the cluster reachable?')
    process.exit(2)
  }
  say(`running k8stail ${ns}/checkout (delete the demo with: kubectl delete namespace ${ns})`)
  process.exit(await exited(k8stail([`${ns}/checkout`])))
}

if (values.cluster === 'current') await currentCluster()
else if (values.cluster === 'local') await local()
else {
  say(`--cluster must be "local" or "current", not ${JSON.stringify(values.cluster)}`)
  process.exit(1)
}
