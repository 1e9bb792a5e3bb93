// One reconcile of one LogTap key: gather from the caches → pure desired() → run its plan (stage by
// stage, stopping after the first that fails) → write the controller's status fields if they changed.
import type pino from 'pino'
import { FLOW_KINDS, KINDS, OUTPUT_KINDS } from '../../api/kinds.ts'
import { Conditions, type LogTap } from '../../api/logtap.ts'
import { errorText, isConflict, isNotFound } from '../kube/api-errors.ts'
import type { EventRecorder } from '../kube/events.ts'
import type { ObjectClient } from '../kube/object-client.ts'
import { describeRef, isDeleting, jsonEqual } from '../kube/objects.ts'
import type { Result } from '../kube/workqueue.ts'
import { execute, NotYet, runPlan, startPass } from './actions.ts'
import { findCondition } from './desired/conditions.ts'
import { type ControllerStatus, type DesiredConfig, desired, type Observed } from './desired/desired.ts'
import { refsIn } from './desired/flows.ts'
import { parseKey, tapObjectName } from './desired/naming.ts'
import type { Action } from './desired/plan.ts'
import type { LeaseInfo } from './desired/session.ts'
import type { ControllerMetrics } from './metrics.ts'
import type { Caches } from './watches.ts'

interface ReconcilerDeps {
  client: ObjectClient
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
    selection: s?.selection,
  }
}

async function observe(key: string, d: ReconcilerDeps): Promise<Observed> {
  const { namespace, name } = parseKey(key)
  const { caches } = d
  const cached = caches.LogTap.get(name, namespace) as LogTap | undefined
  const tap = cached ? (structuredClone(cached) as LogTap) : undefined
  const now = d.now()
  const live = tap && !isDeleting(tap)
  const session = live && tap.spec.lifetime === 'session'
  const objectName = tapObjectName(name)
  const elsewhere = FLOW_KINDS.flatMap((k) => caches[k].list()).filter(
    (f) => f.metadata.namespace !== namespace && refsIn(f, 'globalOutputRefs').includes(objectName),
  )
  const [lease, secret] = await Promise.all([
    session ? d.readLease(namespace, name) : undefined,
    live ? d.client.getSecret(namespace, objectName) : undefined,
  ])
  return {
    namespace,
    name,
    tap,
    outputs: OUTPUT_KINDS.flatMap((k) => caches[k].list(namespace)),
    flows: FLOW_KINDS.flatMap((k) => caches[k].list(namespace)),
    elsewhere,
    loggings: caches.Logging.synced() ? caches.Logging.list() : undefined,
    ...(secret ? { secret } : {}),
    lease,
    now,
  }
}

export async function reconcile(key: string, d: ReconcilerDeps): Promise<Result | undefined> {
  const observed = await observe(key, d)
  const { namespace, name, tap } = observed
  const log = d.log.child({ logtap: key })
  const want = desired(observed, d.cfg)
  const pass = startPass(d.client, { namespace, name, object: tap }, want.plan)

  // Every step is counted and logged; what it did, and every failure that is not a wait, is told
  // on the LogTap as an Event.
  const step = async (action: Action) => {
    try {
      const r = await execute(pass, action)
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
        // The flow's owner learns on the flow itself why its output list changed.
        if (action.type === 'Detach') {
          const { flow, output, fields } = action
          const message = `LogTap ${key} is being removed: ${output.name} was removed from .spec.${fields.join(', .spec.')} before its ${output.kind} goes (a reference to a missing output stops logging-operator from rendering the whole Logging)`
          const target = {
            apiVersion: KINDS[flow.kind].apiVersion,
            kind: flow.kind,
            metadata: { name: flow.name, namespace: flow.namespace, uid: flow.uid },
          }
          void d.events.record(target, 'Normal', 'TapOutputDetached', message)
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
  const before = d.beforeAction
  await runPlan(want.plan, step, before && ((action) => before(key, action)))

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
    await d.client.applyTapStatus(tap.metadata.namespace ?? '', tap.metadata.name ?? '', { ...next })
    const ready = findCondition(next.conditions, Conditions.Ready)
    log.debug({ ready: ready?.status, reason: ready?.reason }, 'Updated LogTap status')
  } catch (err) {
    if (!isNotFound(err)) throw err
  }
}
