// The shared part of the real-pipeline tap tests (real-pipeline-taps*.cluster.test.ts): log-socket in
// the real pipeline, as a user sees it. The controller+relay program, the real logging-operator
// accepting and rendering what the controller makes, real fluentd following what it renders
// (reloading as the config-reloader does), k8stail run as a ServiceAccount, and watchers that record
// every missing output the operator reports and every revision at which a Flow references a missing
// output. One Logging, one relay and one fluentd per test file (two files keep each well inside the
// per-file timeout on a loaded machine).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { CustomObjectsApi, type KubeConfig, Watch } from '@kubernetes/client-node'
import t from 'tap'
import { KINDS } from '../../api/kinds.ts'
import { GROUP, type LogTap, PLURAL, VERSION } from '../../api/logtap.ts'
import { outputBlock, outputIds } from '../../local-cluster/real-pipeline/fluentd-config.ts'
import { followFlows } from '../../local-cluster/real-pipeline/live-fluentd.ts'
import {
  accepted,
  createLogging,
  getLoggingObject,
  waitForRendered,
  waitForStatus,
} from '../../local-cluster/real-pipeline/logging.ts'
import { containerdRecord, samplePods } from '../../local-cluster/sample-records.ts'
import type { LogSocket } from '../../local-cluster/stack.ts'
import { InvariantWatcher } from '../controller-helpers.ts'
import { startReceiver } from './http-receiver.ts'
import { grantTapper, type K8stailRun as Run, until } from './k8stail-user.ts'
import type { RealPipeline } from './real-pipeline.ts'

// The test file starts log-socket (the program on the test host, a cluster module) in a fresh
// namespace `ls.namespace` and says how a token becomes a kubeconfig file there.
export interface RealTapsOptions {
  ls: LogSocket
  kubeconfigFor(token: string, dir: string): string
}

