// The whole reconcile decision for one LogTap key, as a pure function of what was observed.
//
// Ordering invariant (logging-operator renders nothing for a Logging whose flows reference a
// missing output): an Output exists before any flow references it, and every reference to it is
// gone before it is released. So the returned actions are always in this order:
//   tap finalizer → teardown of stale objects (detach refs → delete mirror flows → release and
//   delete outputs) → our Output → the ref (inject) or mirror flow (mirror).
// The edge executes them in order, stops at the first failure and re-checks the dangerous steps
// (Attach, ReleaseOutput, RemoveTapFinalizer) against live reads, so a stale cache can delay
// progress but never break the invariant.
import { Conditions, FINALIZER_OUTPUT, FINALIZER_TAP, type LogTap, streamPath } from '../../../api/logtap.ts'
import {
  type FlowKindName,
  hasFinalizer,
  isDeleting,
  jsonEqual,
  type KObject,
  type ObjRef,
  type OutputKind,
  refOf,
} from '../../kube/objects.ts'
import { type ConditionInput, setCondition } from './conditions.ts'
import {
  attachPatch,
  desiredMirrorFlow,
  mirrorUnsupportedReason,
  type RefField,
  references,
  refFieldFor,
} from './flows.ts'
import { tapObjectName } from './naming.ts'
import { desiredOutput, type OutputConfig, outputKindOf } from './output.ts'
import { type LeaseInfo, type SessionTimings, sessionVerdict } from './session.ts'

export interface Observed {
  namespace: string
  name: string
  tap?: LogTap
  // Every Output, ClusterOutput, Flow and ClusterFlow in the namespace (from the caches).
  outputs: KObject[]
  flows: KObject[]
  // Logging objects, or undefined when they cannot be listed.
  loggings?: KObject[]
  // The session tap's heartbeat Lease; only read for session taps.
  lease?: LeaseInfo
  now: number
}

export type Action =
  | { type: 'AddTapFinalizer' }
  | { type: 'ApplyOutput'; object: KObject; existingUid?: string }
  | { type: 'Attach'; flow: ObjRef; field: RefField; output: ObjRef }
  | { type: 'ApplyMirrorFlow'; object: KObject; existingUid?: string; output: ObjRef }
  | { type: 'Detach'; flow: ObjRef; fields: RefField[]; output: ObjRef }
  | { type: 'DeleteMirrorFlow'; flow: ObjRef }
  | { type: 'ReleaseOutput'; output: ObjRef }
  | { type: 'DeleteOutput'; output: ObjRef }
  | { type: 'RemoveTapFinalizer' }
  | { type: 'DeleteTap'; reason: string; message: string }

// The status fields the controller owns (the relay owns listeners/records).
export interface ControllerStatus {
  observedGeneration?: number
  conditions: NonNullable<NonNullable<LogTap['status']>['conditions']>
  outputKind?: OutputKind
  outputName?: string
  mirrorFlowName?: string
  streamPath?: string
}

export interface Desired {
  actions: Action[]
  status?: ControllerStatus // undefined: leave the status alone (tap gone)
  requeueAfterMs?: number
}

export type DesiredConfig = OutputConfig & SessionTimings

const C = Conditions

function ownedBy(o: KObject, name: string): string | undefined {
  const r = (o.metadata.ownerReferences ?? []).find(
    (x) => x.kind === 'LogTap' && x.name === name && x.controller,
  )
  return r?.uid
}

