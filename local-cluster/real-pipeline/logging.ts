// Working with the real logging-operator from tests and the demo: a Logging of one's own (and the
// operator's write access to exactly what it covers, see operator.ts), the status the operator
// writes on Flows and Outputs, and the aggregator configuration it renders into Secrets.
import { randomBytes } from 'node:crypto'
import { CoreV1Api, CustomObjectsApi, type KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node'
import { type FlowKindName, KINDS, type OutputKindName, resourceOf } from '../../api/kinds.ts'
import { OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, WRITER_CLUSTER_ROLE } from './operator.ts'

const RBAC_GROUP = 'rbac.authorization.k8s.io'

type Aggregator = 'fluentd' | 'syslogNG'

// The flows and outputs of both aggregators, as the kinds table names them.
export type LoggingKind = FlowKindName | OutputKindName

export interface LoggingOptions {
  aggregator: Aggregator
  controlNamespace: string // ClusterFlows/ClusterOutputs live here, and the rendered Secrets
  watchNamespaces: string[] // never empty: an empty list would mean every namespace
  name?: string // default: a fresh `lsock-<hex>`
  // Default: the Logging's name. Flows and Outputs belong to a Logging only when their loggingRef
  // equals its loggingRef; a Logging of its own keeps other Loggings in the cluster (tests create
  // bare ones, with no loggingRef, watching every namespace) from claiming this one's objects.
  // Pass '' for the default, empty loggingRef.
  loggingRef?: string
  spec?: Record<string, unknown> // more Logging spec fields (fluentd/syslogNG settings, say)
}

export interface Logging {
  name: string
  loggingRef: string
  aggregator: Aggregator
  controlNamespace: string
  watchNamespaces: string[]
  // Creates a Flow, Output, … with this Logging's loggingRef.
  create(
    kind: LoggingKind,
    namespace: string,
    name: string,
    spec: Record<string, unknown>,
  ): Promise<LoggingObject>
  delete(): Promise<void> // the Logging and the operator's grants
}

// Creates the grants, then the Logging (so the operator's first reconcile is allowed to write).
// The config check is off: the operator then writes what it rendered straight into the Secret.
export async function createLogging(kc: KubeConfig, o: LoggingOptions): Promise<Logging> {
  if (!o.watchNamespaces.length)
    throw new Error('createLogging: watchNamespaces must name the namespaces to watch')
  const name = o.name ?? `lsock-${randomBytes(4).toString('hex')}`
  const loggingRef = o.loggingRef ?? name
  const custom = kc.makeApiClient(CustomObjectsApi)
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api)
  const labels = { 'app.kubernetes.io/part-of': 'log-socket-tests', 'log-socket.dev/logging': name }
  const subjects = [{ kind: 'ServiceAccount', name: OPERATOR_SERVICE_ACCOUNT, namespace: OPERATOR_NAMESPACE }]
  const grantName = `logging-operator-${name}`
  const namespaces = [...new Set([o.controlNamespace, ...o.watchNamespaces])]
  const ignore404 = (err: unknown) => {
    if ((err as { code?: number }).code !== 404) throw err
  }
  const removeGrants = async () => {
    await rbac.deleteClusterRoleBinding({ name: grantName }).catch(ignore404)
    await rbac.deleteClusterRole({ name: grantName }).catch(ignore404)
    for (const namespace of namespaces)
      await rbac.deleteNamespacedRoleBinding({ namespace, name: grantName }).catch(ignore404)
  }
  try {
    await rbac.createClusterRole({
      body: {
        metadata: { name: grantName, labels },
        rules: [
          {
            apiGroups: [KINDS.Logging.group],
            resources: ['', '/status', '/finalizers'].map((sub) => `${KINDS.Logging.plural}${sub}`),
            resourceNames: [name],
            verbs: ['update', 'patch'],
          },
        ],
      },
    })
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: grantName, labels },
        roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: grantName },
        subjects,
      },
    })
    for (const namespace of namespaces) {
      await rbac.createNamespacedRoleBinding({
        namespace,
        body: {
          metadata: { name: grantName, labels },
          roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: WRITER_CLUSTER_ROLE },
          subjects,
        },
      })
    }
    await custom.createClusterCustomObject({
      ...resourceOf('Logging'),
      body: {
        apiVersion: KINDS.Logging.apiVersion,
        kind: 'Logging',
        metadata: { name, labels },
        spec: {
          ...o.spec,
          controlNamespace: o.controlNamespace,
          watchNamespaces: o.watchNamespaces,
          flowConfigCheckDisabled: true,
          ...(loggingRef ? { loggingRef } : {}),
          [o.aggregator]: (o.spec?.[o.aggregator] as object | undefined) ?? {},
        },
      },
    })
  } catch (err) {
    await removeGrants().catch(() => {})
    throw err
  }
  let deleted: Promise<void> | undefined
  return {
    name,
    loggingRef,
    aggregator: o.aggregator,
    controlNamespace: o.controlNamespace,
    watchNamespaces: o.watchNamespaces,
    create: (kind, namespace, objName, spec) =>
      createLoggingObject(kc, kind, namespace, objName, { ...spec, ...(loggingRef ? { loggingRef } : {}) }),
    delete() {
      deleted ??= (async () => {
        await custom.deleteClusterCustomObject({ ...resourceOf('Logging'), name }).catch(ignore404)
        await removeGrants()
      })()
      return deleted
    },
  }
}

