// The test control plane behaves like a real cluster in the ways log-socket depends on.
import http from 'node:http'
import {
  AuthenticationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  VersionApi,
} from '@kubernetes/client-node'
import t from 'tap'
import { getCluster } from '../local-cluster/cluster.ts'
import { pinnedVersion } from '../local-cluster/control-plane.ts'

const c = await getCluster()
const core = c.kc.makeApiClient(CoreV1Api)

t.test('the API server reports the pinned version', async (t) => {
  const v = await c.kc.makeApiClient(VersionApi).getCode()
  t.equal(v.gitVersion, pinnedVersion())
  t.equal(c.version, pinnedVersion())
})

t.test('logging-operator CRDs are served: a Flow can be created and read back', async (t) => {
  const ns = await c.newNamespace('flow')
  const custom = c.kc.makeApiClient(CustomObjectsApi)
  const flow = {
    apiVersion: 'logging.banzaicloud.io/v1beta1',
    kind: 'Flow',
    metadata: { name: 'flow1' },
    spec: { match: [{ select: { labels: { app: 'web' } } }], localOutputRefs: ['es'] },
  }
  await custom.createNamespacedCustomObject({
    group: 'logging.banzaicloud.io',
    version: 'v1beta1',
    namespace: ns,
    plural: 'flows',
    body: flow,
  })
  const got = (await custom.getNamespacedCustomObject({
    group: 'logging.banzaicloud.io',
    version: 'v1beta1',
    namespace: ns,
    plural: 'flows',
    name: 'flow1',
  })) as typeof flow
  t.same(got.spec, flow.spec)
})

t.test('TokenRequest tokens pass TokenReview with the SA identity; garbage does not', async (t) => {
  const ns = await c.newNamespace('token')
  const token = await c.serviceAccountToken(ns, 'alice')
  const authn = c.kc.makeApiClient(AuthenticationV1Api)
  const ok = await authn.createTokenReview({ body: { spec: { token } } })
  t.equal(ok.status?.authenticated, true)
  t.equal(ok.status?.user?.username, `system:serviceaccount:${ns}:alice`)
  t.ok(ok.status?.user?.groups?.includes('system:serviceaccounts'))
  t.ok(ok.status?.user?.groups?.includes(`system:serviceaccounts:${ns}`))
  const bad = await authn.createTokenReview({ body: { spec: { token: 'not-a-token' } } })
  t.not(bad.status?.authenticated, true)
})

t.test('a ServiceAccount is forbidden until a RoleBinding allows it', async (t) => {
  const ns = await c.newNamespace('rbac')
  const token = await c.serviceAccountToken(ns, 'bob')
  const asBob = c.kubeConfigForToken(token).makeApiClient(CoreV1Api)
  await t.rejects(asBob.listNamespacedConfigMap({ namespace: ns }), { code: 403 })
  const rbac = c.kc.makeApiClient(RbacAuthorizationV1Api)
  await rbac.createNamespacedRole({
    namespace: ns,
    body: {
      metadata: { name: 'cm-reader' },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }],
    },
  })
  await rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: 'bob-reads' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'cm-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'bob', namespace: ns }],
    },
  })
  const list = await asBob.listNamespacedConfigMap({ namespace: ns })
  t.ok(Array.isArray(list.items))
})

t.test('the garbage collector deletes a dependent whose owner was deleted', async (t) => {
  const ns = await c.newNamespace('gc')
  const owner = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'owner' } } })
  await core.createNamespacedConfigMap({
    namespace: ns,
    body: {
      metadata: {
        name: 'dependent',
        ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid! }],
      },
    },
  })
  await core.deleteNamespacedConfigMap({ namespace: ns, name: 'owner' })
  const started = Date.now()
  let gone = false
  while (Date.now() - started < 60_000) {
    try {
      await core.readNamespacedConfigMap({ namespace: ns, name: 'dependent' })
      await new Promise((r) => setTimeout(r, 500))
    } catch (err) {
      if ((err as { code?: number }).code === 404) {
        gone = true
        break
      }
      throw err
    }
  }
  t.ok(gone, `dependent deleted within 60 s (took ${Date.now() - started} ms)`)
})

t.test("the API server's service proxy reaches a server on the test host", async (t) => {
  const ns = await c.newNamespace('proxy')
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'text/plain')
    res.end(`hello from the test host: ${req.method} ${req.url}`)
  })
  await new Promise<void>((r) => server.listen(0, c.testHost.ip, r))
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  const port = (server.address() as { port: number }).port
  await c.testHost.exposeService({ namespace: ns, name: 'echo', port: 8080, targetPort: port })
  const res = await core.connectGetNamespacedServiceProxyWithPath({
    namespace: ns,
    name: 'echo:8080',
    path: 'some/path',
  })
  t.equal(res, 'hello from the test host: GET /some/path')
})
