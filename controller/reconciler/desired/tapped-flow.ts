// The FlowFound condition: does the flow the tap names exist, and can a tap in this namespace feed
// from it?
import { isClusterKind } from '../../../api/kinds.ts'
import { Conditions } from '../../../api/logtap.ts'
import type { KObject } from '../../kube/objects.ts'
import type { ConditionInput } from './conditions.ts'
import type { TapContext } from './tap-context.ts'

export interface TappedFlow {
  flow?: KObject
  condition: ConditionInput // FlowFound
  tappable: boolean // the flow exists and the tap can be attached to it
}

export function tappedFlow(
  t: TapContext,
  flows: readonly KObject[],
  loggings: readonly KObject[] | undefined,
): TappedFlow {
  const { flowKind, namespace } = t
  const flowName = t.tap.spec.flow.name
  const flow = flows.find((f) => f.kind === flowKind && f.metadata.name === flowName)
  if (!flow) {
    const other = flows.find((f) => f.kind !== flowKind && f.metadata.name === flowName)
    const hint = other ? `; a ${other.kind} of that name exists: set spec.flow.kind: ${other.kind}` : ''
    return {
      condition: {
        type: Conditions.FlowFound,
        status: 'False',
        reason: 'FlowNotFound',
        message: `${flowKind} ${namespace}/${flowName} does not exist${hint}; the tap waits for it`,
      },
      tappable: false,
    }
  }
  const wrongNamespace = isClusterKind(flowKind)
    ? outsideControlNamespaces(flowKind, namespace, loggings)
    : undefined
  if (wrongNamespace) return { flow, condition: wrongNamespace, tappable: false }
  return {
    flow,
    condition: {
      type: Conditions.FlowFound,
      status: 'True',
      reason: 'Found',
      message: `${flowKind} ${flowName} found`,
    },
    tappable: true,
  }
}

// logging-operator reads ClusterFlows and ClusterOutputs (and their syslog-ng twins) only in a
// Logging's control namespace (or anywhere when the Logging allows cluster resources from all
// namespaces). Unknown Loggings (none, or not listable) are not held against the tap.
function outsideControlNamespaces(
  flowKind: string,
  namespace: string,
  loggings: readonly KObject[] | undefined,
): ConditionInput | undefined {
  if (!loggings || loggings.length === 0) return undefined
  const ok = loggings.some(
    (l) =>
      l.spec?.['controlNamespace'] === namespace ||
      l.spec?.['allowClusterResourcesFromAllNamespaces'] === true,
  )
  if (ok) return undefined
  const nss = [...new Set(loggings.map((l) => String(l.spec?.['controlNamespace'])))].join(', ')
  return {
    type: Conditions.FlowFound,
    status: 'False',
    reason: 'WrongNamespace',
    message: `${flowKind} taps must live in the logging control namespace (${nss}), next to the ${flowKind}; ${namespace} is not one, so logging-operator ignores cluster flows and cluster outputs here`,
  }
}