export async function realTaps(rp: RealPipeline, o: RealTapsOptions) {
  const c = rp.cluster
  const kc = c.kc
  const custom = kc.makeApiClient(CustomObjectsApi)
  const ls = o.ls
  // ns: the Flows, the Logging's control namespace (ClusterFlows), the LogTaps and the relay.
  // tenant: another team's namespace of the same Logging.
  const ns = ls.namespace
  const tenant = await c.newNamespace('rp-tenant')
  const logging = await createLogging(kc, {
    aggregator: 'fluentd',
    controlNamespace: ns,
    watchNamespaces: [ns, tenant],
  })
  t.teardown(() => logging.delete())
  const dir = mkdtempSync(path.join(tmpdir(), 'rp-taps-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  // The users' own outputs post to a receiver on loopback; the taps' go to the relay.
  const sink = await startReceiver()
  t.teardown(() => sink.close())
  const endpoint = (url: string) =>
    url.startsWith('http://receiver.test.svc') ? `${sink.url}${new URL(url).pathname}` : ls.resolve(url)
  const userOutput = (name: string) => ({
    http: {
      endpoint: `http://receiver.test.svc:8080/${name}`,
      format: { type: 'json' },
      buffer: { type: 'memory', tags: '[]', flush_mode: 'interval', flush_interval: '1s' },
    },
  })
  await logging.create('Output', ns, 'es', userOutput('es'))
  await logging.create('Flow', ns, 'app', {
    match: [{ select: { labels: { 'app.kubernetes.io/name': 'checkout' } } }],
    // stdout acts outside the record: a mirror leaves it out; record_transformer is copied.
    filters: [{ stdout: {} }, { record_transformer: { records: [{ tapped_by: 'app' }] } }],
    localOutputRefs: ['es'],
  })
  await logging.create('ClusterOutput', ns, 'ces', userOutput('ces'))
  await logging.create('ClusterFlow', ns, 'all', { globalOutputRefs: ['ces'] })
  await logging.create('Output', tenant, 'es', userOutput('tenant-es'))
  await logging.create('Flow', tenant, 'tenant', { localOutputRefs: ['es'] })
  for (const [kind, where, name] of [
    ['Flow', ns, 'app'],
    ['ClusterFlow', ns, 'all'],
    ['Flow', tenant, 'tenant'],
  ] as const)
    await waitForStatus(kc, kind, where, name, accepted, 'active and no problems')

  // What the operator says about every flow of the Logging, at every revision it writes.
  const problems = await watchProblems(kc, [ns, tenant])
  t.teardown(() => problems.stop())
  const inv = new InvariantWatcher(kc, ns, { tenants: [tenant] })
  await inv.start()
  t.teardown(async () => {
    await inv.stop()
  })

  // fluentd as in the Logging's pod: the user flows, and a mirror's copy once rendered.
  const live = await followFlows({
    kc,
    logging,
    flows: [`flow:${ns}:app`, `clusterflow:${ns}:all`, `flow:${ns}:logtap-m`],
    require: [`flow:${ns}:app`, `clusterflow:${ns}:all`],
    endpoint,
    allowHosts: [c.testHost.ip],
    pollMs: 500,
  })
  t.teardown(() => live.stop())

  // The user: a ServiceAccount that may tap in ns; checkout's records allow everyone (rbac/policy).
  const viewer = o.kubeconfigFor(await grantTapper(c, ns), dir)
  const checkout = samplePods(ns).find((p) => p.labels['rbac/policy'] === 'allow')!
  let n = 0
  const batch = (label: string) => [0, 1, 2].map(() => containerdRecord(checkout, `${label} record ${n++}`))

  // Feeds fluentd until k8stail printed `count` records of `label`; returns what it printed.
  async function streamed(run: Run, label: string, count: number) {
    const sent = new Set<string>()
    const deadline = Date.now() + 90_000
    const printed = () => lines(run.out()).filter((l) => l.includes(`"${label} record `))
    while (printed().length < count) {
      if (Date.now() > deadline || run.exited())
        throw new Error(`k8stail printed ${printed().length} ${label} records\nstderr:\n${run.err()}`)
      const records = batch(label)
      for (const r of records) sent.add(JSON.stringify(r))
      await live.emit(records)
      await sleep(1000)
    }
    return { printed: printed(), sent }
  }

  // Waits until fluentd reloaded (after reload number `since`) into a configuration with (or
  // without) output `id`, as its config-reloader would once the operator rendered it.
  async function fluentdRuns(id: string, present: boolean, since: number) {
    const deadline = Date.now() + 60_000
    while (live.reloads <= since || live.fluentd.config.includes(`@id ${id}`) !== present) {
      if (Date.now() > deadline)
        throw new Error(`fluentd never reloaded into a configuration ${present ? 'with' : 'without'} ${id}`)
      await sleep(200)
    }
  }

  const tapObject = (name: string) => getTap(custom, ns, name)
  const condition = async (tap: string, type: string) =>
    (await tapObject(tap))?.status?.conditions?.find((x) => x.type === type)
  const createTap = (name: string, spec: Record<string, unknown>) => createTapIn(custom, ns, name, spec)
  const deleteTap = (name: string) =>
    custom.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: PLURAL,
      name,
    })

  // Gone, and the Logging renders on: its configuration no longer has any of `ids`.
  async function goneAndRendered(
    tt: Tap,
    tap: string,
    kind: 'Output' | 'ClusterOutput',
    ids: string[],
    since: number, // fluentd's reloads before the deletion
  ) {
    await until(`LogTap ${tap} and its ${kind} gone`, 60_000, async () => {
      const [lt, out] = await Promise.all([tapObject(tap), getLoggingObject(kc, kind, ns, `logtap-${tap}`)])
      return !lt && !out
    })
    const conf = await rendered(
      (s) => ids.every((id) => !s.includes(id)),
      `a configuration without ${ids.join(', ')}`,
    )
    tt.same(
      outputIds(conf).filter((id) => id.includes(':logtap-')),
      [],
      'the Logging renders on: its configuration has no tap output left',
    )
    await fluentdRuns(ids[0]!, false, since)
    tt.same(problems.seen(), [], 'logging-operator never reported a missing output')
  }

  const storeOf = (conf: string, id: string) => outputBlock(conf, id)
  // What the operator logged about this file's namespaces, for a rendering that never came.
  const operatorSays = () =>
    readFileSync(rp.operator!.logFile, 'utf8')
      .split('\n')
      .filter((l) => /error|fail/i.test(l) && (l.includes(ns) || l.includes(logging.name)))
      .slice(-20)
      .join('\n')
  const rendered = (pred: (s: string) => boolean, what: string, ms = 60_000) =>
    waitForRendered(kc, logging, pred, what, ms).catch((err: Error) => {
      throw new Error(`${err.message.split(';')[0]}\nthe operator logged:\n${operatorSays()}`)
    })
  return {
    c,
    kc,
    custom,
    ns,
    tenant,
    logging,
    ls,
    sink,
    live,
    inv,
    problems,
    viewer,
    userOutput,
    batch,
    streamed,
    fluentdRuns,
    condition,
    createTap,
    deleteTap,
    goneAndRendered,
    rendered,
    storeOf,
  }
}

interface Tap {
  same(a: unknown, b: unknown, m: string): unknown
}

const lines = (s: string) => s.split('\n').filter((l) => l.length > 0)

export const createTapIn = (custom: CustomObjectsApi, namespace: string, name: string, spec: object) =>
  custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURAL,
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'LogTap', metadata: { name }, spec },
  })

export async function getTap(custom: CustomObjectsApi, namespace: string, name: string) {
  try {
    return (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      name,
    })) as LogTap
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined
    throw err
  }
}

// Every problem logging-operator writes on Flows and ClusterFlows of `namespaces` that says an
// output is missing ("dangling … output reference: X"), at every revision it writes.
async function watchProblems(kc: KubeConfig, namespaces: string[]) {
  const seen: string[] = []
  const aborts: AbortController[] = []
  const w = new Watch(kc)
  for (const namespace of namespaces)
    for (const { apiVersion, plural } of [KINDS.Flow, KINDS.ClusterFlow])
      aborts.push(
        await w.watch(
          `/apis/${apiVersion}/namespaces/${namespace}/${plural}`,
          {},
          (_phase, obj) => {
            for (const p of (obj?.status?.problems as string[] | undefined) ?? [])
              if (/dangling/.test(p))
                seen.push(
                  `rv ${obj.metadata?.resourceVersion}: ${obj.kind} ${namespace}/${obj.metadata?.name}: ${p}`,
                )
          },
          () => {},
        ),
      )
  return {
    seen: () => [...seen],
    stop: () => {
      for (const a of aborts) a.abort()
    },
  }
}
