// Which Logging renders which flows and outputs, as logging-operator decides it: a flow or output
// belongs to the Loggings whose spec.loggingRef equals its own (both usually empty); a Logging
// reads Flows and Outputs in the namespaces it watches (all when it names none), and ClusterFlows
// and ClusterOutputs in its control namespace (in every namespace when it allows cluster
// resources from all namespaces). Where the answer depends on what the controller cannot see
// (namespace labels for a watchNamespaceSelector) these functions answer "maybe" as true.
import { isClusterKind } from '../../../api/kinds.ts'
import type { KObject } from '../../kube/objects.ts'

const str = (v: unknown) => (typeof v === 'string' ? v : '')

export function loggingRefOf(o: KObject): string {
  return str(o.spec?.['loggingRef'])
}

export function sameLogging(logging: KObject, o: KObject): boolean {
  return loggingRefOf(logging) === loggingRefOf(o)
}

export function controlNamespaceOf(logging: KObject): string {
  return str(logging.spec?.['controlNamespace'])
}

export function allowsClusterResourcesAnywhere(logging: KObject): boolean {
  return logging.spec?.['allowClusterResourcesFromAllNamespaces'] === true
}

// May `logging` read Flows and Outputs of `namespace`?
export function watchesNamespace(logging: KObject, namespace: string): boolean {
  const listed = logging.spec?.['watchNamespaces']
  const selector = logging.spec?.['watchNamespaceSelector']
  if (Array.isArray(listed) && listed.length > 0) return listed.includes(namespace) || selector !== undefined
  return true
}

// The Loggings that render flow (or output) `o`.
export function loggingsOf(o: KObject, loggings: readonly KObject[]): KObject[] {
  const ns = o.metadata.namespace ?? ''
  const clusterScoped = isClusterKind(o.kind)
  return loggings.filter(
    (l) =>
      sameLogging(l, o) &&
      (clusterScoped
        ? controlNamespaceOf(l) === ns || allowsClusterResourcesAnywhere(l)
        : watchesNamespace(l, ns)),
  )
}
