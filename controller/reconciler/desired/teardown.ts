// Removing objects a tap owns without breaking logging-operator: a flow that references a missing
// output makes it stop rendering the whole Logging, so every reference to an Output goes before the
// Output does, in whatever flow it is: a ClusterOutput may be named in the globalOutputRefs of any
// Flow a Logging of its control namespace watches, in any namespace. Order: refs in other flows,
// then mirror flows, then outputs nothing references.
import { isFlowKind, isOutputKind } from '../../../api/kinds.ts'
import { FINALIZER_OUTPUT, type OutputKind } from '../../../api/logtap.ts'
import { hasFinalizer, isDeleting, type KObject, refOf } from '../../kube/objects.ts'
import { refFieldsFor, routesTo } from './flows.ts'
import type { Action } from './plan.ts'

const isFlow = (x: KObject) => isFlowKind(x.kind)
const isOutput = (x: KObject) => isOutputKind(x.kind)

// The steps, in order, that remove `owned` (objects of a tap). `flows`: every flow that may route
// to them (those of the namespace, and those elsewhere that name one of its ClusterOutputs);
// `loggings` decides which of those do (undefined: not known, so all of them).
export function teardownSteps(
  owned: readonly KObject[],
  flows: readonly KObject[],
  loggings: readonly KObject[] | undefined,
): Action[] {
  const steps: Action[] = []
  const mirrors = owned.filter(isFlow)
  const outputs = owned.filter(isOutput)
  const target = (out: KObject) => ({ ...refOf(out), kind: out.kind as OutputKind })
  for (const out of outputs) {
    for (const f of flows) {
      if (mirrors.includes(f) || !routesTo(f, target(out), loggings)) continue
      steps.push({
        type: 'Detach',
        flow: refOf(f),
        fields: refFieldsFor(f, target(out).kind),
        output: refOf(out),
      })
    }
  }
  for (const m of mirrors) if (!isDeleting(m)) steps.push({ type: 'DeleteMirrorFlow', flow: refOf(m) })
  for (const out of outputs) {
    // A mirror flow (even one being deleted) still routes to the output until it is gone.
    if (mirrors.some((m) => routesTo(m, target(out), loggings))) continue
    if (hasFinalizer(out, FINALIZER_OUTPUT)) steps.push({ type: 'ReleaseOutput', output: refOf(out) })
    if (!isDeleting(out)) steps.push({ type: 'DeleteOutput', output: refOf(out) })
  }
  return steps
}
