// The whole reconcile decision for one LogTap key, as a pure function of what was observed: a Plan
// of API steps and the controller's status fields.
//
// Ordering invariant (logging-operator renders nothing for a Logging whose flows reference a
// missing output): an Output exists before any flow references it, and every reference to it is
// gone before it is released. So a live tap's plan is, stage by stage:
//   teardown of stale objects (detach refs → delete mirror flows → release and delete outputs),
//   one step at a time → the tap finalizer with the credential Secret → our Output, which names
//   the Secret (logging-operator renders every Output it sees, referenced or not, and fails the
//   whole Logging's render while a Secret one names is missing) → the ref (inject) or the mirror
//   flow (mirror), which needs the Output.
// The Secret is never deleted by us: the garbage collector takes it once the tap and the Output
// are both gone (credential-secret.ts).
// The executor stops after the first stage that fails, and re-checks the dangerous steps (Attach,
// ApplyMirrorFlow, ReleaseOutput, RemoveTapFinalizer) against live reads, so a stale cache can
// delay progress but never break the invariant.
import { FINALIZER_TAP, type LogTap, type OutputKind, streamPath } from '../../../api/logtap.ts'
import { hasFinalizer, isDeleting, type KObject } from '../../kube/objects.ts'
import { acceptance } from './acceptance.ts'
import { attachment } from './attachment.ts'
import { type ConditionInput, readiness, setCondition } from './conditions.ts'
import type { OutputConfig } from './output.ts'
import { owningTapUid } from './ownership.ts'
import { type Action, oneByOne, type Plan, together } from './plan.ts'
import { tapSelection } from './selection.ts'
import { type LeaseInfo, type SessionTimings, sessionVerdict } from './session.ts'
import { type TapContext, tapContext } from './tap-context.ts'
import { tapOutput } from './tap-output.ts'
import { tappedFlow } from './tapped-flow.ts'
import { teardownSteps } from './teardown.ts'

export interface Observed {
  namespace: string
  name: string
  tap?: LogTap
  // Every Output, ClusterOutput, Flow and ClusterFlow in the namespace (from the caches).
  outputs: KObject[]
  flows: KObject[]
  // Flows and ClusterFlows of other namespaces whose globalOutputRefs name the tap's ClusterOutput.
  elsewhere?: KObject[]
  // The Secret named like the tap's objects (the credential Secret), read live; absent: none.
  secret?: KObject
  // Logging objects, or undefined when they cannot be listed.
  loggings?: KObject[]
  // The session tap's heartbeat Lease; only read for session taps.
  lease?: LeaseInfo
  now: number
}

// The status fields the controller owns (the relay owns listeners/records).
export interface ControllerStatus {
  observedGeneration?: number
  conditions: NonNullable<NonNullable<LogTap['status']>['conditions']>
  outputKind?: OutputKind
  outputName?: string
  mirrorFlowName?: string
  streamPath?: string
  selection?: string
}

interface Desired {
  plan: Plan
  status?: ControllerStatus // undefined: leave the status alone (tap gone)
  requeueAfterMs?: number
}

export type DesiredConfig = OutputConfig &
  SessionTimings & {
    operatorWaitMs: number // for logging-operator to accept an attached tap before saying it is silent
  }

