// "May this identity do that?", answered by the API server's own authorizer (a SubjectAccessReview),
// for RBAC tests. Unlike `kubectl auth can-i` it needs no discovery, so it also answers for
// resources whose CRD is not installed.
import { AuthorizationV1Api } from '@kubernetes/client-node'
import type { TestCluster } from '../../local-cluster/cluster.ts'

export interface Access {
  verb: string
  resource: string // "logtaps.logsocket.dev", "services/proxy", "leases.coordination.k8s.io/status"…
  namespace?: string
  name?: string
}

function parseResource(spec: string): { group: string; resource: string; subresource: string } {
  const [gr = '', subresource = ''] = spec.split('/')
  const dot = gr.indexOf('.')
  return dot < 0
    ? { group: '', resource: gr, subresource }
    : { group: gr.slice(dot + 1), resource: gr.slice(0, dot), subresource }
}

export async function allowed(c: TestCluster, user: string, a: Access): Promise<boolean> {
  const review = await c.kc.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({
    body: {
      spec: {
        user,
        // A ServiceAccount is also in these groups, which RBAC rules may name.
        groups: user.startsWith('system:serviceaccount:')
          ? ['system:serviceaccounts', `system:serviceaccounts:${user.split(':')[2]}`, 'system:authenticated']
          : ['system:authenticated'],
        resourceAttributes: {
          verb: a.verb,
          ...parseResource(a.resource),
          namespace: a.namespace,
          name: a.name,
        },
      },
    },
  })
  return review.status?.allowed === true
}

export const serviceAccount = (namespace: string, name: string) =>
  `system:serviceaccount:${namespace}:${name}`

// A binding just created reaches the authorizer's cache a moment later: a "may" check waits a
// little for it. (A "may not" check needs no wait once the expected grants are visible.)
export async function eventuallyAllowed(
  c: TestCluster,
  user: string,
  a: Access,
  timeoutMs = 10_000,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await allowed(c, user, a)) return true
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 200))
  }
}
