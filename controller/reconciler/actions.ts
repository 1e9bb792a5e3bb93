// The executor: runs a Plan stage by stage, and each Action against the API. The steps that could
// break the ordering invariant re-check their precondition against live reads rather than the
// (possibly stale) caches:
//   Attach / ApplyMirrorFlow: our Output exists, is ours, carries our finalizer, is not deleting,
//     and our credential Secret, which it references, exists;
//   ReleaseOutput: no flow routes to the Output any more (for a ClusterOutput: no Flow or
//     ClusterFlow in any namespace, by the Loggings' rules);
//   RemoveTapFinalizer: nothing the tap owns is left;
//   RemoveDanglingRef: the output really does not exist.
import { AGGREGATORS, aggregatorOf } from '../../api/kinds.ts'
import { FINALIZER_OUTPUT, FINALIZER_TAP, LABEL_TAP, type LogTap, type OutputKind } from '../../api/logtap.ts'
import type { ObjectClient } from '../kube/object-client.ts'
import {
  describeRef,
  hasFinalizer,
  isDeleting,
  type JsonPatchOp,
  type KObject,
  type ObjRef,
} from '../kube/objects.ts'
import { holdsCredential } from './desired/credential-secret.ts'
import { attachPatch, detachPatch, routesTo } from './desired/flows.ts'
import { tapLabelValue } from './desired/naming.ts'
import { owningTap } from './desired/ownership.ts'
import type { Action, Plan } from './desired/plan.ts'

// A precondition not met yet: retried with backoff, not reported as a failure to the user.
export class NotYet extends Error {}

// Runs the stages in order; the actions of a stage start together (each after `before`, a test
// hook that may throw to simulate a crash). After a stage in which anything failed, the first
// failure is thrown and no later stage runs.
export async function runPlan(
  plan: Plan,
  step: (action: Action) => Promise<void>,
  before?: (action: Action) => void | Promise<void>,
): Promise<void> {
  for (const stage of plan) {
    const running: Promise<void>[] = []
    let crashed: { err: unknown } | undefined
    for (const action of stage) {
      try {
        await before?.(action)
      } catch (err) {
        crashed = { err }
        break
      }
      running.push(step(action))
    }
    const results = await Promise.allSettled(running)
    if (crashed) throw crashed.err
    for (const r of results) if (r.status === 'rejected') throw r.reason
  }
}

interface StepResult {
  // What happened, in Kubernetes message style ("Created Output"), or undefined for a no-op.
  did?: string
  object?: ObjRef
}

// What one run of a plan shares between its steps.
export interface Pass {
  client: ObjectClient
  // The tap the plan is for (namespace/name of its key; the object when it still exists). A sweep's
  // plan has none.
  namespace: string
  name: string
  tap?: LogTap
  // Objects whose live state a previous step's API response just returned.
  applied: Map<string, KObject>
  // Live reads started early, in parallel with earlier steps (see startPass()).
  prefetched: Map<string, Promise<KObject | undefined>>
  // Objects a previous step deleted (their prefetched state is stale).
  deleted: Set<string>
}

// A pass over `plan`, starting the live reads its create steps will need, so they overlap with the
// steps before them instead of adding a round trip each.
export function startPass(
  client: ObjectClient,
  tap: { namespace: string; name: string; object?: LogTap },
  plan: Plan,
): Pass {
  const pass: Pass = {
    client,
    namespace: tap.namespace,
    name: tap.name,
    tap: tap.object,
    applied: new Map(),
    prefetched: new Map(),
    deleted: new Set(),
  }
  for (const a of plan.flat()) {
    if (
      (a.type === 'ApplyOutput' || a.type === 'ApplyMirrorFlow' || a.type === 'ApplySecret') &&
      !a.existingUid
    ) {
      const o = a.object
      const ns = o.metadata.namespace ?? ''
      const name = o.metadata.name ?? ''
      const p =
        a.type === 'ApplySecret' ? client.getSecret(ns, name) : client.get(o.kind as ObjRef['kind'], ns, name)
      p.catch(() => {}) // awaited (and its error surfaced) by the step itself, if it runs
      pass.prefetched.set(`${o.kind}/${o.metadata.name}`, p)
    }
  }
  return pass
}

function ownedByUid(o: KObject, uid: string): boolean {
  return owningTap(o)?.uid === uid
}

function removeFinalizerOps(cur: KObject, finalizer: string): JsonPatchOp[] | null {
  const list = cur.metadata.finalizers ?? []
  const i = list.indexOf(finalizer)
  if (i < 0) return null
  return [
    { op: 'test', path: '/metadata/finalizers', value: list },
    { op: 'remove', path: `/metadata/finalizers/${i}` },
  ]
}

