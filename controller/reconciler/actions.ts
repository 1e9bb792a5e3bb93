// Executes one reconcile step. The steps that could break the ordering invariant re-check their
// precondition against live reads rather than the (possibly stale) caches:
//   Attach / ApplyMirrorFlow: our Output exists, is ours, carries our finalizer, is not deleting;
//   ReleaseOutput: no Flow/ClusterFlow in the namespace references the Output any more;
//   RemoveTapFinalizer: nothing the tap owns is left.
import { FINALIZER_OUTPUT, FINALIZER_TAP, LABEL_TAP, type LogTap } from '../../api/logtap.ts'
import type { Api } from '../kube/client.ts'
import {
  describeRef,
  hasFinalizer,
  isDeleting,
  type KObject,
  type ObjRef,
  type OutputKind,
} from '../kube/objects.ts'
import type { Action } from './desired/desired.ts'
import { attachPatch, detachPatch, type JsonPatchOp, references } from './desired/flows.ts'
import { tapLabelValue } from './desired/naming.ts'

// A precondition not met yet: retried with backoff, not reported as a failure to the user.
export class NotYet extends Error {}

export interface StepResult {
  // What happened, in Kubernetes message style ("Created Output"), or undefined for a no-op.
  did?: string
  object?: ObjRef
}

