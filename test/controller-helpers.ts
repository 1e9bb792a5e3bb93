// Shared by the controller integration tests: a controller running under the least-privilege
// ServiceAccount (the chart's rules), object helpers, and a watcher that checks the ordering
// invariant at every change of flows and outputs in a namespace.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { CustomObjectsApi, type KubeConfig, RbacAuthorizationV1Api, Watch } from '@kubernetes/client-node'
import pino from 'pino'
import { Registry } from 'prom-client'
import type { Test } from 'tap'
import { parse } from 'yaml'
import { KINDS, type NamespacedKindName, resourceOf } from '../api/kinds.ts'
import type { LogTap } from '../api/logtap.ts'
import { SharedInformers } from '../controller/kube/informers.ts'
import type { KObject } from '../controller/kube/objects.ts'
import {
  type ControllerOptions,
  type RunningController,
  startController,
} from '../controller/reconciler/controller.ts'
import type { TestCluster } from '../local-cluster/cluster.ts'

export const INGEST_KEY = new Uint8Array(32).fill(3)
const rulesFile = path.resolve(
  import.meta.dirname,
  '..',
  'charts',
  'log-socket',
  'files',
  'controller-rules.yaml',
)

// A Logging (cluster-scoped) with `spec`, deleted when test `t` ends.
export async function testLogging(
  t: Test,
  kc: KubeConfig,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  const custom = kc.makeApiClient(CustomObjectsApi)
  await custom.createClusterCustomObject({
    ...resourceOf('Logging'),
    body: { apiVersion: KINDS.Logging.apiVersion, kind: 'Logging', metadata: { name }, spec },
  })
  t.teardown(() => custom.deleteClusterCustomObject({ ...resourceOf('Logging'), name }))
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 15_000,
): Promise<T> {
  const end = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined && v !== false) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    await sleep(50)
  }
}

// A kubeconfig for a ServiceAccount bound to exactly the rules the Helm chart ships.
let saConfig: Promise<KubeConfig> | undefined
export function controllerKubeConfig(c: TestCluster): Promise<KubeConfig> {
  saConfig ??= (async () => {
    const rbac = c.kc.makeApiClient(RbacAuthorizationV1Api)
    const ns = await c.newNamespace('ctl-sa')
    const name = `log-socket-controller-test-${randomBytes(3).toString('hex')}`
    const rules = parse(readFileSync(rulesFile, 'utf8'))
    await rbac.createClusterRole({ body: { metadata: { name }, rules } })
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
        subjects: [{ kind: 'ServiceAccount', name: 'log-socket', namespace: ns }],
      },
    })
    return c.kubeConfigForToken(await c.serviceAccountToken(ns, 'log-socket'))
  })()
  return saConfig
}

// A controller watching only `namespace`, with informers of its own (as one program has);
// stop() stops both.
export async function runController(
  c: TestCluster,
  namespace: string,
  extra: Partial<ControllerOptions> = {},
): Promise<RunningController> {
  const kc = await controllerKubeConfig(c)
  const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' })
  const informers = new SharedInformers(kc, { namespace, log: logger })
  const ctl = await startController({
    kc,
    informers,
    logger,
    registry: new Registry(),
    ingestBaseUrl: 'http://log-socket.log-socket.svc:10000',
    ingestKey: INGEST_KEY,
    leaderElection: false,
    ...extra,
  }).catch(async (err) => {
    await informers.stop()
    throw err
  })
  return {
    ...ctl,
    stop: async () => {
      await ctl.stop()
      await informers.stop()
    },
  }
}

export class Objects {
  readonly custom: CustomObjectsApi
  readonly ns: string
  constructor(kc: KubeConfig, ns: string) {
    this.custom = kc.makeApiClient(CustomObjectsApi)
    this.ns = ns
  }
  async create(
    kind: NamespacedKindName,
    name: string,
    spec: Record<string, unknown>,
    meta: Record<string, unknown> = {},
  ): Promise<KObject> {
    const body = {
      apiVersion: KINDS[kind].apiVersion,
      kind,
      metadata: { name, namespace: this.ns, ...meta },
      spec,
    }
    return (await this.custom.createNamespacedCustomObject({
      ...resourceOf(kind),
      namespace: this.ns,
      body,
    })) as KObject
  }
  async get(kind: NamespacedKindName, name: string): Promise<KObject | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({
        ...resourceOf(kind),
        namespace: this.ns,
        name,
      })) as KObject
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined
      throw err
    }
  }
  async tap(name: string): Promise<LogTap | undefined> {
    return (await this.get('LogTap', name)) as LogTap | undefined
  }
  async delete(kind: NamespacedKindName, name: string, propagationPolicy?: string): Promise<void> {
    await this.custom.deleteNamespacedCustomObject({
      ...resourceOf(kind),
      namespace: this.ns,
      name,
      propagationPolicy,
    })
  }
  async refs(flowKind: 'Flow' | 'ClusterFlow', name: string): Promise<string[] | undefined> {
    const f = await this.get(flowKind, name)
    const field = flowKind === 'Flow' ? 'localOutputRefs' : 'globalOutputRefs'
    return f ? ((f.spec?.[field] as string[] | undefined) ?? []) : undefined
  }
  async condition(tap: string, type: string) {
    return (await this.tap(tap))?.status?.conditions?.find((x) => x.type === type)
  }
}

