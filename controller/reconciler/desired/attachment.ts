// The Attached condition and the step that feeds the tap's Output: our ref on the tapped flow
// (inject), or our copy of the flow (mirror).
import { Conditions } from '../../../api/logtap.ts'
import { isDeleting, jsonEqual, type KObject, refOf } from '../../kube/objects.ts'
import type { ConditionInput } from './conditions.ts'
import {
  attachPatch,
  desiredMirrorFlow,
  mirrorUnsupportedReason,
  omittedFilters,
  type RefField,
  refFieldFor,
} from './flows.ts'
import { owningTapUid } from './ownership.ts'
import type { Action } from './plan.ts'
import type { TapContext } from './tap-context.ts'
import { type OutputDecision, ownedAsWanted } from './tap-output.ts'
import type { TappedFlow } from './tapped-flow.ts'

interface AttachmentDecision {
  condition: ConditionInput // Attached
  action?: Action
}

export function attachment(
  t: TapContext,
  flow: TappedFlow,
  output: OutputDecision,
  flows: readonly KObject[],
): AttachmentDecision {
  if (!flow.tappable || !flow.flow) {
    return { condition: { ...flow.condition, type: Conditions.Attached } }
  }
  if (!output.ready) {
    const message = `Waiting for ${t.outputKind} ${t.objectName}`
    return { condition: attached('False', 'WaitingForOutput', message) }
  }
  return t.mirror ? mirrorAttachment(t, flow.flow, output, flows) : injectAttachment(t, flow.flow, output)
}

const attached = (status: 'True' | 'False', reason: string, message: string): ConditionInput => ({
  type: Conditions.Attached,
  status,
  reason,
  message,
})

// Our Output's name, last in the flow's output refs.
function injectAttachment(t: TapContext, flow: KObject, output: OutputDecision): AttachmentDecision {
  const field = refFieldFor(t.flowKind, t.outputKind) as RefField
  const message = `${t.objectName} is in ${t.flowKind} ${flow.metadata.name} .spec.${field}`
  const missing = attachPatch(flow, field, t.objectName) !== null
  return {
    condition: attached('True', 'Attached', message),
    ...(missing
      ? { action: { type: 'Attach', flow: refOf(flow), field, output: output.ref, observed: flow } }
      : {}),
  }
}

// A copy of the flow that feeds only our Output; never over an object that is not our copy.
function mirrorAttachment(
  t: TapContext,
  flow: KObject,
  output: OutputDecision,
  flows: readonly KObject[],
): AttachmentDecision {
  const { flowKind, objectName: name } = t
  const unsupported = mirrorUnsupportedReason(flow)
  if (unsupported) return { condition: attached('False', 'MirrorUnsupported', unsupported) }
  const copy = flows.find((f) => f.kind === flowKind && f.metadata.name === name)
  if (copy && owningTapUid(copy, t.name) !== t.uid) {
    const message = `${flowKind} ${name} already exists and is not this LogTap's mirror; it was left untouched`
    return { condition: attached('False', 'NameConflict', message) }
  }
  if (copy && isDeleting(copy)) {
    const message = `${flowKind} ${name} is being deleted; it will be recreated`
    return { condition: attached('False', 'MirrorDeleting', message) }
  }
  const want = desiredMirrorFlow(t.tap, flow, name, name)
  const upToDate = copy !== undefined && ownedAsWanted(copy, want, t.uid) && jsonEqual(copy.spec, want.spec)
  const omitted = omittedFilters(flow)
  const left = omitted.length
    ? `; its ${omitted.join(' and ')} filters are left out of the copy (they would print or count every record a second time)`
    : ''
  const message = `${flowKind} ${name} copies ${flow.metadata.name} and feeds only ${name}${left}`
  return {
    condition: attached('True', 'Mirrored', message),
    ...(upToDate
      ? {}
      : {
          action: {
            type: 'ApplyMirrorFlow',
            object: want,
            existingUid: copy?.metadata.uid,
            output: output.ref,
            omittedFilters: omitted,
          },
        }),
  }
}
