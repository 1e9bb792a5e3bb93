// The OutputReady condition and the steps for the tap's Output and its credential Secret: create or
// update them when the flow can be tapped (the Secret first, owned by the tap alone until the Output
// has a uid), never adopt an object that is not ours, and wait for a stale incarnation to go.
import { Conditions, FINALIZER_OUTPUT } from '../../../api/logtap.ts'
import { hasFinalizer, isDeleting, jsonEqual, type KObject, type ObjRef } from '../../kube/objects.ts'
import type { ConditionInput } from './conditions.ts'
import { desiredCredentialSecret, secretAsWanted } from './credential-secret.ts'
import { loggingRefOf } from './loggings.ts'
import { desiredOutput, type OutputConfig } from './output.ts'
import { owningTap, owningTapUid } from './ownership.ts'
import type { Action } from './plan.ts'
import type { TapContext } from './tap-context.ts'
import type { TappedFlow } from './tapped-flow.ts'
import { teardownSteps } from './teardown.ts'

export interface OutputDecision {
  ref: ObjRef
  occupant?: KObject // the Output of that name now, when it is this tap's
  condition: ConditionInput // OutputReady
  ready: boolean // the Output exists (or is about to be applied): the attachment may proceed
  teardown: Action[] // in order: an Output deleted under a live tap goes, to be recreated later
  apply?: Action
  secret?: Action // a stage before `apply`: the Output names it
}

export interface OutputWorld {
  outputs: readonly KObject[] // of the namespace
  flows: readonly KObject[] // that may route to the tap's Output (its namespace's and others)
  loggings: readonly KObject[] | undefined
  owned: readonly KObject[] // everything a tap of this name owns
  secret: KObject | undefined // the Secret named like the tap's objects, read live
}

export function tapOutput(
  t: TapContext,
  flow: TappedFlow,
  w: OutputWorld,
  cfg: OutputConfig,
): OutputDecision {
  const { outputs, flows, owned, secret } = w
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
      teardown: teardownSteps([occupant, ...mirror], flows, w.loggings),
    }
  }
  if (!flow.tappable || !flow.flow) {
    if (occupant)
      return { ref, occupant, condition: exists(`${kind} ${name} exists`), ready: true, teardown: [] }
    const message = `${kind} ${name} is created once the flow can be tapped`
    return { ref, condition: not('WaitingForFlow', message), ready: false, teardown: [] }
  }
  const secretOwner = secret ? owningTap(secret) : undefined
  if (secret && secretOwner?.name !== t.name) {
    const message = `Secret ${name} already exists and is not managed by this LogTap; it was left untouched (rename the LogTap or remove that Secret)`
    return { ref, condition: not('NameConflict', message), ready: false, teardown: [] }
  }
  // A previous tap's Secret, whose Output is gone: it goes now (the garbage collector would take
  // it a moment later, maybe after our update of it).
  const staleSecret = secret && secretOwner?.uid !== t.uid ? secret : undefined
  const teardown: Action[] = staleSecret
    ? [{ type: 'DeleteSecret', namespace: t.namespace, name, uid: staleSecret.metadata.uid ?? '' }]
    : []
  const loggingRef = loggingRefOf(flow.flow) || undefined
  const want = desiredOutput(t.tap, loggingRef, cfg)
  const upToDate = occupant !== undefined && outputMatches(occupant, want, t.uid)
  const apply: Action | undefined = upToDate
    ? undefined
    : { type: 'ApplyOutput', object: want, existingUid: occupant?.metadata.uid }
  // Owned by the Output too, once it has a uid (an Output created now gets it at the next reconcile).
  const outputUid = occupant?.metadata.uid
  const wantSecret = desiredCredentialSecret(
    t.tap,
    loggingRef,
    outputUid ? { kind, name, uid: outputUid } : undefined,
    cfg.ingestKey,
  )
  const secretCurrent = secret && !staleSecret && secretAsWanted(secret, wantSecret)
  return {
    ref,
    occupant,
    condition: exists(occupant ? `${kind} ${name} exists` : `${kind} ${name} is being created`),
    ready: true,
    teardown,
    ...(apply ? { apply } : {}),
    ...(secretCurrent
      ? {}
      : {
          secret: {
            type: 'ApplySecret',
            object: wantSecret,
            existingUid: staleSecret ? undefined : secret?.metadata.uid,
          },
        }),
  }
}

// Our labels, annotations and controlling owner reference are on `current` (others may be there too).
export function ownedAsWanted(current: KObject, want: KObject, uid: string): boolean {
  const labels = current.metadata.labels ?? {}
  const annotations = current.metadata.annotations ?? {}
  return (
    Object.entries(want.metadata.labels ?? {}).every(([k, v]) => labels[k] === v) &&
    Object.entries(want.metadata.annotations ?? {}).every(([k, v]) => annotations[k] === v) &&
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
