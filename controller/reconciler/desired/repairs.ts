// What the periodic sweep repairs, as pure functions of the caches.
import type { FlowKind } from '../../../api/logtap.ts'
import { type KObject, refOf } from '../../kube/objects.ts'
import { type RefField, refFieldFor, refsIn } from './flows.ts'
import { keyOf, looksLikeTapObjectName } from './naming.ts'
import { outputKindFor } from './output.ts'
import { controllingTap } from './ownership.ts'
import type { Action } from './plan.ts'

// The keys of taps that own objects but are gone (or were recreated: another uid). Reconciling
// such a key tears the objects down in the safe order.
export function orphanOwnerKeys(
  owned: readonly KObject[],
  tapUid: (namespace: string, name: string) => string | undefined,
): string[] {
  const keys: string[] = []
  for (const o of owned) {
    const owner = controllingTap(o)
    if (!owner) continue
    const ns = o.metadata.namespace ?? ''
    if (tapUid(ns, owner.name) !== owner.uid) keys.push(keyOf(ns, owner.name))
  }
  return keys
}

// Refs shaped like ours in a flow's own-kind output list (a Flow's Outputs, a ClusterFlow's
// ClusterOutputs) that name no output of its namespace. Such a dangling ref makes logging-operator
// stop rendering the whole Logging; the executor removes each only after a live read confirms the
// output is missing (the cache may lag behind a just-created one).
export function danglingRefRepairs(flows: readonly KObject[], outputs: readonly KObject[]): Action[] {
  const repairs: Action[] = []
  for (const flow of flows) {
    const ns = flow.metadata.namespace ?? ''
    const outputKind = outputKindFor(flow.kind as FlowKind)
    const field = refFieldFor(flow.kind as FlowKind, outputKind) as RefField
    const existing = new Set(
      outputs
        .filter((x) => x.kind === outputKind && x.metadata.namespace === ns)
        .map((x) => x.metadata.name ?? ''),
    )
    for (const ref of refsIn(flow, field)) {
      if (!looksLikeTapObjectName(ref) || existing.has(ref)) continue
      repairs.push({
        type: 'RemoveDanglingRef',
        flow: refOf(flow),
        field,
        output: { kind: outputKind, namespace: ns, name: ref },
      })
    }
  }
  return repairs
}
