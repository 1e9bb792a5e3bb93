// The Accepted condition: has logging-operator taken the tap's output into a Logging's
// configuration? It says so on the Output (status.active, and no status.problems) once a valid flow
// routes to it, and on the flow that feeds it (problems naming the output). Until then fluentd
// never gets the tap. Its problems are shown as it wrote them.
//
// Nothing is written when no logging-operator runs, or when no Logging would render the flow: the
// Loggings tell the second case at once (no Logging; none with the flow's loggingRef; none
// watching the namespace). Otherwise the condition is Unknown while it waits, and silence past
// `waitMs` is reported as an operator that does not respond. The wait is counted from the moment
// it began (the Unknown condition's lastTransitionTime): a Logging created an hour after the
// attachment gets the whole wait, and a controller restart does not restart it.
import { aggregatorOf } from '../../../api/kinds.ts'
import { type Condition, type ConditionStatus, Conditions } from '../../../api/logtap.ts'
import type { KObject } from '../../kube/objects.ts'
import type { ConditionInput } from './conditions.ts'
import { loggingRefOf, loggingsOf, sameLogging } from './loggings.ts'
import type { TapContext } from './tap-context.ts'

export interface AcceptanceInput {
  attached: ConditionInput // this evaluation's Attached
  previous: readonly Condition[] // the tap's conditions before it
  output?: KObject // the tap's Output as cached (with the status logging-operator wrote)
  feeder?: KObject // the flow that routes to it: the tapped flow (inject) or the copy (mirror)
  loggings: readonly KObject[] | undefined
  now: number
  waitMs: number
}

interface AcceptanceDecision {
  condition: ConditionInput
  recheckInMs?: number // when the wait for the operator runs out
}

const problemsOf = (o: KObject | undefined): string[] => {
  const p = o?.status?.['problems']
  return Array.isArray(p) ? p.filter((x): x is string => typeof x === 'string') : []
}

// A flow's problems that concern output `name` (logging-operator names the ref at the end:
// "dangling local output reference: X", "global output reference: X has problems", …).
function problemsNaming(flow: KObject | undefined, name: string): string[] {
  const named = new RegExp(`: ${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}( |$)`)
  return problemsOf(flow).filter((p) => named.test(p))
}

const NOT_RESPONDING = 'LoggingOperatorNotResponding'

export function acceptance(t: TapContext, a: AcceptanceInput): AcceptanceDecision {
  const cond = (status: ConditionStatus, reason: string, message: string): AcceptanceDecision => ({
    condition: { type: Conditions.Accepted, status, reason, message },
  })
  if (a.attached.status !== 'True') return cond('False', 'NotAttached', 'The tap is not attached yet')
  const { outputKind: kind, objectName: name } = t
  const aggregator = aggregatorOf(kind) === 'syslogNG' ? 'syslog-ng' : 'fluentd'
  const feeder = a.feeder
  const flowName = `${feeder?.kind ?? t.flowKind} ${feeder?.metadata.name ?? t.tap.spec.flow.name}`

  if (a.loggings && feeder) {
    if (a.loggings.length === 0)
      return cond(
        'False',
        'NoLogging',
        `There is no Logging: logging-operator renders no configuration, so no ${aggregator} ever gets the tap (is logging-operator installed, with a Logging?)`,
      )
    if (loggingsOf(feeder, a.loggings).length === 0) {
      const ref = loggingRefOf(feeder)
      const refText = ref ? `loggingRef "${ref}"` : 'the empty loggingRef'
      if (!a.loggings.some((l) => sameLogging(l, feeder)))
        return cond(
          'False',
          'NoMatchingLogging',
          `No Logging has ${refText}, the ${flowName}'s: logging-operator renders that flow into no configuration`,
        )
      return cond(
        'False',
        'NamespaceNotWatched',
        `No Logging with ${refText} watches namespace ${t.namespace}: logging-operator renders ${flowName} into no configuration`,
      )
    }
  }

  const outputProblems = problemsOf(a.output)
  if (outputProblems.length)
    return cond(
      'False',
      'OperatorProblems',
      `logging-operator reports on ${kind} ${name}: ${outputProblems.join('; ')}`,
    )
  // The copy is the tap's own flow: all its problems concern the tap.
  const flowProblems = t.mirror ? problemsOf(feeder) : problemsNaming(feeder, name)
  if (flowProblems.length)
    return cond(
      'False',
      'OperatorProblems',
      `logging-operator reports on ${flowName}: ${flowProblems.join('; ')}`,
    )
  if (a.output?.status?.['active'] === true)
    return cond(
      'True',
      'Accepted',
      `logging-operator accepted ${kind} ${name}; ${aggregator} receives it with its next configuration reload`,
    )

  // Waiting, since the wait began; once told that the operator does not respond, that stands until
  // something changes (acceptance, a problem, the Loggings, the attachment).
  const before = a.previous.find((c) => c.type === Conditions.Accepted)
  const waitingSince = before?.status === 'Unknown' ? Date.parse(before.lastTransitionTime) : Number.NaN
  const toldSilent = before?.reason === NOT_RESPONDING
  const deadline = (Number.isFinite(waitingSince) ? waitingSince : a.now) + a.waitMs
  if (!toldSilent && a.now < deadline)
    return {
      ...cond(
        'Unknown',
        'WaitingForLoggingOperator',
        `Waiting for logging-operator to accept ${kind} ${name} (status.active on it)`,
      ),
      recheckInMs: deadline - a.now,
    }
  const renderers = a.loggings && feeder ? loggingsOf(feeder, a.loggings).map((l) => l.metadata.name) : []
  const which = renderers.length ? ` for Logging ${renderers.join(', ')}` : ''
  return cond(
    'False',
    NOT_RESPONDING,
    `logging-operator has not accepted ${kind} ${name} in ${Math.round(a.waitMs / 1000)}s (no status.active on it): is logging-operator running${which}?`,
  )
}
