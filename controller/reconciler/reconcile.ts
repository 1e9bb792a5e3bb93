// One reconcile of one LogTap key: gather from the caches → pure desired() → execute the steps in
// order (stop at the first that fails) → write the controller's status fields if they changed.
import type pino from 'pino'
import { Conditions, type LogTap } from '../../api/logtap.ts'
import { type Api, errorText, isConflict, isNotFound } from '../kube/client.ts'
import type { EventRecorder } from '../kube/events.ts'
import type { Informer } from '../kube/informers.ts'
import { describeRef, isDeleting, jsonEqual, type KObject } from '../kube/objects.ts'
import type { Result } from '../kube/workqueue.ts'
import { execute, NotYet, type PassContext, prefetch } from './actions.ts'
import { findCondition } from './desired/conditions.ts'
import { type Action, type ControllerStatus, type DesiredConfig, desired } from './desired/desired.ts'
import { parseKey } from './desired/naming.ts'
import type { LeaseInfo } from './desired/session.ts'
import type { ControllerMetrics } from './metrics.ts'

export interface Caches {
  taps: Informer
  outputs: Informer
  clusterOutputs: Informer
  flows: Informer
  clusterFlows: Informer
  loggings: Informer
}

export interface ReconcilerDeps {
  api: Api
  caches: Caches
  events: EventRecorder
  log: pino.Logger
  metrics: ControllerMetrics
  cfg: DesiredConfig
  readLease(namespace: string, name: string): Promise<LeaseInfo | undefined>
  now(): number
  // Test hook: runs before each step; throwing from it simulates a crash between steps.
  beforeAction?: (key: string, action: Action) => void | Promise<void>
}

function ownedStatus(s: LogTap['status']): ControllerStatus {
  return {
    observedGeneration: s?.observedGeneration,
    conditions: s?.conditions ?? [],
    outputKind: s?.outputKind,
    outputName: s?.outputName,
    mirrorFlowName: s?.mirrorFlowName,
    streamPath: s?.streamPath,
  }
}

export async function reconcile(key: string, d: ReconcilerDeps): Promise<Result | undefined> {
  const { namespace, name } = parseKey(key)
  const cached = d.caches.taps.get(name, namespace) as LogTap | undefined
  const tap = cached ? (structuredClone(cached) as LogTap) : undefined
  const log = d.log.child({ logtap: key })
  const now = d.now()
  const session = tap && !isDeleting(tap) && tap.spec.lifetime === 'session'
  const observed = {
    namespace,
    name,
    tap,
    outputs: [...d.caches.outputs.list(namespace), ...d.caches.clusterOutputs.list(namespace)] as KObject[],
    flows: [...d.caches.flows.list(namespace), ...d.caches.clusterFlows.list(namespace)] as KObject[],
    loggings: d.caches.loggings.synced() ? d.caches.loggings.list() : undefined,
    lease: session ? await d.readLease(namespace, name) : undefined,
    now,
  }
  const want = desired(observed, d.cfg)
  const byKind = {
    Output: d.caches.outputs,
    ClusterOutput: d.caches.clusterOutputs,
    Flow: d.caches.flows,
    ClusterFlow: d.caches.clusterFlows,
    LogTap: d.caches.taps,
  }
  const ctx: PassContext = {
    applied: new Map(),
    cached: (kind, n) => byKind[kind].get(n, namespace),
    prefetched: new Map(),
  }
  prefetch(d.api, ctx, want.actions)

  const step = async (action: Action) => {
    try {
      const r = await execute(d.api, ctx, namespace, name, tap, action)
      d.metrics.actions.inc({ action: action.type })
      if (r.did) {
        const target = r.object ? `${describeRef(r.object)}` : `LogTap ${key}`
        log.info({ action: action.type, object: r.object ? describeRef(r.object) : undefined }, r.did)
        if (tap) {
          const type = action.type === 'DeleteTap' ? 'Warning' : 'Normal'
          const reason = action.type === 'DeleteTap' ? action.reason : action.type
          const message = action.type === 'DeleteTap' ? action.message : `${r.did}: ${target}`
          void d.events.record(tap, type, reason, message)
        }
      }
    } catch (err) {
      d.metrics.errors.inc({ action: action.type })
      if (err instanceof NotYet || isConflict(err)) {
        log.debug({ action: action.type, reason: errorText(err) }, 'Step must wait')
      } else {
        const message = `${action.type} failed: ${errorText(err)}`
        log.warn({ action: action.type, err: errorText(err) }, 'Reconcile step failed')
        if (tap && !isDeleting(tap)) void d.events.record(tap, 'Warning', 'ReconcileFailed', message)
      }
      throw err
    }
  }

  // Steps run in order. The one exception: the tap's finalizer and the creation of its Output do
  // not depend on each other (only the ref that follows needs both), so they overlap.
  const actions = want.actions
  for (let i = 0; i < actions.length; i++) {
    const action = actions[i] as Action
    await d.beforeAction?.(key, action)
    const next = actions[i + 1]
    if (action.type === 'AddTapFinalizer' && next?.type === 'ApplyOutput') {
      const first = step(action)
      try {
        await d.beforeAction?.(key, next)
      } catch (err) {
        await first.catch(() => {})
        throw err
      }
      const results = await Promise.allSettled([first, step(next)])
      for (const r of results) if (r.status === 'rejected') throw r.reason
      i++
      continue
    }
    await step(action)
  }

  if (tap && want.status) await writeStatus(tap, want.status, d, log)
  return want.requeueAfterMs !== undefined ? { requeueAfterMs: want.requeueAfterMs } : undefined
}

async function writeStatus(
  tap: LogTap,
  next: ControllerStatus,
  d: ReconcilerDeps,
  log: pino.Logger,
): Promise<void> {
  const prev = ownedStatus(tap.status)
  if (jsonEqual(prev, next)) return
  // Explain every condition that went wrong, and the moment the tap became Ready.
  for (const c of next.conditions) {
    const before = findCondition(prev.conditions, c.type)
    if (before?.status === c.status && before.reason === c.reason) continue
    if (c.status === 'False') void d.events.record(tap, 'Warning', c.reason, c.message)
    else if (c.type === Conditions.Ready && c.status === 'True')
      void d.events.record(tap, 'Normal', 'Ready', c.message)
  }
  try {
    await d.api.applyTapStatus(tap.metadata.namespace ?? '', tap.metadata.name ?? '', { ...next })
    const ready = findCondition(next.conditions, Conditions.Ready)
    log.debug({ ready: ready?.status, reason: ready?.reason }, 'Updated LogTap status')
  } catch (err) {
    if (!isNotFound(err)) throw err
  }
}