// Teardown of objects owned by (some incarnation of) the tap that are not wanted any more:
// refs in other flows first, then mirror flows, then outputs nothing references any more.
function teardown(stale: KObject[], flows: KObject[], actions: Action[]): void {
  const mirrors = stale.filter((x) => x.kind === 'Flow' || x.kind === 'ClusterFlow')
  const outputs = stale.filter((x) => x.kind === 'Output' || x.kind === 'ClusterOutput')
  for (const out of outputs) {
    const kind = out.kind as OutputKind
    for (const f of flows) {
      if (mirrors.includes(f) || !references(f, kind, out.metadata.name ?? '')) continue
      const field = refFieldFor(f.kind as FlowKindName, kind) as RefField
      actions.push({ type: 'Detach', flow: refOf(f), fields: [field], output: refOf(out) })
    }
  }
  for (const m of mirrors) if (!isDeleting(m)) actions.push({ type: 'DeleteMirrorFlow', flow: refOf(m) })
  for (const out of outputs) {
    // A mirror flow (even one being deleted) still routes to the output until it is gone.
    if (mirrors.some((m) => references(m, out.kind as OutputKind, out.metadata.name ?? ''))) continue
    if (hasFinalizer(out, FINALIZER_OUTPUT)) actions.push({ type: 'ReleaseOutput', output: refOf(out) })
    if (!isDeleting(out)) actions.push({ type: 'DeleteOutput', output: refOf(out) })
  }
}