export function desired(o: Observed, cfg: DesiredConfig): Desired {
  // Everything any incarnation of a tap of this name owns.
  const owned = [...o.outputs, ...o.flows].filter((x) => owningTapUid(x, o.name) !== undefined)
  const { tap } = o
  // Every flow that may route to an output of this tap.
  const routing = [...o.flows, ...(o.elsewhere ?? [])]
  if (!tap || isDeleting(tap)) return { plan: deletionPlan(tap, owned, routing, o.loggings) }

  const t = tapContext(tap, o.namespace, o.name)
  let requeueAfterMs: number | undefined
  if (tap.spec.lifetime === 'session') {
    // A session tap whose heartbeat stopped is deleted; the deletion then tears everything down.
    const v = sessionVerdict(tap, o.lease, o.now, cfg)
    if (v.expired) {
      const deleteTap: Action = { type: 'DeleteTap', reason: v.reason, message: v.message }
      return { plan: [[deleteTap]], status: controllerStatus(t, tap.status?.conditions ?? []) }
    }
    requeueAfterMs = v.recheckInMs
  }

  const flow = tappedFlow(t, o.flows, o.loggings)
  const output = tapOutput(
    t,
    flow,
    { outputs: o.outputs, flows: routing, loggings: o.loggings, owned, secret: o.secret },
    cfg,
  )
  const attach = attachment(t, flow, output, o.flows)
  const feeder = t.mirror
    ? o.flows.find((f) => f.kind === t.flowKind && f.metadata.name === t.objectName)
    : flow.flow
  const accepted = acceptance(t, {
    attached: attach.condition,
    previous: tap.status?.conditions ?? [],
    output: output.occupant,
    feeder,
    loggings: o.loggings,
    now: o.now,
    waitMs: cfg.operatorWaitMs,
  })
  if (accepted.recheckInMs !== undefined)
    requeueAfterMs = Math.min(requeueAfterMs ?? Number.POSITIVE_INFINITY, accepted.recheckInMs)
  const selection = tapSelection(tap)
  const others = [
    flow.condition,
    output.condition,
    attach.condition,
    // Before Accepted: an invalid selection is the user's to fix, whatever the operator does.
    ...(selection ? [selection.condition] : []),
    accepted.condition,
  ]
  const ready = readiness(
    others,
    `Records of ${t.flowKind} ${tap.spec.flow.name} stream at ${streamPath(o.namespace, o.name)}`,
  )
  const stale = owned.filter((x) => !isWanted(t, x))
  const finalizer: Action | undefined = hasFinalizer(tap, FINALIZER_TAP)
    ? undefined
    : { type: 'AddTapFinalizer' }
  const plan: Plan = [
    ...oneByOne([...teardownSteps(stale, routing, o.loggings), ...output.teardown]),
    ...together(finalizer, output.secret),
    ...together(output.apply),
    ...together(attach.action),
  ]
  const conditions = [...others, ready].reduce(
    (conds, c: ConditionInput) => setCondition(conds, c, new Date(o.now), tap.metadata.generation),
    tap.status?.conditions ?? [],
  )
  const status = controllerStatus(t, conditions)
  if (selection?.text !== undefined) status.selection = selection.text
  return { plan, status, requeueAfterMs }
}

// The tap is gone or going: everything it owns goes, refs first; then its finalizer, once nothing
// of it is left (the executor re-checks that live).
function deletionPlan(
  tap: LogTap | undefined,
  owned: readonly KObject[],
  flows: readonly KObject[],
  loggings: readonly KObject[] | undefined,
): Plan {
  const steps = teardownSteps(owned, flows, loggings)
  if (tap && hasFinalizer(tap, FINALIZER_TAP) && steps.length === 0 && owned.length === 0) {
    steps.push({ type: 'RemoveTapFinalizer' })
  }
  return oneByOne(steps)
}

// Objects of ours that are the ones this incarnation wants (its Output, and in mirror mode its copy).
function isWanted(t: TapContext, x: KObject): boolean {
  return (
    owningTapUid(x, t.name) === t.uid &&
    x.metadata.name === t.objectName &&
    (x.kind === t.outputKind || (t.mirror && x.kind === t.flowKind))
  )
}

function controllerStatus(t: TapContext, conditions: ControllerStatus['conditions']): ControllerStatus {
  const s: ControllerStatus = {
    observedGeneration: t.tap.metadata.generation,
    conditions,
    outputKind: t.outputKind,
    outputName: t.objectName,
    streamPath: streamPath(t.namespace, t.name),
  }
  if (t.mirror) s.mirrorFlowName = t.objectName
  return s
}