function ownedByUid(o: KObject, uid: string): boolean {
  return (o.metadata.ownerReferences ?? []).some(
    (r) => r.kind === 'LogTap' && r.uid === uid && r.controller === true,
  )
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

// What one reconcile pass knows beyond the caches: objects whose live state a previous step's API
// response just returned.
export interface PassContext {
  applied: Map<string, KObject>
  cached(kind: ObjRef['kind'] | 'LogTap', name: string): KObject | undefined
  // Live reads started early, in parallel with earlier steps (see prefetch()).
  prefetched: Map<string, Promise<KObject | undefined>>
}

// Starts the live reads that the create steps of this pass will need, so they overlap with the
// steps before them instead of adding a round trip each.
export function prefetch(api: Api, ctx: PassContext, actions: readonly Action[]): void {
  for (const a of actions) {
    if ((a.type === 'ApplyOutput' || a.type === 'ApplyMirrorFlow') && !a.existingUid) {
      const o = a.object
      const p = api.get(o.kind as ObjRef['kind'], o.metadata.namespace ?? '', o.metadata.name ?? '')
      p.catch(() => {}) // awaited (and its error surfaced) by the step itself, if it runs
      ctx.prefetched.set(`${o.kind}/${o.metadata.name}`, p)
    }
  }
}

async function requireLiveOutput(api: Api, ctx: PassContext, output: ObjRef, tapUid: string): Promise<void> {
  const live =
    ctx.applied.get(`${output.kind}/${output.name}`) ??
    (await api.get(output.kind, output.namespace, output.name))
  if (!live || !ownedByUid(live, tapUid) || isDeleting(live) || !hasFinalizer(live, FINALIZER_OUTPUT)) {
    throw new NotYet(`${describeRef(output)} is not in place yet`)
  }
}

// Live object at the target name: its uid if it is ours; NotYet if someone else's.
async function liveUidFor(
  api: Api,
  ctx: PassContext,
  obj: KObject,
  tapUid: string,
): Promise<string | undefined> {
  const live = await (ctx.prefetched.get(`${obj.kind}/${obj.metadata.name}`) ??
    api.get(obj.kind as ObjRef['kind'], obj.metadata.namespace ?? '', obj.metadata.name ?? ''))
  if (!live) return undefined
  if (!ownedByUid(live, tapUid)) throw new NotYet(`${obj.kind} ${obj.metadata.name} exists and is not ours`)
  return live.metadata.uid
}

export async function execute(
  api: Api,
  ctx: PassContext,
  ns: string,
  name: string,
  tap: LogTap | undefined,
  a: Action,
): Promise<StepResult> {
  const tapUid = tap?.metadata.uid ?? ''
  switch (a.type) {
    case 'AddTapFinalizer': {
      let going = false
      const r = await api.patchFresh(
        'LogTap',
        ns,
        name,
        (cur) => {
          going = cur.metadata.uid !== tapUid || isDeleting(cur)
          return going ? null : addFinalizerOps(cur, FINALIZER_TAP)
        },
        tap,
      )
      // Nothing may be created for a tap that is already going away: its teardown would not know.
      if (r === 'gone' || going) throw new NotYet(`LogTap ${ns}/${name} is being deleted`)
      return r === 'patched' ? { did: 'Added finalizer' } : {}
    }
    case 'ApplyOutput':
    case 'ApplyMirrorFlow': {
      if (a.type === 'ApplyMirrorFlow') await requireLiveOutput(api, ctx, a.output, tapUid)
      // Never create over an object we did not see: a stale cache must not make us adopt one.
      const uid = a.existingUid ?? (await liveUidFor(api, ctx, a.object, tapUid))
      const applied = await api.apply(a.object, uid)
      ctx.applied.set(`${a.object.kind}/${applied.metadata.name}`, applied)
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
      await requireLiveOutput(api, ctx, a.output, tapUid)
      const r = await api.patchFresh(a.flow.kind, ns, a.flow.name, (cur) =>
        attachPatch(cur, a.field, a.output.name),
      )
      if (r === 'gone') throw new NotYet(`${describeRef(a.flow)} is gone`)
      return r === 'patched' ? { did: `Attached ${a.output.kind} to ${a.flow.kind}`, object: a.flow } : {}
    }
    case 'Detach': {
      const r = await api.patchFresh(a.flow.kind, ns, a.flow.name, (cur) =>
        detachPatch(cur, a.fields, a.output.name),
      )
      return r === 'patched' ? { did: `Detached ${a.output.kind} from ${a.flow.kind}`, object: a.flow } : {}
    }
    case 'DeleteMirrorFlow': {
      const done = await api.delete(a.flow.kind, ns, a.flow.name, a.flow.uid)
      return done ? { did: `Deleted mirror ${a.flow.kind}`, object: a.flow } : {}
    }
    case 'ReleaseOutput': {
      const kind = a.output.kind as OutputKind
      const flows = [...(await api.list('Flow', ns)), ...(await api.list('ClusterFlow', ns))]
      const holder = flows.find((f) => references(f, kind, a.output.name))
      if (holder)
        throw new NotYet(
          `${describeRef(a.output)} is still referenced by ${holder.kind} ${holder.metadata.name}`,
        )
      const r = await api.patchFresh(kind, ns, a.output.name, (cur) =>
        cur.metadata.uid === a.output.uid ? removeFinalizerOps(cur, FINALIZER_OUTPUT) : null,
      )
      return r === 'patched' ? { did: `Released ${kind}`, object: a.output } : {}
    }
    case 'DeleteOutput': {
      const done = await api.delete(a.output.kind, ns, a.output.name, a.output.uid)
      return done ? { did: `Deleted ${a.output.kind}`, object: a.output } : {}
    }
    case 'RemoveTapFinalizer': {
      const selector = `${LABEL_TAP}=${tapLabelValue(name)}`
      for (const kind of ['Output', 'ClusterOutput', 'Flow', 'ClusterFlow'] as const) {
        for (const o of await api.list(kind, ns, selector)) {
          const vanishing = isDeleting(o) && !hasFinalizer(o, FINALIZER_OUTPUT)
          if (ownedByUid(o, tapUid) && !vanishing) throw new NotYet(`${kind} ${o.metadata.name} still exists`)
        }
      }
      const r = await api.patchFresh('LogTap', ns, name, (cur) =>
        cur.metadata.uid === tapUid ? removeFinalizerOps(cur, FINALIZER_TAP) : null,
      )
      return r === 'patched' ? { did: 'Removed finalizer' } : {}
    }
    case 'DeleteTap': {
      const done = await api.delete('LogTap', ns, name, tapUid)
      return done ? { did: 'Deleted LogTap' } : {}
    }
  }
}
