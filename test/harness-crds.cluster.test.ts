// A clone of the repository without ../shared: the local cluster still starts, with the minimal
// logging-operator CRDs this repository carries, and serves every kind log-socket uses the way
// kubectl users know them (status subresource, Active/Problems columns, category logging-all).
import path from 'node:path'
import { CustomObjectsApi } from '@kubernetes/client-node'
import t from 'tap'
import { type ClusterState, crdSources, startCluster, stopCluster, view } from '../local-cluster/cluster.ts'

const GROUP = 'logging.banzaicloud.io'
const VERSION = 'v1beta1'

function withoutUpstreamCrds<T>(f: () => T): T {
  const saved = process.env.LOG_SOCKET_LOGGING_CRDS
  process.env.LOG_SOCKET_LOGGING_CRDS = path.join(import.meta.dirname, 'no-such-folder')
  try {
    return f()
  } finally {
    if (saved === undefined) delete process.env.LOG_SOCKET_LOGGING_CRDS
    else process.env.LOG_SOCKET_LOGGING_CRDS = saved
  }
}

t.test('without upstream CRDs the cluster starts with our own and serves every kind', async (t) => {
  const sources = withoutUpstreamCrds(crdSources)
  t.match(sources.logging, /minimal CRDs/, 'our own CRDs are chosen')
  t.equal(sources.objects.length, 9)
  let state: ClusterState | undefined
  const lines: string[] = []
  state = await withoutUpstreamCrds(() => startCluster((l) => lines.push(l)))
  t.teardown(() => (state ? stopCluster(state) : undefined))
  t.ok(
    lines.some((l) => /logging-operator CRDs: the minimal CRDs/.test(l)),
    'the start says which CRDs it used',
  )
  const c = view(state)
  const custom = c.kc.makeApiClient(CustomObjectsApi)
  const ns = await c.newNamespace('crds')
  const kinds = {
    Flow: { localOutputRefs: ['o'], match: [{ select: { labels: { app: 'a' } } }] },
    ClusterFlow: { globalOutputRefs: ['co'] },
    Output: { http: { endpoint: 'http://127.0.0.1:9/x', buffer: { tags: '[]' } } },
    ClusterOutput: { http: { endpoint: 'http://127.0.0.1:9/x' } },
    SyslogNGFlow: { localOutputRefs: ['so'] },
    SyslogNGClusterFlow: { globalOutputRefs: ['sco'] },
    SyslogNGOutput: { http: { url: 'http://127.0.0.1:9/x', 'batch-lines': 10 } },
    SyslogNGClusterOutput: { http: { url: 'http://127.0.0.1:9/x' } },
  }
  for (const [kind, spec] of Object.entries(kinds)) {
    const plural = `${kind.toLowerCase()}s`
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name: 'x' }, spec },
    })
    const got = (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural,
      name: 'x',
    })) as {
      spec: unknown
    }
    t.same(got.spec, spec, `${kind}: the spec is kept as written`)
    // What the operator does: status through the status subresource.
    await custom.patchNamespacedCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural,
      name: 'x',
      body: [{ op: 'add', path: '/status', value: { active: false, problems: ['p'], problemsCount: 1 } }],
    })
    const r = await c.kubectl(['get', plural, '-n', ns])
    t.match(r.stdout, /^NAME\s+ACTIVE\s+PROBLEMS\n/, `${kind}: kubectl shows the Active and Problems columns`)
    t.match(r.stdout, /^x\s+false\s+1\n/m, `${kind}: with the status values`)
  }
  const all = await c.kubectl(['get', 'logging-all', '-n', ns, '-o', 'name'])
  t.equal(all.stdout.trim().split('\n').length, 8, 'kubectl get logging-all lists every namespaced kind')

  await custom.createClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: 'loggings',
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'Logging',
      metadata: { name: `l-${ns}` },
      spec: { controlNamespace: ns, fluentd: {} },
    },
  })
  const loggings = await c.kubectl(['get', 'loggings', `l-${ns}`])
  t.match(loggings.stdout, /^NAME\s+LOGGINGREF\s+CONTROLNAMESPACE\s+WATCHNAMESPACES\s+PROBLEMS\n/)
  await t.rejects(
    custom.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: 'loggings',
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'Logging', metadata: { name: `m-${ns}` }, spec: {} },
    }),
    { code: 422 },
    'a Logging needs a controlNamespace',
  )
  await t.rejects(
    custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: 'clusteroutputs',
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'ClusterOutput', metadata: { name: 'nospec' } },
    }),
    { code: 422 },
    'a ClusterOutput needs a spec',
  )
  await stopCluster(state)
  state = undefined
})
