// The LogTap controller: the shared informers feed a work queue of LogTap keys; while this
// replica leads, workers reconcile them and a periodic sweep repairs drift.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node'
import type pino from 'pino'
import type { Registry } from 'prom-client'
import { errorText, isNotFound } from '../kube/api-errors.ts'
import { EventRecorder } from '../kube/events.ts'
import type { InformerHandler, SharedInformers } from '../kube/informers.ts'
import { LeaderElector } from '../kube/leader.ts'
import { ObjectClient } from '../kube/object-client.ts'
import type { KObject } from '../kube/objects.ts'
import { WorkQueue } from '../kube/workqueue.ts'
import type { DesiredConfig } from './desired/desired.ts'
import { keyOfObject, parseKey } from './desired/naming.ts'
import type { Action } from './desired/plan.ts'
import type { LeaseInfo } from './desired/session.ts'
import { controllerMetrics } from './metrics.ts'
import { reconcile } from './reconcile.ts'
import { sweep } from './sweep.ts'
import { affectedTaps, cachesFrom, WATCHED } from './watches.ts'

export interface ControllerOptions {
  kc: KubeConfig
  // The process's informers (their namespace scope is the controller's); the controller adds its
  // handlers and starts the ones it needs, the caller stops them after the controller.
  informers: SharedInformers
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
  // For logging-operator to accept an attached tap before the tap says it does not respond; 60 s.
  operatorAcceptanceTimeoutMs?: number
  leaseGraceMs?: number // past a session Lease's expiry before the tap is deleted; default 3 s
  concurrency?: number // parallel reconciles of different keys; default 4
  // Test hook: runs before each reconcile step; throwing simulates a crash between steps.
  beforeAction?: (key: string, action: Action) => void | Promise<void>
}

export interface RunningController {
  stop(): Promise<void>
  synced(): boolean
  isLeader(): boolean
}

const LEADER_LEASE_NAME = 'log-socket-controller'

export async function startController(o: ControllerOptions): Promise<RunningController> {
  const log = o.logger.child({ controller: 'logtap' })
  const custom = o.kc.makeApiClient(CustomObjectsApi)
  const client = new ObjectClient(o.kc)
  const metrics = controllerMetrics(o.registry)
  const identity = o.leaderElection ? o.leaderElection.identity : 'single'
  const events = new EventRecorder(o.kc, 'log-socket-controller', identity, log)
  const cfg: DesiredConfig = {
    ingestBaseUrl: o.ingestBaseUrl,
    ingestKey: o.ingestKey,
    leaseGraceMs: o.leaseGraceMs ?? 3000,
    startGraceMs: o.sessionGraceMs ?? 30_000,
    defaultLeaseDurationSeconds: 30,
    operatorWaitMs: o.operatorAcceptanceTimeoutMs ?? 60_000,
  }

  let queue: WorkQueue | undefined
  // Only taps of the namespaces in scope are reconciled: flows are watched everywhere (watches.ts),
  // and a flow elsewhere must not make this controller tear down a tap it does not manage.
  const scope = o.informers.namespace
  const inScope = (namespace: string) => scope === undefined || namespace === scope
  const enqueue = (key: string) => {
    if (inScope(parseKey(key).namespace)) queue?.add(key)
  }

  // Every event maps to the LogTap keys it may affect; reconcile re-reads everything else.
  const caches = cachesFrom(o.informers)
  const tapsIn = (namespace?: string) => caches.LogTap.list(namespace)
  const clusterOutputs = () => [...caches.ClusterOutput.list(), ...caches.SyslogNGClusterOutput.list()]
  const handlers = WATCHED.map((kind) => {
    const handler: InformerHandler = (_event, obj) => {
      for (const key of affectedTaps(kind, obj, tapsIn, clusterOutputs)) enqueue(key)
    }
    caches[kind].on(handler)
    return { kind, handler }
  })

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
    client,
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
    sweeping = sweep({ client, caches, events, log, metrics, enqueue, inScope })
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
    for (const t of caches.LogTap.list()) enqueue(keyOfObject(t))
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
      for (const { kind, handler } of handlers) caches[kind].off(handler)
    },
  }
}
