// What the periodic sweep repairs, as pure functions of the caches.
import { AGGREGATORS, aggregatorOf, isClusterKind } from '../../../api/kinds.ts'
import { type KObject, refOf } from '../../kube/objects.ts'
import { refsIn } from './flows.ts'
import { allowsClusterResourcesAnywhere, controlNamespaceOf, loggingsOf } from './loggings.ts'
import { keyOf, looksLikeTapObjectName } from './naming.ts'
import { owningTap } from './ownership.ts'
import type { Action } from './plan.ts'

// The keys of taps that own objects but are gone (or were recreated: another uid). Reconciling
// such a key tears the objects down in the safe order.
export function orphanOwnerKeys(
  owned: readonly KObject[],
  tapUid: (namespace: string, name: string) => string | undefined,
): string[] {
  const keys: string[] = []
  for (const o of owned) {
    const owner = owningTap(o)
    if (!owner) continue
    const ns = o.metadata.namespace ?? ''
    if (tapUid(ns, owner.name) !== owner.uid) keys.push(keyOf(ns, owner.name))
  }
  return keys
}

// The namespaces in which the ClusterOutputs named in `flow`'s globalOutputRefs are looked up by
// logging-operator: a ClusterFlow's own; for a Flow, the control namespaces of the Loggings that
// render it. Undefined when that cannot be told (Loggings unknown, or one that takes cluster
// resources from every namespace).
function globalRefNamespaces(flow: KObject, loggings: readonly KObject[] | undefined): string[] | undefined {
  if (isClusterKind(flow.kind)) return [flow.metadata.namespace ?? '']
  if (!loggings) return undefined
  const mine = loggingsOf(flow, loggings)
  if (mine.some(allowsClusterResourcesAnywhere)) return undefined
  return [...new Set(mine.map(controlNamespaceOf))]
}

// Refs shaped like ours that name an output which exists nowhere it could be: in a Flow's
// localOutputRefs (Outputs of its namespace), and in any flow's globalOutputRefs (ClusterOutputs of
// the control namespaces its Loggings use). Such a dangling ref makes logging-operator stop
// rendering the whole Logging. Only outputs the controller can see are judged (`inScope`: the
// namespaces whose outputs it watches); the executor removes each ref only after live reads
// confirm the output is missing (the cache may lag behind a just-created one).
export function danglingRefRepairs(
  flows: readonly KObject[],
  outputs: readonly KObject[],
  loggings: readonly KObject[] | undefined,
  inScope: (namespace: string) => boolean,
): Action[] {
  const repairs: Action[] = []
  const exists = (kind: string, ns: string, name: string) =>
    outputs.some((x) => x.kind === kind && x.metadata.namespace === ns && x.metadata.name === name)
  for (const flow of flows) {
    const ns = flow.metadata.namespace ?? ''
    const aggregator = aggregatorOf(flow.kind)
    if (!aggregator) continue
    const { flow: localFlow, output, clusterOutput } = AGGREGATORS[aggregator]
    if (flow.kind === localFlow && inScope(ns)) {
      for (const ref of refsIn(flow, 'localOutputRefs')) {
        if (!looksLikeTapObjectName(ref) || exists(output, ns, ref)) continue
        repairs.push({
          type: 'RemoveDanglingRef',
          flow: refOf(flow),
          field: 'localOutputRefs',
          output: { kind: output, name: ref, namespaces: [ns] },
        })
      }
    }
    const global = refsIn(flow, 'globalOutputRefs').filter(looksLikeTapObjectName)
    if (global.length === 0) continue
    const namespaces = globalRefNamespaces(flow, loggings)
    // No Logging renders this flow (nothing breaks), or one we cannot judge.
    if (!namespaces?.length || !namespaces.every(inScope)) continue
    for (const ref of global) {
      if (namespaces.some((n) => exists(clusterOutput, n, ref))) continue
      repairs.push({
        type: 'RemoveDanglingRef',
        flow: refOf(flow),
        field: 'globalOutputRefs',
        output: { kind: clusterOutput, name: ref, namespaces },
      })
    }
  }
  return repairs
}
