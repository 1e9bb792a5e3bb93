// Shared informers against the real API server: a kind whose CRD is not installed (an older
// logging-operator without the syslog-ng kinds, say) must not hold up the program. The informer
// counts as synced with an empty cache, and picks the kind up once its CRD is installed.
import { ApiextensionsV1Api, CustomObjectsApi } from '@kubernetes/client-node'
import { pino } from 'pino'
import t from 'tap'
import type { KindInfo } from '../api/kinds.ts'
import { SharedInformers } from '../controller/kube/informers.ts'
import { getCluster } from '../local-cluster/cluster.ts'
import { until } from './support/until.ts'

const c = await getCluster()
const ns = await c.newNamespace('informers')
const suffix = ns.replace(/[^a-z0-9]/g, '')
const group = `${suffix}.absent.logsocket.dev`
const kind: KindInfo = {
  kind: 'Widget',
  group,
  version: 'v1',
  apiVersion: `${group}/v1`,
  plural: 'widgets',
  scope: 'Namespaced',
}

t.test('a kind the API server does not serve: synced and empty, then picked up once installed', async (t) => {
  const informers = new SharedInformers(c.kc, { namespace: ns, log: pino({ level: 'silent' }) })
  t.teardown(() => informers.stop())
  const widgets = informers.for(kind)
  const seen: string[] = []
  widgets.on((event, obj) => seen.push(`${event} ${obj.metadata.name}`))

  await widgets.start() // would never resolve if a 404 counted as a failure to sync
  t.ok(widgets.synced(), 'synced although the kind does not exist')
  t.notOk(widgets.isServed(), 'and it says the kind is not served')
  t.same(widgets.list(), [], 'with an empty cache')

  const crds = c.kc.makeApiClient(ApiextensionsV1Api)
  const crdName = `${kind.plural}.${group}`
  await crds.createCustomResourceDefinition({
    body: {
      metadata: { name: crdName },
      spec: {
        group,
        scope: 'Namespaced',
        names: { kind: 'Widget', plural: 'widgets', singular: 'widget', listKind: 'WidgetList' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true } },
          },
        ],
      },
    },
  })
  t.teardown(() => crds.deleteCustomResourceDefinition({ name: crdName }).catch(() => {}))
  const custom = c.kc.makeApiClient(CustomObjectsApi)
  for (let i = 0; ; i++) {
    try {
      await custom.createNamespacedCustomObject({
        group,
        version: 'v1',
        namespace: ns,
        plural: 'widgets',
        body: { apiVersion: kind.apiVersion, kind: 'Widget', metadata: { name: 'w1' } },
      })
      break
    } catch (err) {
      if (i > 100) throw err
      await new Promise((r) => setTimeout(r, 200)) // the CRD is not established yet
    }
  }
  await until('the informer to see the new object', () => widgets.get('w1', ns) !== undefined, 60_000)
  t.ok(widgets.isServed(), 'the kind is served now')
  t.same(seen, ['add w1'], 'its handlers heard the object')
})