function addFinalizerOps(cur: KObject, finalizer: string): JsonPatchOp[] | null {
  if (isDeleting(cur)) return null // the API server rejects new finalizers on a deleting object
  const list = cur.metadata.finalizers
  if (list?.includes(finalizer)) return null
  if (!list) {
    return [
      { op: 'test', path: '/metadata/resourceVersion', value: cur.metadata.resourceVersion },
      { op: 'add', path: '/metadata/finalizers', value: [finalizer] },
    ]
  }
  return [
    { op: 'test', path: '/metadata/finalizers', value: list },
    { op: 'add', path: '/metadata/finalizers/-', value: finalizer },
  ]
}

async function liveOutput(pass: Pass, output: ObjRef): Promise<KObject | undefined> {
  return (
    pass.applied.get(`${output.kind}/${output.name}`) ??
    (await pass.client.get(output.kind, output.namespace, output.name))
  )
}

// Before anything routes records to the Output: it is in place, and so is the Secret it takes the
// credential from (logging-operator cannot render an Output whose Secret is missing).
async function requireLiveOutput(pass: Pass, output: ObjRef, tapUid: string): Promise<void> {
  const live = await liveOutput(pass, output)
  if (!live || !ownedByUid(live, tapUid) || isDeleting(live) || !hasFinalizer(live, FINALIZER_OUTPUT)) {
    throw new NotYet(`${describeRef(output)} is not in place yet`)
  }
  const secret =
    pass.applied.get(`Secret/${output.name}`) ?? (await pass.client.getSecret(output.namespace, output.name))
  if (!secret || !ownedByUid(secret, tapUid) || isDeleting(secret) || !holdsCredential(secret)) {
    throw new NotYet(`Secret ${output.namespace}/${output.name} is not in place yet`)
  }
}

// Every flow, anywhere, that routes to `output` now (live reads): only flows of its aggregator can.
async function liveRoutesTo(client: ObjectClient, output: ObjRef): Promise<KObject | undefined> {
  const target = { ...output, kind: output.kind as OutputKind }
  const kinds = AGGREGATORS[aggregatorOf(target.kind) ?? 'fluentd']
  if (target.kind === kinds.output) {
    const flows = await client.list(kinds.flow, output.namespace)
    return flows.find((f) => routesTo(f, target, []))
  }
  const [flows, clusterFlows, loggings] = await Promise.all([
    client.listEverywhere(kinds.flow),
    client.listEverywhere(kinds.clusterFlow),
    client.listLoggings(),
  ])
  return [...flows, ...clusterFlows].find((f) => routesTo(f, target, loggings))
}

// Live object at the target name: its uid if it is ours; NotYet if someone else's.
async function liveUidFor(pass: Pass, obj: KObject, tapUid: string): Promise<string | undefined> {
  const live = await (pass.prefetched.get(`${obj.kind}/${obj.metadata.name}`) ??
    pass.client.get(obj.kind as ObjRef['kind'], obj.metadata.namespace ?? '', obj.metadata.name ?? ''))
  if (!live) return undefined
  if (!ownedByUid(live, tapUid)) throw new NotYet(`${obj.kind} ${obj.metadata.name} exists and is not ours`)
  return live.metadata.uid
}

