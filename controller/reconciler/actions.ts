// The executor: runs a Plan stage by stage, and each Action against the API. The steps that could
// break the ordering invariant re-check their precondition against live reads rather than the
// (possibly stale) caches:
//   Attach / ApplyMirrorFlow: our Output exists, is ours, carries our finalizer, is not deleting;
//   ReleaseOutput: no Flow/ClusterFlow in the namespace references the Output any more;
//   RemoveTapFinalizer: nothing the tap owns is left;
//   RemoveDanglingRef: the output really does not exist.
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
import { attachPatch, detachPatch, references } from './desired/flows.ts'
import { tapLabelValue } from './desired/naming.ts'
import { controllingTap } from './desired/ownership.ts'
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
  }
  for (const a of plan.flat()) {
    if ((a.type === 'ApplyOutput' || a.type === 'ApplyMirrorFlow') && !a.existingUid) {
      const o = a.object
      const p = client.get(o.kind as ObjRef['kind'], o.metadata.namespace ?? '', o.metadata.name ?? '')
      p.catch(() => {}) // awaited (and its error surfaced) by the step itself, if it runs
      pass.prefetched.set(`${o.kind}/${o.metadata.name}`, p)
    }
  }
  return pass
}

function ownedByUid(o: KObject, uid: string): boolean {
  return controllingTap(o)?.uid === uid
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

async function requireLiveOutput(pass: Pass, output: ObjRef, tapUid: string): Promise<void> {
  const live =
    pass.applied.get(`${output.kind}/${output.name}`) ??
    (await pass.client.get(output.kind, output.namespace, output.name))
  if (!live || !ownedByUid(live, tapUid) || isDeleting(live) || !hasFinalizer(live, FINALIZER_OUTPUT)) {
    throw new NotYet(`${describeRef(output)} is not in place yet`)
  }
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
      return {
        did: `${verb} ${what}`,
        object: {
          kind: a.object.kind as ObjRef['kind'],
          namespace: ns,
          name: applied.metadata.name ?? '',
          uid: applied.metadata.uid,
        },
      }
    }
    case 'Attach': {
      await requireLiveOutput(pass, a.output, tapUid)
      const r = await client.patchFresh(a.flow.kind, a.flow.namespace, a.flow.name, (cur) =>
        attachPatch(cur, a.field, a.output.name),
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
      const flows = [
        ...(await client.list('Flow', namespace)),
        ...(await client.list('ClusterFlow', namespace)),
      ]
      const holder = flows.find((f) => references(f, kind as OutputKind, a.output.name))
      if (holder)
        throw new NotYet(
          `${describeRef(a.output)} is still referenced by ${holder.kind} ${holder.metadata.name}`,
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
      for (const kind of ['Output', 'ClusterOutput', 'Flow', 'ClusterFlow'] as const) {
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
      if (await client.get(a.output.kind, a.output.namespace, a.output.name)) return {}
      const r = await client.patchFresh(a.flow.kind, a.flow.namespace, a.flow.name, (cur) =>
        detachPatch(cur, [a.field], a.output.name),
      )
      return r === 'patched' ? { did: `Removed dangling ${a.output.kind} ref`, object: a.flow } : {}
    }
  }
}
