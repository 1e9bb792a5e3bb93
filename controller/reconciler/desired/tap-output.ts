// The OutputReady condition and the steps for the tap's Output: create or update it when the flow
// can be tapped, never adopt an object that is not ours, and wait for a stale incarnation to go.
import { Conditions, FINALIZER_OUTPUT, type OutputKind } from '../../../api/logtap.ts'
import { hasFinalizer, isDeleting, jsonEqual, type KObject, type ObjRef } from '../../kube/objects.ts'
import type { ConditionInput } from './conditions.ts'
import { desiredOutput, type OutputConfig } from './output.ts'
import { owningTapUid } from './ownership.ts'
import type { Action } from './plan.ts'
import type { TapContext } from './tap-context.ts'
import type { TappedFlow } from './tapped-flow.ts'
import { teardownSteps } from './teardown.ts'

export interface OutputDecision {
  ref: ObjRef
  condition: ConditionInput // OutputReady
  ready: boolean // the Output exists (or is about to be applied): the attachment may proceed
  teardown: Action[] // in order: an Output deleted under a live tap goes, to be recreated later
  apply?: Action
}

export function tapOutput(
  t: TapContext,
  flow: TappedFlow,
  outputs: readonly KObject[],
  flows: readonly KObject[],
  owned: readonly KObject[], // everything a tap of this name owns
  cfg: OutputConfig,
): OutputDecision {
  const { outputKind: kind, objectName: name } = t
  const occupant = outputs.find((x) => x.kind === kind && x.metadata.name === name)
  // Pinned to the incarnation seen now, if any.
  const ref: ObjRef = { kind, namespace: t.namespace, name, uid: occupant?.metadata.uid }
  const not = (reason: string, message: string): ConditionInput => ({
    type: Conditions.OutputReady,
    status: 'False',
    reason,
    message,
  })
  const exists = (message: string): ConditionInput => ({
    type: Conditions.OutputReady,
    status: 'True',
    reason: 'Ready',
    message,
  })

  const owner = occupant ? owningTapUid(occupant, t.name) : undefined
  if (occupant && owner === undefined) {
    const message = `${kind} ${name} already exists and is not managed by this LogTap; it was left untouched (rename the LogTap or remove that object)`
    return { ref, condition: not('NameConflict', message), ready: false, teardown: [] }
  }
  if (occupant && owner !== t.uid) {
    const message = `${kind} ${name} of a previous LogTap of this name is being removed`
    return { ref, condition: not('PreviousOutputTerminating', message), ready: false, teardown: [] }
  }
  if (occupant && isDeleting(occupant)) {
    // Deleted by someone while the tap lives: detach, let it go, then recreate it.
    const mirror = owned.filter((x) => x.kind === t.flowKind && x.metadata.name === name)
    return {
      ref,
      condition: not('OutputDeleting', `${kind} ${name} is being deleted; it will be recreated`),
      ready: false,
      teardown: teardownSteps([occupant, ...mirror], flows),
    }
  }
  if (!flow.tappable || !flow.flow) {
    if (occupant) return { ref, condition: exists(`${kind} ${name} exists`), ready: true, teardown: [] }
    const message = `${kind} ${name} is created once the flow can be tapped`
    return { ref, condition: not('WaitingForFlow', message), ready: false, teardown: [] }
  }
  const want = desiredOutput(t.tap, flow.flow.spec?.['loggingRef'] as string | undefined, cfg)
  const upToDate = occupant !== undefined && outputMatches(occupant, want, t.uid)
  return {
    ref,
    condition: exists(outputMessage(kind, name, occupant)),
    ready: true,
    teardown: [],
    ...(upToDate
      ? {}
      : { apply: { type: 'ApplyOutput', object: want, existingUid: occupant?.metadata.uid } }),
  }
}

function outputMessage(kind: OutputKind, name: string, current: KObject | undefined): string {
  const problems = current?.status?.['problems']
  if (Array.isArray(problems) && problems.length > 0)
    return `${kind} ${name} exists; logging-operator reports: ${problems.join('; ')}`
  return `${kind} ${name} exists`
}

// Our labels and controlling owner reference are on `current` (other labels may be there too).
export function ownedAsWanted(current: KObject, want: KObject, uid: string): boolean {
  const labels = current.metadata.labels ?? {}
  return (
    Object.entries(want.metadata.labels ?? {}).every(([k, v]) => labels[k] === v) &&
    (current.metadata.ownerReferences ?? []).some(
      (r) => r.uid === uid && r.controller === true && r.blockOwnerDeletion === true,
    )
  )
}

function outputMatches(current: KObject, want: KObject, uid: string): boolean {
  return (
    ownedAsWanted(current, want, uid) &&
    hasFinalizer(current, FINALIZER_OUTPUT) &&
    jsonEqual(current.spec, want.spec)
  )
}