export interface ResourceStatus {
  active?: boolean
  problems?: string[]
  problemsCount?: number
}

export interface LoggingObject {
  metadata: { name: string; namespace?: string; resourceVersion?: string; generation?: number }
  spec?: Record<string, unknown>
  status?: ResourceStatus & Record<string, unknown>
}

export async function getLoggingObject(
  kc: KubeConfig,
  kind: LoggingKind,
  namespace: string,
  name: string,
): Promise<LoggingObject | undefined> {
  try {
    return (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      ...resourceOf(kind),
      namespace,
      name,
    })) as LoggingObject
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined
    throw err
  }
}

export async function createLoggingObject(
  kc: KubeConfig,
  kind: LoggingKind,
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<LoggingObject> {
  return (await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    ...resourceOf(kind),
    namespace,
    body: { apiVersion: KINDS[kind].apiVersion, kind, metadata: { name }, spec },
  })) as LoggingObject
}

// Polls until `pred` holds for the object's status, and returns that status.
export async function waitForStatus(
  kc: KubeConfig,
  kind: LoggingKind,
  namespace: string,
  name: string,
  pred: (s: ResourceStatus) => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<ResourceStatus> {
  const deadline = Date.now() + timeoutMs
  let last: ResourceStatus | undefined
  while (Date.now() < deadline) {
    last = (await getLoggingObject(kc, kind, namespace, name))?.status
    if (last && pred(last)) return last
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(
    `${kind} ${namespace}/${name}: no status with ${what} after ${timeoutMs / 1000} s (last: ${JSON.stringify(last ?? null)})`,
  )
}

// Accepted: the operator says active and reports no problem.
export const accepted = (s: ResourceStatus) =>
  s.active === true && !(s.problemsCount ?? 0) && !s.problems?.length
export const hasProblems = (s: ResourceStatus) => (s.problemsCount ?? s.problems?.length ?? 0) > 0

// What the operator rendered, as in its Secret (undefined while there is none).
export async function renderedConfig(kc: KubeConfig, logging: Logging): Promise<string | undefined> {
  const [secret, key] =
    logging.aggregator === 'fluentd'
      ? [`${logging.name}-fluentd-app`, 'fluentd.conf']
      : [`${logging.name}-syslog-ng`, 'syslog-ng.conf']
  const data = await secretData(kc, logging.controlNamespace, secret)
  const value = data?.[key]
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8')
}

// Polls the rendered configuration until `pred` holds for it.
export async function waitForRendered(
  kc: KubeConfig,
  logging: Logging,
  pred: (conf: string) => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs
  let last: string | undefined
  while (Date.now() < deadline) {
    last = await renderedConfig(kc, logging)
    if (last !== undefined && pred(last)) return last
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(
    `Logging ${logging.name}: the rendered configuration never showed ${what} in ${timeoutMs / 1000} s${
      last === undefined ? ' (no Secret yet)' : `; last:\n${last}`
    }`,
  )
}

// Files the operator mounts for outputs whose secrets use mountFrom (file name → content).
export async function mountedOutputSecrets(
  kc: KubeConfig,
  logging: Logging,
): Promise<Record<string, Buffer>> {
  const secret =
    logging.aggregator === 'fluentd' ? `${logging.name}-fluentd-output` : `${logging.name}-syslog-ng-output`
  const data = (await secretData(kc, logging.controlNamespace, secret)) ?? {}
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64')]))
}

async function secretData(kc: KubeConfig, namespace: string, name: string) {
  try {
    return (await kc.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace, name })).data
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined
    throw err
  }
}