// Checks, at the resourceVersion of every watch event on flows and outputs in `ns` (and in the
// `tenants` namespaces, whose Flows may name ClusterOutputs of `ns`, the control namespace of their
// Logging), that no flow references an output that does not exist (consistent snapshot:
// exact-revision lists; resource versions are global, so one revision spans every namespace).
const WATCHED_KINDS = ['Flow', 'ClusterFlow', 'Output', 'ClusterOutput'] as const
export class InvariantWatcher {
  readonly violations: string[] = []
  checks = 0
  private aborts: AbortController[] = []
  private pending: Promise<void> = Promise.resolve()
  private readonly custom: CustomObjectsApi
  private readonly kc: KubeConfig
  private readonly ns: string
  private readonly tenants: string[]
  constructor(kc: KubeConfig, ns: string, o: { tenants?: string[] } = {}) {
    this.custom = kc.makeApiClient(CustomObjectsApi)
    this.kc = kc
    this.ns = ns
    this.tenants = o.tenants ?? []
  }
  async start(): Promise<void> {
    const w = new Watch(this.kc)
    for (const namespace of [this.ns, ...this.tenants]) {
      for (const kind of WATCHED_KINDS) {
        const { group, version, plural } = resourceOf(kind)
        const path = `/apis/${group}/${version}/namespaces/${namespace}/${plural}`
        this.aborts.push(
          await w.watch(
            path,
            {},
            (_phase, obj) => {
              const rv = obj?.metadata?.resourceVersion as string | undefined
              if (rv) this.pending = this.pending.then(() => this.checkAt(rv))
            },
            () => {},
          ),
        )
      }
    }
    await this.checkAt(undefined)
  }
  async checkAt(rv: string | undefined): Promise<void> {
    const list = async (kind: (typeof WATCHED_KINDS)[number], namespace: string) =>
      (
        (await this.custom.listNamespacedCustomObject({
          ...resourceOf(kind),
          namespace,
          resourceVersion: rv,
          resourceVersionMatch: rv ? 'Exact' : undefined,
        })) as { items: KObject[] }
      ).items
    const refs = (f: KObject, field: string) => (f.spec?.[field] as string[] | undefined) ?? []
    try {
      const [flows, cflows, outs, couts, ...tenantFlows] = await Promise.all([
        ...WATCHED_KINDS.map((k) => list(k, this.ns)),
        ...this.tenants.map((n) => list('Flow', n)),
      ])
      const outputs = new Set((outs ?? []).map((o) => o.metadata.name))
      const clusterOutputs = new Set((couts ?? []).map((o) => o.metadata.name))
      for (const f of flows ?? []) {
        for (const r of refs(f, 'localOutputRefs')) {
          if (!outputs.has(r))
            this.violations.push(`rv ${rv}: Flow ${f.metadata.name} references missing Output ${r}`)
        }
      }
      for (const f of [...(cflows ?? []), ...tenantFlows.flat()]) {
        for (const r of refs(f, 'globalOutputRefs')) {
          if (!clusterOutputs.has(r))
            this.violations.push(
              `rv ${rv}: ${f.kind ?? 'Flow'} ${f.metadata.namespace}/${f.metadata.name} references missing ClusterOutput ${r}`,
            )
        }
      }
      this.checks++
    } catch (err) {
      this.violations.push(`check at rv ${rv} failed: ${String(err)}`)
    }
  }
  async stop(): Promise<void> {
    await sleep(200) // let the last events arrive
    for (const a of this.aborts) a.abort()
    await this.pending
    await this.checkAt(undefined)
  }
}

// A Flow with an existing output of the user's, as a tapped flow usually looks.
export async function userFlow(
  o: Objects,
  name = 'app',
  kind: 'Flow' | 'ClusterFlow' = 'Flow',
): Promise<void> {
  const outKind = kind === 'Flow' ? 'Output' : 'ClusterOutput'
  await o.create(outKind, 'es', { http: { endpoint: 'http://127.0.0.1:9/' } })
  const field = kind === 'Flow' ? 'localOutputRefs' : 'globalOutputRefs'
  await o.create(kind, name, {
    match: [{ select: { labels: { app: name } } }],
    filters: [{ stdout: {} }],
    [field]: ['es'],
  })
}

export function tapSpec(flow: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { flow: { kind: 'Flow', name: flow }, ...over }
}