export async function execute(pass: Pass, a: Action): Promise<StepResult> {
  const { client, namespace: ns, name, tap } = pass
  const tapUid = tap?.metadata.uid ?? ''
  switch (a.type) {
    case 'AddTapFinalizer': {
      let going = false
      const r = await client.patchFresh(
        'LogTap',
        ns,
        name,
        (cur) => {
          going = cur.metadata.uid !== tapUid || isDeleting(cur)
          return going ? null : addFinalizerOps(cur, FINALIZER_TAP)
        },
        tap,
      )
      // Nothing may be attached for a tap that is already going away: its teardown would not know.
      if (r === 'gone' || going) throw new NotYet(`LogTap ${ns}/${name} is being deleted`)
      return r === 'patched' ? { did: 'Added finalizer' } : {}
    }
    case 'ApplyOutput':
    case 'ApplyMirrorFlow': {
      if (a.type === 'ApplyMirrorFlow') await requireLiveOutput(pass, a.output, tapUid)
      // Never create over an object we did not see: a stale cache must not make us adopt one.
      const uid = a.existingUid ?? (await liveUidFor(pass, a.object, tapUid))
      const applied = await client.apply(a.object, uid)
      pass.applied.set(`${a.object.kind}/${applied.metadata.name}`, applied)
      const verb = uid ? 'Updated' : 'Created'
      const what = a.type === 'ApplyMirrorFlow' ? `mirror ${a.object.kind}` : a.object.kind
      const omitted =
        a.type === 'ApplyMirrorFlow' && a.omittedFilters.length
          ? ` (without its ${a.omittedFilters.join(' and ')} filters, which would act twice on every record)`
          : ''
      return {
        did: `${verb} ${what}${omitted}`,
        object: {
          kind: a.object.kind as ObjRef['kind'],
          namespace: ns,
          name: applied.metadata.name ?? '',
          uid: applied.metadata.uid,
        },
      }
    }
    case 'ApplySecret': {
      if (!a.existingUid) {
        // Never write over a Secret we did not see (a previous one is deleted in an earlier stage).
        const name = a.object.metadata.name ?? ''
        const key = `Secret/${name}`
        const prefetched = pass.deleted.has(key) ? undefined : pass.prefetched.get(key)
        const live = await (prefetched ?? client.getSecret(ns, name))
        if (live) throw new NotYet(`Secret ${ns}/${name} exists and is not known yet`)
      }
      const applied = await client.applySecret(a.object, a.existingUid)
      pass.applied.set(`Secret/${applied.metadata.name}`, applied)
      return { did: a.existingUid ? 'Updated credential Secret' : 'Created credential Secret' }
    }
    case 'DeleteSecret': {
      const done = await client.deleteSecret(a.namespace, a.name, a.uid)
      pass.deleted.add(`Secret/${a.name}`)
      return done ? { did: `Deleted Secret ${a.name} of a previous LogTap of this name` } : {}
    }
    case 'Attach': {
      await requireLiveOutput(pass, a.output, tapUid)
      // The flow as observed is the first try: the patch's test op refuses it if it is stale.
      const r = await client.patchFresh(
        a.flow.kind,
        a.flow.namespace,
        a.flow.name,
        (cur) => attachPatch(cur, a.field, a.output.name),
        a.observed,
      )
      if (r === 'gone') throw new NotYet(`${describeRef(a.flow)} is gone`)
      return r === 'patched' ? { did: `Attached ${a.output.kind} to ${a.flow.kind}`, object: a.flow } : {}
    }
    case 'Detach': {
      const r = await client.patchFresh(a.flow.kind, a.flow.namespace, a.flow.name, (cur) =>
        detachPatch(cur, a.fields, a.output.name),
      )
      return r === 'patched' ? { did: `Detached ${a.output.kind} from ${a.flow.kind}`, object: a.flow } : {}
    }
    case 'DeleteMirrorFlow': {
      const done = await client.delete(a.flow.kind, a.flow.namespace, a.flow.name, a.flow.uid)
      return done ? { did: `Deleted mirror ${a.flow.kind}`, object: a.flow } : {}
    }
    case 'ReleaseOutput': {
      const { kind, namespace } = a.output
      const holder = await liveRoutesTo(client, a.output)
      if (holder)
        throw new NotYet(
          `${describeRef(a.output)} is still referenced by ${holder.kind} ${holder.metadata.namespace}/${holder.metadata.name}`,
        )
      const r = await client.patchFresh(kind, namespace, a.output.name, (cur) =>
        cur.metadata.uid === a.output.uid ? removeFinalizerOps(cur, FINALIZER_OUTPUT) : null,
      )
      return r === 'patched' ? { did: `Released ${kind}`, object: a.output } : {}
    }
    case 'DeleteOutput': {
      const done = await client.delete(a.output.kind, a.output.namespace, a.output.name, a.output.uid)
      return done ? { did: `Deleted ${a.output.kind}`, object: a.output } : {}
    }
    case 'RemoveTapFinalizer': {
      const selector = `${LABEL_TAP}=${tapLabelValue(name)}`
      // A tap makes objects of its flow's aggregator only (spec.flow is immutable).
      const kinds = AGGREGATORS[aggregatorOf(tap?.spec.flow.kind) ?? 'fluentd']
      for (const kind of Object.values(kinds)) {
        for (const o of await client.list(kind, ns, selector)) {
          const vanishing = isDeleting(o) && !hasFinalizer(o, FINALIZER_OUTPUT)
          if (ownedByUid(o, tapUid) && !vanishing) throw new NotYet(`${kind} ${o.metadata.name} still exists`)
        }
      }
      const r = await client.patchFresh('LogTap', ns, name, (cur) =>
        cur.metadata.uid === tapUid ? removeFinalizerOps(cur, FINALIZER_TAP) : null,
      )
      return r === 'patched' ? { did: 'Removed finalizer' } : {}
    }
    case 'DeleteTap': {
      const done = await client.delete('LogTap', ns, name, tapUid)
      return done ? { did: 'Deleted LogTap' } : {}
    }
    case 'RemoveDanglingRef': {
      for (const namespace of a.output.namespaces) {
        if (await client.get(a.output.kind, namespace, a.output.name)) return {}
      }
      const r = await client.patchFresh(a.flow.kind, a.flow.namespace, a.flow.name, (cur) =>
        detachPatch(cur, [a.field], a.output.name),
      )
      return r === 'patched' ? { did: `Removed dangling ${a.output.kind} ref`, object: a.flow } : {}
    }
  }
}
