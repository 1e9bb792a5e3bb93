// The LogTap controller: informers feed a work queue of LogTap keys; while this replica leads,
// workers reconcile them and a periodic sweep repairs drift.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node'
import type pino from 'pino'
import type { Registry } from 'prom-client'
import { GROUP, PLURAL, VERSION } from '../../api/logtap.ts'
import { Api, errorText, isNotFound } from '../kube/client.ts'
import { EventRecorder } from '../kube/events.ts'
import { Informer, type InformerSpec } from '../kube/informers.ts'
import { LeaderElector } from '../kube/leader.ts'
import { type KObject, LOGGING_GROUP } from '../kube/objects.ts'
import { WorkQueue } from '../kube/workqueue.ts'
import type { Action, DesiredConfig } from './desired/desired.ts'
import { keyOf, tapObjectName } from './desired/naming.ts'
import type { LeaseInfo } from './desired/session.ts'
import { controllerMetrics } from './metrics.ts'
import { type Caches, reconcile } from './reconcile.ts'
import { sweep } from './sweep.ts'

export interface ControllerOptions {
  kc: KubeConfig
  logger: pino.Logger
  registry: Registry
  ingestBaseUrl: string // e.g. http://log-socket.log-socket.svc:10000
  ingestKey: Uint8Array // key for tapCredential()
  leaderElection:
    | false
    | {
        namespace: string
        name?: string
        identity: string
        leaseDurationSeconds?: number
        retryPeriodMs?: number
      }
  sweepIntervalMs?: number // drift repair and full resync; default 60 s
  sessionGraceMs?: number // for a session tap's Lease to appear; default 30 s
  leaseGraceMs?: number // past a session Lease's expiry before the tap is deleted; default 3 s
  concurrency?: number // parallel reconciles of different keys; default 4
  namespace?: string // watch and reconcile only this namespace (default: all namespaces)
  // Test hook: runs before each reconcile step; throwing simulates a crash between steps.
  beforeAction?: (key: string, action: Action) => void | Promise<void>
}

export interface RunningController {
  stop(): Promise<void>
  synced(): boolean
  isLeader(): boolean
}

export const LEADER_LEASE_NAME = 'log-socket-controller'

function informerSpecs(custom: CustomObjectsApi, namespace?: string): Record<keyof Caches, InformerSpec> {
  const cluster = (group: string, version: string, plural: string, kind: string): InformerSpec => ({
    name: kind,
    kind,
    path: `/apis/${group}/${version}/${plural}`,
    list: async () => (await custom.listClusterCustomObject({ group, version, plural })) as never,
  })
  const scoped = (group: string, version: string, plural: string, kind: string): InformerSpec =>
    namespace
      ? {
          name: kind,
          kind,
          path: `/apis/${group}/${version}/namespaces/${namespace}/${plural}`,
          list: async () =>
            (await custom.listNamespacedCustomObject({ group, version, namespace, plural })) as never,
        }
      : cluster(group, version, plural, kind)
  return {
    taps: scoped(GROUP, VERSION, PLURAL, 'LogTap'),
    outputs: scoped(LOGGING_GROUP, 'v1beta1', 'outputs', 'Output'),
    clusterOutputs: scoped(LOGGING_GROUP, 'v1beta1', 'clusteroutputs', 'ClusterOutput'),
    flows: scoped(LOGGING_GROUP, 'v1beta1', 'flows', 'Flow'),
    clusterFlows: scoped(LOGGING_GROUP, 'v1beta1', 'clusterflows', 'ClusterFlow'),
    loggings: cluster(LOGGING_GROUP, 'v1beta1', 'loggings', 'Logging'), // cluster-scoped
  }
}

