// Status conditions, the Kubernetes API-conventions way (apimachinery meta.SetStatusCondition):
// lastTransitionTime moves only when the status flips; reason, message and observedGeneration
// always follow the latest evaluation.
import { type Condition, type ConditionStatus, Conditions } from '../../../api/logtap.ts'

export interface ConditionInput {
  type: string
  status: ConditionStatus
  reason: string
  message: string
}

export function setCondition(
  conditions: readonly Condition[],
  c: ConditionInput,
  now: Date,
  observedGeneration: number | undefined,
): Condition[] {
  const existing = conditions.find((x) => x.type === c.type)
  const next: Condition = {
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message,
    lastTransitionTime:
      existing && existing.status === c.status ? existing.lastTransitionTime : now.toISOString(),
  }
  if (observedGeneration !== undefined) next.observedGeneration = observedGeneration
  if (!existing) return [...conditions, next]
  return conditions.map((x) => (x.type === c.type ? next : x))
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type)
}

// Ready: the first of the other conditions that is not True explains why not; else `readyMessage`.
export function readiness(others: readonly ConditionInput[], readyMessage: string): ConditionInput {
  const notReady = others.find((c) => c.status !== 'True')
  return notReady
    ? { type: Conditions.Ready, status: 'False', reason: notReady.reason, message: notReady.message }
    : { type: Conditions.Ready, status: 'True', reason: 'Ready', message: readyMessage }
}
