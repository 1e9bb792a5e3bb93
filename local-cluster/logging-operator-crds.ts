// Minimal structural CRDs for the logging-operator kinds log-socket uses, written for this project.
// The local cluster installs them only when logging-operator's own CRDs are not available (a clone
// of the repository without ../shared/logging-operator-crds): names, scope, category, the status
// subresource and the printer columns are logging-operator's; the specs stay open
// (x-kubernetes-preserve-unknown-fields), so nothing here pretends to validate what only the real
// operator can.
import { type FlowKindName, KINDS, type OutputKindName } from '../api/kinds.ts'

type LoggingOperatorKind = FlowKindName | OutputKindName | 'Logging'
type Schema = Record<string, unknown>

const str = { type: 'string' }
const strings = { type: 'array', items: str }
const open = (properties: Record<string, Schema>, extra: Schema = {}): Schema => ({
  type: 'object',
  'x-kubernetes-preserve-unknown-fields': true,
  properties,
  ...extra,
})
// What the operator writes on every Flow and Output it validates.
const resourceStatus: Schema = {
  type: 'object',
  properties: { active: { type: 'boolean' }, problems: strings, problemsCount: { type: 'integer' } },
}
const column = (name: string, type: string, jsonPath: string, description: string) => ({
  name,
  type,
  jsonPath,
  description,
})
const flowColumns = [
  column('Active', 'boolean', '.status.active', 'Is the flow active?'),
  column('Problems', 'integer', '.status.problemsCount', 'Number of problems'),
]
const outputColumns = [
  column('Active', 'boolean', '.status.active', 'Is the output active?'),
  column('Problems', 'integer', '.status.problemsCount', 'Number of problems'),
]

function crd(
  kind: LoggingOperatorKind,
  spec: Schema,
  status: Schema,
  columns: object[],
  required: string[] = [],
): object {
  const { plural, group, scope } = KINDS[kind]
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${plural}.${group}`,
      labels: { 'app.kubernetes.io/part-of': 'log-socket-local-cluster' },
    },
    spec: {
      group,
      names: {
        kind,
        listKind: `${kind}List`,
        plural,
        singular: kind.toLowerCase(),
        categories: ['logging-all'],
      },
      scope,
      versions: [
        {
          name: KINDS[kind].version,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: columns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              ...(required.length ? { required } : {}),
              properties: { apiVersion: str, kind: str, metadata: { type: 'object' }, spec, status },
            },
          },
        },
      ],
    },
  }
}

const flowSpec = open({ loggingRef: str, globalOutputRefs: strings, localOutputRefs: strings })
const clusterFlowSpec = open({ loggingRef: str, globalOutputRefs: strings })
const outputSpec = open({ loggingRef: str })
const clusterOutputSpec = open({ loggingRef: str, protected: { type: 'boolean' } })

export function loggingOperatorCrds(): object[] {
  return [
    crd('Flow', flowSpec, resourceStatus, flowColumns),
    crd('ClusterFlow', clusterFlowSpec, resourceStatus, flowColumns),
    crd('Output', outputSpec, resourceStatus, outputColumns),
    crd('ClusterOutput', clusterOutputSpec, resourceStatus, outputColumns, ['spec']),
    crd('SyslogNGFlow', flowSpec, resourceStatus, flowColumns),
    crd('SyslogNGClusterFlow', clusterFlowSpec, resourceStatus, flowColumns),
    crd('SyslogNGOutput', outputSpec, resourceStatus, outputColumns),
    crd('SyslogNGClusterOutput', clusterOutputSpec, resourceStatus, outputColumns, ['spec']),
    crd(
      'Logging',
      open(
        {
          controlNamespace: str,
          loggingRef: str,
          watchNamespaces: strings,
          flowConfigCheckDisabled: { type: 'boolean' },
        },
        { required: ['controlNamespace'] },
      ),
      open({ problems: strings, problemsCount: { type: 'integer' }, watchNamespaces: strings }),
      [
        column('LoggingRef', 'string', '.spec.loggingRef', 'Logging reference'),
        column('ControlNamespace', 'string', '.spec.controlNamespace', 'Control namespace'),
        column('WatchNamespaces', 'string', '.status.watchNamespaces', 'Watched namespaces'),
        column('Problems', 'integer', '.status.problemsCount', 'Number of problems'),
      ],
    ),
  ]
}
