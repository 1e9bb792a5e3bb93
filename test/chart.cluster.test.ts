// The chart against the real test API server: helm installs it (server-side validation of every
// object), an upgrade keeps the generated ingest key, the RBAC it grants is what the controller and
// the users need and no more (asked of the API server's own authorizer, and one real proxied
// request), and uninstall leaves nothing cluster-wide behind.
import { AuthenticationV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node'
import t from 'tap'
import { getCluster, type TestCluster } from '../local-cluster/cluster.ts'
import { type Access, allowed, eventuallyAllowed, serviceAccount } from './support/access.ts'
import { chartControllerIdentity } from './support/chart-identity.ts'
import { chartDir, helm, provideHelm } from './support/helm.ts'

let c: TestCluster
t.before(async () => {
  await Promise.all([provideHelm(t), getCluster().then((got) => (c = got))])
})

const kubectl = (args: string[]) => c.kubectl(args)
const can = (user: string, a: Access) => allowed(c, user, a)
const canSoon = (user: string, a: Access) => eventuallyAllowed(c, user, a)
const show = (a: Access) =>
  `${a.verb} ${a.resource}${a.name ? ` ${a.name}` : ''} in ${a.namespace ?? 'all namespaces'}`

async function helmIn(ns: string, args: string[]) {
  const r = await helm([...args, '--namespace', ns, '--kubeconfig', c.kubeconfigPath])
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')} failed (${r.code}): ${r.stderr}`)
  return r
}

async function jsonpath(ns: string, what: string[], path: string): Promise<string> {
  const r = await kubectl(['-n', ns, 'get', ...what, '-o', `jsonpath=${path}`])
  if (r.code !== 0) throw new Error(r.stderr)
  return r.stdout
}

t.test('install, upgrade and uninstall with default values', async (t) => {
  const ns = await c.newNamespace('chart')
  const release = ns // contains no "log-socket", so the objects are named <ns>-log-socket
  const full = `${release}-log-socket`
  const sa = serviceAccount(ns, full)

  const installed = await helmIn(ns, ['install', release, chartDir])
  t.match(installed.stdout, 'STATUS: deployed')
  for (const [kind, name] of [
    ['statefulset', full],
    ['service', full],
    ['service', `${full}-replicas`],
    ['poddisruptionbudget', full],
    ['role', `${full}-relay`],
    ['rolebinding', `${full}-relay`],
    ['serviceaccount', full],
    ['secret', `${full}-ingest-key`],
  ] as const) {
    t.equal((await kubectl(['-n', ns, 'get', kind, name, '-o', 'name'])).code, 0, `${kind} ${name} exists`)
  }
  const key = await jsonpath(ns, ['secret', `${full}-ingest-key`], '{.data.key}')
  t.equal(Buffer.from(key, 'base64').length, 64)

  await helmIn(ns, ['upgrade', release, chartDir, '--set', 'logLevel=debug'])
  t.equal(
    await jsonpath(ns, ['secret', `${full}-ingest-key`], '{.data.key}'),
    key,
    'an upgrade keeps the ingest key',
  )
  const args = await jsonpath(ns, ['statefulset', full], '{.spec.template.spec.containers[0].args}')
  t.match(args, '--log-level=debug', 'the upgrade reached the StatefulSet')
  t.match(args, `--service=${full}`, 'the replicas watch the Service')

  t.test("the controller's ServiceAccount may do its job", async (t) => {
    const other = await c.newNamespace('chart-other')
    const may: Access[] = [
      { verb: 'list', resource: 'logtaps.logsocket.dev' },
      { verb: 'watch', resource: 'logtaps.logsocket.dev' },
      { verb: 'patch', resource: 'logtaps.logsocket.dev', namespace: other },
      { verb: 'delete', resource: 'logtaps.logsocket.dev', namespace: other },
      { verb: 'patch', resource: 'logtaps.logsocket.dev/status', namespace: other },
      { verb: 'update', resource: 'logtaps.logsocket.dev/finalizers', namespace: other },
      { verb: 'create', resource: 'outputs.logging.banzaicloud.io', namespace: other },
      { verb: 'watch', resource: 'outputs.logging.banzaicloud.io' },
      { verb: 'delete', resource: 'clusteroutputs.logging.banzaicloud.io', namespace: other },
      { verb: 'patch', resource: 'flows.logging.banzaicloud.io', namespace: other },
      { verb: 'create', resource: 'flows.logging.banzaicloud.io', namespace: other },
      { verb: 'patch', resource: 'clusterflows.logging.banzaicloud.io', namespace: other },
      { verb: 'list', resource: 'loggings.logging.banzaicloud.io' },
      // each tap's credential Secret, by name
      { verb: 'create', resource: 'secrets', namespace: other },
      { verb: 'get', resource: 'secrets', namespace: other },
      { verb: 'patch', resource: 'secrets', namespace: other },
      { verb: 'update', resource: 'leases.coordination.k8s.io', namespace: ns },
      { verb: 'get', resource: 'leases.coordination.k8s.io', namespace: other },
      { verb: 'create', resource: 'events', namespace: other },
      { verb: 'create', resource: 'events.events.k8s.io', namespace: other },
      { verb: 'create', resource: 'tokenreviews.authentication.k8s.io' },
      { verb: 'create', resource: 'subjectaccessreviews.authorization.k8s.io' },
      // the replicas learn the ready replicas from their Service's EndpointSlices
      { verb: 'list', resource: 'endpointslices.discovery.k8s.io', namespace: ns },
      { verb: 'watch', resource: 'endpointslices.discovery.k8s.io', namespace: ns },
    ]
    for (const a of may) t.ok(await canSoon(sa, a), `may ${show(a)}`)
  })

  t.test("the controller's ServiceAccount may do nothing else", async (t) => {
    const other = await c.newNamespace('chart-other')
    const mayNot: Access[] = [
      // Secrets by name only: none can be enumerated
      { verb: 'list', resource: 'secrets' },
      { verb: 'list', resource: 'secrets', namespace: ns },
      { verb: 'watch', resource: 'secrets' },
      { verb: 'update', resource: 'secrets', namespace: ns },
      { verb: 'create', resource: 'pods', namespace: ns },
      { verb: 'update', resource: 'flows.logging.banzaicloud.io', namespace: ns },
      { verb: 'create', resource: 'logtaps.logsocket.dev', namespace: ns },
      { verb: 'update', resource: 'logtaps.logsocket.dev', namespace: ns },
      { verb: 'patch', resource: 'loggings.logging.banzaicloud.io' },
      // session Leases are owned by their LogTap: the garbage collector deletes them, not us
      { verb: 'delete', resource: 'leases.coordination.k8s.io', namespace: ns },
      { verb: 'delete', resource: 'namespaces' },
      { verb: 'create', resource: 'clusterrolebindings.rbac.authorization.k8s.io' },
      { verb: 'get', resource: 'services/proxy', namespace: ns, name: `http:${full}:10001` },
      { verb: 'get', resource: 'pods/proxy', namespace: ns, name: `${full}-0:10001` },
      { verb: 'list', resource: 'endpointslices.discovery.k8s.io', namespace: other },
      { verb: 'list', resource: 'endpointslices.discovery.k8s.io' },
      { verb: 'impersonate', resource: 'users' },
    ]
    for (const a of mayNot) t.notOk(await can(sa, a), `may not ${show(a)}`)
  })

  t.test('a user bound to the tapper role reaches the stream port through the proxy, only it', async (t) => {
    const team = await c.newNamespace('chart-team')
    const token = await c.serviceAccountToken(team, 'alice')
    const alice = serviceAccount(team, 'alice')
    for (const where of [team, ns]) {
      const bind = ['create', 'rolebinding', 'alice-tapper', `--clusterrole=${full}-tapper`]
      const r = await kubectl(['-n', where, ...bind, `--serviceaccount=${team}:alice`])
      t.equal(r.code, 0, r.stderr)
    }
    const may: Access[] = [
      { verb: 'create', resource: 'logtaps.logsocket.dev', namespace: team },
      { verb: 'get', resource: 'logtaps.logsocket.dev', namespace: team },
      { verb: 'delete', resource: 'logtaps.logsocket.dev', namespace: team },
      { verb: 'create', resource: 'leases.coordination.k8s.io', namespace: team },
      { verb: 'update', resource: 'leases.coordination.k8s.io', namespace: team },
    ]
    for (const a of may) t.ok(await canSoon(alice, a), `may ${show(a)}`)
    const mayNot: Access[] = [
      { verb: 'patch', resource: 'logtaps.logsocket.dev', namespace: team },
      { verb: 'patch', resource: 'logtaps.logsocket.dev/status', namespace: team },
      { verb: 'create', resource: 'logtaps.logsocket.dev', namespace: 'default' },
      { verb: 'create', resource: 'outputs.logging.banzaicloud.io', namespace: team },
    ]
    for (const a of mayNot) t.notOk(await can(alice, a), `may not ${show(a)}`)

    // Real proxied requests with alice's token: Forbidden is RBAC saying no; anything else means
    // RBAC let the request through to the Service.
    const proxied = async (name: string) => {
      const path = `/api/v1/namespaces/${ns}/services/${name}/proxy/healthz`
      const r = await kubectl(['--token', token, 'get', '--raw', path])
      return `${r.stdout}${r.stderr}`
    }
    for (const name of [
      `http:${full}:10001`,
      `${full}:10001`,
      `${full}:http-stream`,
      `http:${full}:http-stream`,
    ]) {
      const out = await proxied(name)
      t.notMatch(out, /forbidden/i, `${name}: allowed`)
      // Past authorization the proxy looks for the Service's endpoints, which nothing creates here.
      t.match(
        out,
        /NotFound|ServiceUnavailable|no endpoints available/,
        `${name}: reached the Service lookup`,
      )
    }
    for (const name of [`${full}:10000`, `http:${full}:http-ingest`, `${full}:8080`, full]) {
      t.match(await proxied(name), /forbidden/i, `${name}: forbidden`)
    }

    // Each replica's stream port through the pod proxy, as k8stail reads it: the StatefulSet's
    // pods 0 and 1 (the default 2 replicas), nothing else.
    const podProxied = async (name: string) => {
      const path = `/api/v1/namespaces/${ns}/pods/${name}/proxy/healthz`
      const r = await kubectl(['--token', token, 'get', '--raw', path])
      return `${r.stdout}${r.stderr}`
    }
    for (const name of [`${full}-0:10001`, `${full}-1:10001`]) {
      const out = await podProxied(name)
      t.notMatch(out, /forbidden/i, `pod ${name}: allowed`)
    }
    for (const name of [
      `${full}-2:10001`,
      `${full}-0:10000`,
      `${full}-0:8080`,
      `${full}-0`,
      `https:${full}-0:10001`,
      `other-0:10001`,
    ]) {
      t.match(await podProxied(name), /forbidden/i, `pod ${name}: forbidden`)
    }
  })

  t.test('uninstall removes the cluster-wide objects', async (t) => {
    await helmIn(ns, ['uninstall', release])
    for (const kind of ['clusterrole', 'clusterrolebinding']) {
      const names = (await kubectl(['get', kind, '-o', 'name'])).stdout
      t.notMatch(names, full, `no ${kind} of the release is left`)
    }
  })
})

t.test(
  'install with non-default values: named ServiceAccount, NetworkPolicy, aggregation into edit',
  async (t) => {
    const ns = await c.newNamespace('chart-custom')
    const release = `${ns}-log-socket` // contains the chart name, so it is the full name as is
    const key = [
      'create',
      'secret',
      'generic',
      'my-key',
      '--from-literal=key=0123456789abcdef0123456789abcdef',
    ]
    const secret = await kubectl(['-n', ns, ...key])
    t.equal(secret.code, 0, secret.stderr)
    await helmIn(ns, [
      'install',
      release,
      chartDir,
      '--set',
      'serviceAccount.name=tap-controller,service.name=logs,ingestKey.existingSecret=my-key',
      '--set',
      'networkPolicy.enabled=true,rbac.tapper.aggregateToEdit=true',
    ])
    t.teardown(() => helmIn(ns, ['uninstall', release]).then(() => undefined))

    const from = await jsonpath(ns, ['networkpolicy', release], '{.spec.ingress[0].from}')
    t.match(from, 'kubernetes.io/metadata.name', 'the NetworkPolicy was accepted as rendered')
    t.equal(
      await jsonpath(ns, ['statefulset', release], '{.spec.template.spec.serviceAccountName}'),
      'tap-controller',
    )
    t.equal(
      await jsonpath(ns, ['statefulset', release], '{.spec.template.spec.volumes[0].secret.secretName}'),
      'my-key',
    )
    t.ok(
      await can(serviceAccount(ns, 'tap-controller'), {
        verb: 'create',
        resource: 'tokenreviews.authentication.k8s.io',
      }),
      'the binding names the ServiceAccount the pods use',
    )

    // The clusterrole-aggregation controller copies the tapper rules into edit.
    const bob = serviceAccount(ns, 'bob')
    await c.serviceAccountToken(ns, 'bob')
    const bound = await kubectl([
      '-n',
      ns,
      'create',
      'rolebinding',
      'bob-edit',
      '--clusterrole=edit',
      `--serviceaccount=${ns}:bob`,
    ])
    t.equal(bound.code, 0, bound.stderr)
    const deadline = Date.now() + 30_000
    let aggregated = false
    while (!aggregated && Date.now() < deadline) {
      aggregated = await can(bob, { verb: 'create', resource: 'logtaps.logsocket.dev', namespace: ns })
      if (!aggregated) await new Promise((r) => setTimeout(r, 500))
    }
    t.ok(aggregated, 'an editor of the namespace may create LogTaps')
    t.ok(
      await can(bob, { verb: 'get', resource: 'services/proxy', namespace: ns, name: 'http:logs:10001' }),
      'and reach the stream port',
    )
  },
)

t.test("chartControllerIdentity: a token that acts with exactly the chart's controller RBAC", async (t) => {
  const id = await chartControllerIdentity(c, t)
  t.match(id.user, /^system:serviceaccount:chart-rbac-[0-9a-f]+:chart-rbac-[0-9a-f]+-log-socket$/)
  // Real requests with the token, not reviews: what the controller and relay do at startup.
  const review = await id.kc.makeApiClient(AuthenticationV1Api).createTokenReview({
    body: { spec: { token: id.token } },
  })
  t.equal(review.status?.user?.username, id.user, 'TokenReview allowed (the relay authenticates users)')
  const outputs = await id.kc.makeApiClient(CustomObjectsApi).listClusterCustomObject({
    group: 'logging.banzaicloud.io',
    version: 'v1beta1',
    plural: 'outputs',
  })
  t.ok(Array.isArray((outputs as { items?: unknown[] }).items), 'Outputs listed in all namespaces')
  await t.rejects(
    id.kc.makeApiClient(CoreV1Api).listSecretForAllNamespaces(),
    { code: 403 },
    'Secrets are out of reach',
  )
})