export async function startController(o: ControllerOptions): Promise<RunningController> {
  const log = o.logger.child({ controller: 'logtap' })
  const custom = o.kc.makeApiClient(CustomObjectsApi)
  const api = new Api(o.kc)
  const metrics = controllerMetrics(o.registry)
  const identity = o.leaderElection ? o.leaderElection.identity : 'single'
  const events = new EventRecorder(o.kc, 'log-socket-controller', identity, log)
  const cfg: DesiredConfig = {
    ingestBaseUrl: o.ingestBaseUrl,
    ingestKey: o.ingestKey,
    leaseGraceMs: o.leaseGraceMs ?? 3000,
    startGraceMs: o.sessionGraceMs ?? 30_000,
    defaultLeaseDurationSeconds: 30,
  }

  let queue: WorkQueue | undefined
  const enqueue = (key: string) => queue?.add(key)

  // Every event maps to the LogTap keys it may affect; reconcile re-reads everything else.
  const caches = {} as Caches
  const tapsIn = (ns: string) => caches.taps.list(ns)
  const onEvent = (kind: keyof Caches) => (_ev: string, obj: KObject) => {
    const ns = obj.metadata.namespace ?? ''
    if (kind === 'taps') return enqueue(keyOf(ns, obj.metadata.name ?? ''))
    if (kind === 'loggings') {
      for (const t of caches.taps.list())
        if ((t.spec as { flow?: { kind?: string } })?.flow?.kind === 'ClusterFlow')
          enqueue(keyOf(t.metadata.namespace ?? '', t.metadata.name ?? ''))
      return
    }
    const owner = (obj.metadata.ownerReferences ?? []).find((r) => r.kind === 'LogTap' && r.controller)
    if (owner) enqueue(keyOf(ns, owner.name))
    for (const t of tapsIn(ns)) {
      const tapName = t.metadata.name ?? ''
      const flowName = (t.spec as { flow?: { name?: string } })?.flow?.name
      if (flowName === obj.metadata.name || tapObjectName(tapName) === obj.metadata.name)
        enqueue(keyOf(ns, tapName))
    }
  }
  const specs = informerSpecs(custom, o.namespace)
  for (const k of Object.keys(specs) as (keyof Caches)[]) {
    caches[k] = new Informer(o.kc, specs[k], onEvent(k), log)
  }

  const readLease = async (namespace: string, name: string): Promise<LeaseInfo | undefined> => {
    try {
      const l = (await custom.getNamespacedCustomObject({
        group: 'coordination.k8s.io',
        version: 'v1',
        plural: 'leases',
        namespace,
        name,
      })) as {
        metadata: KObject['metadata']
        spec?: { renewTime?: string; acquireTime?: string; leaseDurationSeconds?: number }
      }
      return {
        uid: l.metadata.uid,
        renewTime: l.spec?.renewTime,
        acquireTime: l.spec?.acquireTime,
        leaseDurationSeconds: l.spec?.leaseDurationSeconds,
        creationTimestamp: l.metadata.creationTimestamp,
        ownerUids: (l.metadata.ownerReferences ?? []).map((r) => r.uid),
      }
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  const deps = {
    api,
    caches,
    events,
    log,
    metrics,
    cfg,
    readLease,
    now: () => Date.now(),
    beforeAction: o.beforeAction,
  }
  let sweepTimer: NodeJS.Timeout | undefined
  let sweeping: Promise<void> | undefined

  const runSweep = () => {
    if (!queue || sweeping) return
    sweeping = sweep({ api, caches, events, log, metrics, enqueue })
      .catch((err) => log.warn({ err: errorText(err) }, 'Sweep failed'))
      .finally(() => {
        sweeping = undefined
      })
  }

  const startLeading = async () => {
    metrics.leader.set(1)
    queue = new WorkQueue({
      concurrency: o.concurrency ?? 4,
      handler: async (key) => {
        const end = metrics.duration.startTimer()
        try {
          const r = await reconcile(key, deps)
          metrics.reconciles.inc({ result: r?.requeueAfterMs !== undefined ? 'requeue' : 'success' })
          return r
        } catch (err) {
          metrics.reconciles.inc({ result: 'error' })
          throw err
        } finally {
          end()
        }
      },
      onDepth: (n) => metrics.queueDepth.set(n),
    })
    for (const t of caches.taps.list()) enqueue(keyOf(t.metadata.namespace ?? '', t.metadata.name ?? ''))
    runSweep()
    sweepTimer = setInterval(runSweep, o.sweepIntervalMs ?? 60_000)
  }
  const stopLeading = async () => {
    metrics.leader.set(0)
    clearInterval(sweepTimer)
    const q = queue
    queue = undefined
    await q?.stop()
    await sweeping
  }

  await Promise.all(Object.values(caches).map((c) => c.start()))
  log.info('Caches synced')

  let elector: LeaderElector | undefined
  if (o.leaderElection) {
    const le = o.leaderElection
    const leaseDurationSeconds = le.leaseDurationSeconds ?? 15
    elector = new LeaderElector(
      custom,
      {
        namespace: le.namespace,
        name: le.name ?? LEADER_LEASE_NAME,
        identity: le.identity,
        leaseDurationSeconds,
        renewDeadlineMs: (leaseDurationSeconds * 1000 * 2) / 3,
        retryPeriodMs: le.retryPeriodMs ?? 2000,
      },
      { onStartedLeading: startLeading, onStoppedLeading: stopLeading },
      log,
    )
    elector.start()
  } else {
    await startLeading()
  }

  return {
    synced: () => Object.values(caches).every((c) => c.synced()),
    isLeader: () => (elector ? elector.isLeader() : queue !== undefined),
    stop: async () => {
      if (elector) await elector.stop()
      else await stopLeading()
      await Promise.all(Object.values(caches).map((c) => c.stop()))
    },
  }
}
