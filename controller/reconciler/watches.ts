// What the reconciler watches, and which LogTap keys an event on each kind may affect (reconcile
// re-reads everything else from the caches).
import { FLOW_KINDS, isFlowKind, KINDS, OUTPUT_KINDS } from '../../api/kinds.ts'
import type { LogTap } from '../../api/logtap.ts'
import type { SharedInformer, SharedInformers } from '../kube/informers.ts'
import type { KObject } from '../kube/objects.ts'
import { refsIn } from './desired/flows.ts'
import { keyOf, keyOfObject, looksLikeTapObjectName, tapObjectName } from './desired/naming.ts'
import { owningTap } from './desired/ownership.ts'

export const WATCHED = ['LogTap', ...OUTPUT_KINDS, ...FLOW_KINDS, 'Logging'] as const
type WatchedKind = (typeof WATCHED)[number]

// The reconciler's read-only view of the cluster: one shared informer per watched kind.
export type Caches = Readonly<Record<WatchedKind, SharedInformer>>

// Flows of every kind are watched in every namespace, even by a controller scoped to one: any
// Flow a Logging watches may name the ClusterOutput of a tap in that Logging's control namespace
// (a SyslogNGFlow a SyslogNGClusterOutput), and it must be seen to be detached before that output
// goes.
const EVERYWHERE: readonly WatchedKind[] = FLOW_KINDS

export function cachesFrom(informers: SharedInformers): Caches {
  return Object.fromEntries(
    WATCHED.map((kind) => [kind, informers.for(KINDS[kind], { everywhere: EVERYWHERE.includes(kind) })]),
  ) as Record<WatchedKind, SharedInformer>
}

// `tapsIn(namespace)`: the cached LogTaps of a namespace (all of them when undefined);
// `clusterOutputs()`: the cached ClusterOutputs and SyslogNGClusterOutputs.
export function affectedTaps(
  kind: WatchedKind,
  obj: KObject,
  tapsIn: (namespace?: string) => readonly KObject[],
  clusterOutputs: () => readonly KObject[] = () => [],
): string[] {
  if (kind === 'LogTap') return [keyOfObject(obj)]
  // A Logging decides where cluster flow taps may live, and whether any tap's flow is rendered at
  // all (its Accepted condition). The event carries only the new object, not what it watched
  // before, so every tap is looked at again; Loggings change rarely.
  if (kind === 'Logging') return tapsIn().map(keyOfObject)
  // An output or flow: the tap that owns it, and the taps that tap it or would own it by name.
  const ns = obj.metadata.namespace ?? ''
  const keys: string[] = []
  const owner = owningTap(obj)
  if (owner) keys.push(keyOf(ns, owner.name))
  // A flow anywhere naming a tap's cluster output: that tap's teardown may be waiting for it.
  const named = refsIn(obj, 'globalOutputRefs').filter(looksLikeTapObjectName)
  if (named.length && isFlowKind(kind)) {
    for (const out of clusterOutputs()) {
      const outOwner = owningTap(out)
      if (outOwner && named.includes(out.metadata.name ?? ''))
        keys.push(keyOf(out.metadata.namespace ?? '', outOwner.name))
    }
  }
  for (const t of tapsIn(ns)) {
    const tapName = t.metadata.name ?? ''
    const flowName = (t as LogTap).spec?.flow?.name
    if (flowName === obj.metadata.name || tapObjectName(tapName) === obj.metadata.name) {
      keys.push(keyOf(ns, tapName))
    }
  }
  return keys
}
