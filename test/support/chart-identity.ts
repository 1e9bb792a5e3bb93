// The controller's identity exactly as the Helm chart installs it (its ServiceAccount, controller
// ClusterRole and ClusterRoleBinding, rendered by helm from charts/log-socket), for integration tests
// that run the controller under the chart's RBAC. Each call makes a fresh namespace and release, so
// the cluster-wide names never collide between test files. Call it from t.before with the root
// `t`: a first helm build extends that file's timeout (see provideHelm).
import type { KubeConfig } from '@kubernetes/client-node'
import { stringify } from 'yaml'
import type { TestCluster } from '../../local-cluster/cluster.ts'
import { provideHelm, renderChart } from './helm.ts'

export interface ChartIdentity {
  namespace: string
  serviceAccount: string
  user: string // system:serviceaccount:<namespace>:<serviceAccount>
  token: string
  kc: KubeConfig
}

const RBAC_KINDS = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'])

export async function chartControllerIdentity(
  c: TestCluster,
  root: Parameters<typeof provideHelm>[0],
): Promise<ChartIdentity> {
  await provideHelm(root)
  const namespace = await c.newNamespace('chart-rbac')
  const objects = (await renderChart({ release: namespace, namespace })).filter(
    (o) => RBAC_KINDS.has(o.kind) && !o.metadata.name.endsWith('-tapper'),
  )
  const input = objects.map((o) => stringify(o)).join('---\n')
  const r = await c.kubectl(['apply', '--server-side', '--field-manager=chart-identity', '-f', '-'], {
    input,
  })
  if (r.code !== 0) throw new Error(`applying the chart's controller RBAC failed: ${r.stderr}`)
  const sa = objects.find((o) => o.kind === 'ServiceAccount')
  if (!sa) throw new Error('the chart rendered no ServiceAccount')
  const token = await c.serviceAccountToken(namespace, sa.metadata.name)
  return {
    namespace,
    serviceAccount: sa.metadata.name,
    user: `system:serviceaccount:${namespace}:${sa.metadata.name}`,
    token,
    kc: c.kubeConfigForToken(token),
  }
}
