// The LogTap CRD's categories, as the real kubectl resolves them: `kubectl get logging` must still
// mean logging-operator's Loggings (a category named like a kind wins over the kind), and LogTaps are
// listed under categories of their own.
import { CustomObjectsApi } from '@kubernetes/client-node'
import t from 'tap'
import { KINDS, resourceOf } from '../api/kinds.ts'
import { getCluster } from '../local-cluster/cluster.ts'
import { Objects, tapSpec } from './controller-helpers.ts'

const c = await getCluster()

t.test('kubectl get logging lists Loggings, not LogTaps; LogTaps have categories of their own', async (t) => {
  const ns = await c.newNamespace('categories')
  const custom = c.kc.makeApiClient(CustomObjectsApi)
  // Named `all`: `kubectl get logging all` used to look for a LogTap "all".
  await custom.createClusterCustomObject({
    ...resourceOf('Logging'),
    body: {
      apiVersion: KINDS.Logging.apiVersion,
      kind: 'Logging',
      metadata: { name: 'all' },
      // A loggingRef and namespace of its own: no other test's flows belong to it.
      spec: { controlNamespace: ns, watchNamespaces: [ns], loggingRef: `categories-${ns}` },
    },
  })
  t.teardown(() => custom.deleteClusterCustomObject({ ...resourceOf('Logging'), name: 'all' }))
  const o = new Objects(c.kc, ns)
  await o.create('LogTap', 'shop-tap', tapSpec('shop'))

  const all = await c.kubectl(['get', 'logging', '-A', '-o', 'name'])
  t.equal(all.code, 0, all.stderr)
  t.match(all.stdout, /^logging\.logging\.banzaicloud\.io\/all$/m, 'the Logging is listed')
  t.notMatch(all.stdout, /logtap/, 'no LogTap among them')

  const named = await c.kubectl(['get', 'logging', 'all', '-o', 'name'])
  t.equal(named.code, 0, named.stderr)
  t.equal(named.stdout.trim(), 'logging.logging.banzaicloud.io/all')

  for (const category of ['log-socket', 'logging-all']) {
    const r = await c.kubectl(['get', category, '-n', ns, '-o', 'name'])
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /^logtap\.logsocket\.dev\/shop-tap$/m, `kubectl get ${category} lists LogTaps`)
  }
})
