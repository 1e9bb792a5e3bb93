// Every Kubernetes resource kind log-socket reads or writes, with where it lives in the API: one
// row per kind, the only place these names are written. The CLI, the relay and the controller
// (client calls, informers, RBAC checks, tests) all look them up here.
//
// logging-operator's kinds are all served at v1beta1 (its storage version; v1alpha1 lacks some
// output plugins). Flow, ClusterFlow, Output and ClusterOutput are namespaced (a ClusterFlow or
// ClusterOutput only takes effect in its Logging's control namespace); Logging is cluster-scoped.
// The syslog-ng kinds (SyslogNGFlow, SyslogNGClusterFlow, SyslogNGOutput, SyslogNGClusterOutput)
// are served at v1beta1 only, namespaced, and scoped like their fluentd counterparts.

type Scope = 'Namespaced' | 'Cluster'

export interface KindInfo {
  readonly kind: string
  readonly group: string
  readonly version: string
  readonly apiVersion: string // `${group}/${version}`, as objects carry it
  readonly plural: string // the resource name in API paths and RBAC rules
  readonly scope: Scope
}

function row<
  const G extends string,
  const V extends string,
  const K extends string,
  const P extends string,
  const S extends Scope,
>(group: G, version: V, kind: K, plural: P, scope: S) {
  return { kind, group, version, apiVersion: `${group}/${version}` as `${G}/${V}`, plural, scope }
}

const LOGGING_OPERATOR = 'logging.banzaicloud.io'

export const KINDS = {
  LogTap: row('logsocket.dev', 'v1alpha1', 'LogTap', 'logtaps', 'Namespaced'),
  Flow: row(LOGGING_OPERATOR, 'v1beta1', 'Flow', 'flows', 'Namespaced'),
  ClusterFlow: row(LOGGING_OPERATOR, 'v1beta1', 'ClusterFlow', 'clusterflows', 'Namespaced'),
  Output: row(LOGGING_OPERATOR, 'v1beta1', 'Output', 'outputs', 'Namespaced'),
  ClusterOutput: row(LOGGING_OPERATOR, 'v1beta1', 'ClusterOutput', 'clusteroutputs', 'Namespaced'),
  SyslogNGFlow: row(LOGGING_OPERATOR, 'v1beta1', 'SyslogNGFlow', 'syslogngflows', 'Namespaced'),
  SyslogNGClusterFlow: row(
    LOGGING_OPERATOR,
    'v1beta1',
    'SyslogNGClusterFlow',
    'syslogngclusterflows',
    'Namespaced',
  ),
  SyslogNGOutput: row(LOGGING_OPERATOR, 'v1beta1', 'SyslogNGOutput', 'syslogngoutputs', 'Namespaced'),
  SyslogNGClusterOutput: row(
    LOGGING_OPERATOR,
    'v1beta1',
    'SyslogNGClusterOutput',
    'syslogngclusteroutputs',
    'Namespaced',
  ),
  Logging: row(LOGGING_OPERATOR, 'v1beta1', 'Logging', 'loggings', 'Cluster'),
  // The relay's own Service's slices: which replicas are ready (controller/kube/endpoints.ts).
  EndpointSlice: row('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', 'Namespaced'),
} as const satisfies { [K in string]: KindInfo & { kind: K } }

type KindName = keyof typeof KINDS
export type NamespacedKindName = {
  [K in KindName]: (typeof KINDS)[K]['scope'] extends 'Namespaced' ? K : never
}[KindName]

// Where a kind's objects are in the API, as client-node's CustomObjectsApi takes it.
export function resourceOf(kind: KindName): { group: string; version: string; plural: string } {
  const { group, version, plural } = KINDS[kind]
  return { group, version, plural }
}

// logging-operator's two aggregators, each with its own four kinds. A flow routes only to outputs
// of its own aggregator: a (SyslogNG)Flow names (SyslogNG)Outputs of its namespace in
// localOutputRefs, and any flow names (SyslogNG)ClusterOutputs in globalOutputRefs; a
// (SyslogNG)ClusterFlow has no local refs.
export const AGGREGATORS = {
  fluentd: { flow: 'Flow', clusterFlow: 'ClusterFlow', output: 'Output', clusterOutput: 'ClusterOutput' },
  syslogNG: {
    flow: 'SyslogNGFlow',
    clusterFlow: 'SyslogNGClusterFlow',
    output: 'SyslogNGOutput',
    clusterOutput: 'SyslogNGClusterOutput',
  },
} as const satisfies Record<string, Record<'flow' | 'clusterFlow' | 'output' | 'clusterOutput', KindName>>
export type Aggregator = keyof typeof AGGREGATORS
type Family = (typeof AGGREGATORS)[Aggregator]
export type FlowKindName = Family['flow' | 'clusterFlow']
export type OutputKindName = Family['output' | 'clusterOutput']

const FAMILIES = Object.entries(AGGREGATORS) as [Aggregator, Family][]

// The aggregator a flow or output kind belongs to; undefined for any other kind.
export function aggregatorOf(kind: string | undefined): Aggregator | undefined {
  return FAMILIES.find(([, f]) => Object.values(f).includes(kind as never))?.[0]
}

export const FLOW_KINDS: readonly FlowKindName[] = FAMILIES.flatMap(([, f]) => [f.flow, f.clusterFlow])
export const OUTPUT_KINDS: readonly OutputKindName[] = FAMILIES.flatMap(([, f]) => [
  f.output,
  f.clusterOutput,
])

export const isFlowKind = (kind: string | undefined): kind is FlowKindName =>
  FLOW_KINDS.includes(kind as FlowKindName)
export const isOutputKind = (kind: string | undefined): kind is OutputKindName =>
  OUTPUT_KINDS.includes(kind as OutputKindName)
// ClusterFlow, ClusterOutput and their syslog-ng twins: read only in a Logging's control namespace.
export const isClusterKind = (kind: string | undefined): boolean =>
  FAMILIES.some(([, f]) => kind === f.clusterFlow || kind === f.clusterOutput)