export function desired(o: Observed, cfg: DesiredConfig): Desired {
  const { tap } = o
  const actions: Action[] = []
  const mine = [...o.outputs, ...o.flows].filter((x) => ownedBy(x, o.name) !== undefined)

  // The tap is gone or going: everything it owns goes, refs first; then its finalizer.
  if (!tap || isDeleting(tap)) {
    teardown(mine, o.flows, actions)
    // Released only once nothing of ours is left (the edge re-checks this live).
    if (tap && hasFinalizer(tap, FINALIZER_TAP) && actions.length === 0 && mine.length === 0) {
      actions.push({ type: 'RemoveTapFinalizer' })
    }
    return { actions, status: undefined }
  }

  const uid = tap.metadata.uid ?? ''
  const gen = tap.metadata.generation
  const now = new Date(o.now)
  let conds = tap.status?.conditions ?? []
  const set = (c: ConditionInput) => {
    conds = setCondition(conds, c, now, gen)
  }
  const outputKind = outputKindOf(tap)
  const objName = tapObjectName(tap.metadata.name ?? '')
  const flowKind = tap.spec.flow.kind as FlowKindName
  const mirror = tap.spec.mode === 'mirror'
  const status = (): ControllerStatus => {
    const s: ControllerStatus = {
      observedGeneration: gen,
      conditions: conds,
      outputKind,
      outputName: objName,
      streamPath: streamPath(o.namespace, o.name),
    }
    if (mirror) s.mirrorFlowName = objName
    return s
  }

  // A session tap whose heartbeat stopped is deleted; the deletion then tears everything down.
  let requeueAfterMs: number | undefined
  if (tap.spec.lifetime === 'session') {
    const v = sessionVerdict(tap, o.lease, o.now, cfg)
    if (v.expired)
      return { actions: [{ type: 'DeleteTap', reason: v.reason, message: v.message }], status: status() }
    requeueAfterMs = v.recheckInMs
  }

  if (!hasFinalizer(tap, FINALIZER_TAP)) actions.push({ type: 'AddTapFinalizer' })

  // Objects of ours that are not the wanted ones (another incarnation of this tap, another kind).
  const isWanted = (x: KObject) =>
    ownedBy(x, o.name) === uid &&
    x.metadata.name === objName &&
    (x.kind === outputKind || (mirror && x.kind === flowKind))
  const stale = mine.filter((x) => !isWanted(x))
  teardown(stale, o.flows, actions)

  // The tapped flow.
  const flow = o.flows.find((f) => f.kind === flowKind && f.metadata.name === tap.spec.flow.name)
  let flowProblem: ConditionInput | undefined
  if (!flow) {
    const other = o.flows.find((f) => f.kind !== flowKind && f.metadata.name === tap.spec.flow.name)
    const hint = other ? `; a ${other.kind} of that name exists: set spec.flow.kind: ${other.kind}` : ''
    flowProblem = {
      type: C.FlowFound,
      status: 'False',
      reason: 'FlowNotFound',
      message: `${flowKind} ${o.namespace}/${tap.spec.flow.name} does not exist${hint}; the tap waits for it`,
    }
  } else if (flowKind === 'ClusterFlow' && o.loggings && o.loggings.length > 0) {
    const ok = o.loggings.some(
      (l) =>
        l.spec?.['controlNamespace'] === o.namespace ||
        l.spec?.['allowClusterResourcesFromAllNamespaces'] === true,
    )
    if (!ok) {
      const nss = [...new Set(o.loggings.map((l) => String(l.spec?.['controlNamespace'])))].join(', ')
      flowProblem = {
        type: C.FlowFound,
        status: 'False',
        reason: 'WrongNamespace',
        message: `ClusterFlow taps must live in the logging control namespace (${nss}), next to the ClusterFlow; ${o.namespace} is not one, so logging-operator ignores ClusterFlows and ClusterOutputs here`,
      }
    }
  }
  set(
    flowProblem ?? {
      type: C.FlowFound,
      status: 'True',
      reason: 'Found',
      message: `${flowKind} ${tap.spec.flow.name} found`,
    },
  )

  // Our output: never adopt an object that is not ours, and wait for a stale incarnation to go.
  const occupant = o.outputs.find((x) => x.kind === outputKind && x.metadata.name === objName)
  const outputRef: ObjRef = {
    kind: outputKind,
    namespace: o.namespace,
    name: objName,
    uid: occupant?.metadata.uid,
  }
  let outputOk = false
  let outputCond: ConditionInput
  if (occupant && ownedBy(occupant, o.name) === undefined) {
    outputCond = {
      type: C.OutputReady,
      status: 'False',
      reason: 'NameConflict',
      message: `${outputKind} ${objName} already exists and is not managed by this LogTap; it was left untouched (rename the LogTap or remove that object)`,
    }
  } else if (occupant && ownedBy(occupant, o.name) !== uid) {
    outputCond = {
      type: C.OutputReady,
      status: 'False',
      reason: 'PreviousOutputTerminating',
      message: `${outputKind} ${objName} of a previous LogTap of this name is being removed`,
    }
  } else if (occupant && isDeleting(occupant)) {
    // Deleted by someone while the tap lives: detach, let it go, then recreate it.
    teardown(
      [occupant, ...mine.filter((x) => x.kind === flowKind && x.metadata.name === objName)],
      o.flows,
      actions,
    )
    outputCond = {
      type: C.OutputReady,
      status: 'False',
      reason: 'OutputDeleting',
      message: `${outputKind} ${objName} is being deleted; it will be recreated`,
    }
  } else if (!flow || flowProblem) {
    outputOk = occupant !== undefined
    outputCond = outputOk
      ? { type: C.OutputReady, status: 'True', reason: 'Ready', message: `${outputKind} ${objName} exists` }
      : {
          type: C.OutputReady,
          status: 'False',
          reason: 'WaitingForFlow',
          message: `${outputKind} ${objName} is created once the flow can be tapped`,
        }
  } else {
    const want = desiredOutput(tap, flow.spec?.['loggingRef'] as string | undefined, cfg)
    if (!occupant || !outputMatches(occupant, want, uid)) {
      actions.push({ type: 'ApplyOutput', object: want, existingUid: occupant?.metadata.uid })
    }
    outputOk = true
    outputCond = {
      type: C.OutputReady,
      status: 'True',
      reason: 'Ready',
      message: outputMessage(outputKind, objName, occupant),
    }
  }
  set(outputCond)

  // The attachment: our ref on the tapped flow, or our mirror flow.
  let attachCond: ConditionInput
  if (!flow || flowProblem) {
    attachCond = {
      type: C.Attached,
      status: 'False',
      reason: flowProblem?.reason ?? 'FlowNotFound',
      message: flowProblem?.message ?? '',
    }
  } else if (!outputOk) {
    attachCond = {
      type: C.Attached,
      status: 'False',
      reason: 'WaitingForOutput',
      message: `Waiting for ${outputKind} ${objName}`,
    }
  } else if (!mirror) {
    const field = refFieldFor(flowKind, outputKind) as RefField
    if (attachPatch(flow, field, objName) !== null)
      actions.push({ type: 'Attach', flow: refOf(flow), field, output: outputRef })
    attachCond = {
      type: C.Attached,
      status: 'True',
      reason: 'Attached',
      message: `${objName} is in ${flowKind} ${flow.metadata.name} .spec.${field}`,
    }
  } else {
    const unsupported = mirrorUnsupportedReason(flow)
    const copy = o.flows.find((f) => f.kind === flowKind && f.metadata.name === objName)
    if (unsupported) {
      attachCond = { type: C.Attached, status: 'False', reason: 'MirrorUnsupported', message: unsupported }
    } else if (copy && ownedBy(copy, o.name) !== uid) {
      attachCond = {
        type: C.Attached,
        status: 'False',
        reason: 'NameConflict',
        message: `${flowKind} ${objName} already exists and is not this LogTap's mirror; it was left untouched`,
      }
    } else if (copy && isDeleting(copy)) {
      attachCond = {
        type: C.Attached,
        status: 'False',
        reason: 'MirrorDeleting',
        message: `${flowKind} ${objName} is being deleted; it will be recreated`,
      }
    } else {
      const want = desiredMirrorFlow(tap, flow, objName, objName)
      if (!copy || !mirrorMatches(copy, want))
        actions.push({
          type: 'ApplyMirrorFlow',
          object: want,
          existingUid: copy?.metadata.uid,
          output: outputRef,
        })
      attachCond = {
        type: C.Attached,
        status: 'True',
        reason: 'Mirrored',
        message: `${flowKind} ${objName} copies ${flow.metadata.name} and feeds only ${objName}`,
      }
    }
  }
  set(attachCond)

  const notReady = [flowProblem, outputCond, attachCond].find((c) => c && c.status !== 'True')
  set(
    notReady
      ? { type: C.Ready, status: 'False', reason: notReady.reason, message: notReady.message }
      : {
          type: C.Ready,
          status: 'True',
          reason: 'Ready',
          message: `Records of ${flowKind} ${tap.spec.flow.name} stream at ${streamPath(o.namespace, o.name)}`,
        },
  )
  return { actions, status: status(), requeueAfterMs }
}

