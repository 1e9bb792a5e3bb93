// Removing objects a tap owns without breaking logging-operator: a flow that references a missing
// output makes it stop rendering the whole Logging, so every reference to an Output goes before the
// Output does. Order: refs in other flows, then mirror flows, then outputs nothing references.
import { FINALIZER_OUTPUT, type FlowKind, type OutputKind } from '../../../api/logtap.ts'
import { hasFinalizer, isDeleting, type KObject, refOf } from '../../kube/objects.ts'
import { type RefField, references, refFieldFor } from './flows.ts'
import type { Action } from './plan.ts'

const isFlow = (x: KObject) => x.kind === 'Flow' || x.kind === 'ClusterFlow'
const isOutput = (x: KObject) => x.kind === 'Output' || x.kind === 'ClusterOutput'

// The steps, in order, that remove `owned` (objects of a tap); `flows` are all flows of the namespace.
export function teardownSteps(owned: readonly KObject[], flows: readonly KObject[]): Action[] {
  const steps: Action[] = []
  const mirrors = owned.filter(isFlow)
  const outputs = owned.filter(isOutput)
  for (const out of outputs) {
    const kind = out.kind as OutputKind
    for (const f of flows) {
      if (mirrors.includes(f) || !references(f, kind, out.metadata.name ?? '')) continue
      const field = refFieldFor(f.kind as FlowKind, kind) as RefField
      steps.push({ type: 'Detach', flow: refOf(f), fields: [field], output: refOf(out) })
    }
  }
  for (const m of mirrors) if (!isDeleting(m)) steps.push({ type: 'DeleteMirrorFlow', flow: refOf(m) })
  for (const out of outputs) {
    // A mirror flow (even one being deleted) still routes to the output until it is gone.
    if (mirrors.some((m) => references(m, out.kind as OutputKind, out.metadata.name ?? ''))) continue
    if (hasFinalizer(out, FINALIZER_OUTPUT)) steps.push({ type: 'ReleaseOutput', output: refOf(out) })
    if (!isDeleting(out)) steps.push({ type: 'DeleteOutput', output: refOf(out) })
  }
  return steps
}