function outputMessage(kind: OutputKind, name: string, current: KObject | undefined): string {
  const problems = current?.status?.['problems']
  if (Array.isArray(problems) && problems.length > 0)
    return `${kind} ${name} exists; logging-operator reports: ${problems.join('; ')}`
  return `${kind} ${name} exists`
}

function metaMatches(current: KObject, want: KObject, uid: string): boolean {
  const labels = current.metadata.labels ?? {}
  return (
    Object.entries(want.metadata.labels ?? {}).every(([k, v]) => labels[k] === v) &&
    (current.metadata.ownerReferences ?? []).some(
      (r) => r.uid === uid && r.controller === true && r.blockOwnerDeletion === true,
    )
  )
}

export function outputMatches(current: KObject, want: KObject, uid: string): boolean {
  return (
    metaMatches(current, want, uid) &&
    hasFinalizer(current, FINALIZER_OUTPUT) &&
    jsonEqual(current.spec, want.spec)
  )
}

function mirrorMatches(current: KObject, want: KObject): boolean {
  const uid = want.metadata.ownerReferences?.[0]?.uid ?? ''
  return metaMatches(current, want, uid) && jsonEqual(current.spec, want.spec)
}

// Objects in ns that any LogTap of this namespace owns: used by the sweep to find orphans.
export function ownerTapName(o: KObject): string | undefined {
  return (o.metadata.ownerReferences ?? []).find((x) => x.kind === 'LogTap' && x.controller)?.name
}
