// The relay against the real API server: TokenReview/SubjectAccessReview refusals, the LogTap
// informer, each replica's status counters written back by server-side apply, and the
// fluentd-faithful sender feeding the relay from an http Output.
import { CustomObjectsApi, RbacAuthorizationV1Api, setHeaderOptions } from '@kubernetes/client-node'
import { pino } from 'pino'
import t from 'tap'
import { basicAuthorization } from '../api/credential.ts'
import { KINDS, resourceOf } from '../api/kinds.ts'
import { API_VERSION, GROUP, ingestPath, KIND, PLURAL, relayFieldManager, VERSION } from '../api/logtap.ts'
import type { DeniedMessage } from '../api/stream-protocol.ts'
import { SharedInformers } from '../controller/kube/informers.ts'
import { k8sAuth } from '../controller/relay/kube/auth.ts'
import { k8sTapDirectory } from '../controller/relay/kube/logtap-directory.ts'
import { k8sStatusWriter } from '../controller/relay/kube/status-writer.ts'
import { getCluster } from '../local-cluster/cluster.ts'
import { startFluentdSender } from '../local-cluster/fluentd-sender.ts'
import { samplePods } from '../local-cluster/sample-records.ts'
import { ensureLogTapCrd } from './support/cli-cluster.ts'
import { connect, startTestRelay } from './support/relay.ts'
import { until } from './support/until.ts'

const c = await getCluster()
const custom = c.kc.makeApiClient(CustomObjectsApi)
const logger = pino({ level: process.env['RELAY_TEST_LOG'] ?? 'silent' })

await ensureLogTapCrd(c.kc)
const ns = await c.newNamespace('relay')
const rbac = c.kc.makeApiClient(RbacAuthorizationV1Api)
await rbac.createNamespacedRole({
  namespace: ns,
  body: {
    metadata: { name: 'logtap-reader' },
    rules: [{ apiGroups: [GROUP], resources: [PLURAL], verbs: ['get'] }],
  },
})
await rbac.createNamespacedRoleBinding({
  namespace: ns,
  body: {
    metadata: { name: 'viewer-reads-logtaps' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'logtap-reader' },
    subjects: [{ kind: 'ServiceAccount', name: 'viewer', namespace: ns }],
  },
})
const viewer = await c.serviceAccountToken(ns, 'viewer')
const nobody = await c.serviceAccountToken(ns, 'nobody')

const tapObject = (name: string) => ({
  apiVersion: API_VERSION,
  kind: KIND,
  metadata: { name, namespace: ns },
  spec: { flow: { kind: 'Flow', name: 'flow1' }, mode: 'inject', lifetime: 'persistent', replay: 100 },
})
const g = { group: GROUP, version: VERSION, plural: PLURAL, namespace: ns }
await custom.createNamespacedCustomObject({ ...g, body: tapObject('tap') })

const informers = new SharedInformers(c.kc, { log: logger })
const taps = k8sTapDirectory(informers.for(KINDS.LogTap))
await informers.for(KINDS.LogTap).start()
t.teardown(() => informers.stop())
const writer = k8sStatusWriter(c.kc, { logger, replica: 'relay-a', intervalMs: 200 })
t.teardown(() => writer.stop())
const r = await startTestRelay({ taps, auth: k8sAuth(c.kc), onStatus: writer.sink })
t.teardown(() => r.close())
const tap = await until('the informer to see the tap', () => taps.get(ns, 'tap'))

t.test('the informer is synced and readiness says so', async (t) => {
  t.ok(taps.synced())
  const res = await fetch(`${r.relay.addresses.ops}/readyz`)
  t.equal(res.status, 200)
})

t.test('refusals before the upgrade use TokenReview and SubjectAccessReview', async (t) => {
  const status = async (url: string, token?: string) =>
    connect(url, token).then(
      (cl) => {
        cl.ws.close()
        return 101
      },
      (e: { status?: number }) => e.status,
    )
  t.equal(await status(r.streamUrl(tap)), 401, 'no token')
  t.equal(await status(r.streamUrl(tap), 'not-a-token'), 401, 'a token the API server rejects')
  t.equal(await status(r.streamUrl(tap), nobody), 403, 'an SA without get on the LogTap')
  t.equal(await status(r.streamUrl({ ...tap, name: 'missing' }), viewer), 404, 'no such LogTap')
  t.equal(await status(r.streamUrl(tap), viewer), 101, 'the SA with get is upgraded')
})

t.test('fluentd sender → relay → listener, RBAC per record, status written back', async (t) => {
  const client = await connect(r.streamUrl(tap), viewer)
  await client.until((m) => m.length >= 1)
  t.match(client.messages[0], { type: 'hello', user: `system:serviceaccount:${ns}:viewer` })

  const relayService = `http://log-socket-relay.${ns}.svc:10000`
  const output = {
    apiVersion: KINDS.Output.apiVersion,
    kind: 'Output',
    metadata: { name: 'tap-out', namespace: ns },
    spec: {
      http: {
        endpoint: `${relayService}${ingestPath(ns, 'tap')}`,
        headers: { authorization: basicAuthorization(tap.name, r.credential(tap)) },
        json_array: true,
        compress: 'gzip',
        buffer: { tags: '[]', flush_interval: '1s' },
      },
    },
  }
  const sender = await startFluentdSender({
    kc: c.kc,
    namespace: ns,
    clusterOutputs: false,
    activationDelayMs: 300,
    flushIntervalMs: 100,
    recordsPerChunk: 5,
    pods: samplePods(ns),
    resolve: (u) => u.replace(relayService, r.relay.addresses.ingest),
  })
  t.teardown(() => sender.stop())
  await custom.createNamespacedCustomObject({
    ...resourceOf('Output'),
    namespace: ns,
    body: output,
  })
  const posts = await sender.until(`Output/${ns}/tap-out`, 4)
  await sender.stop()
  await custom.deleteNamespacedCustomObject({
    ...resourceOf('Output'),
    namespace: ns,
    name: 'tap-out',
  })
  const settled = sender.posts.filter((p) => p.status === 200)
  t.ok(settled.length >= 4, 'chunks accepted with 200')
  t.equal(sender.posts.length, settled.length, 'no chunk refused')
  const total = settled.reduce((n, p) => n + p.records, 0)
  // samplePods: checkout (policy allow) and payments (allow for <ns>_viewer) are visible;
  // ledger (policy deny) and cache (no rbac labels) are not.
  const visible = settled.filter((_, i) => i % 4 < 2).flatMap((p) => p.lines)
  await client.until(() => {
    const denied = client.messages
      .filter((m): m is DeniedMessage => m.type === 'denied')
      .reduce((n, d) => n + d.count, 0)
    return client.records().length + denied === total
  })
  t.same(
    client.records().map((x) => x.raw),
    visible,
    'the viewer gets its visible records byte for byte, in order',
  )
  const denied = client.messages.filter((m): m is DeniedMessage => m.type === 'denied')
  t.same([...new Set(denied.map((d) => d.pod))].sort(), [`${ns}/cache-0`, `${ns}/ledger-6f7b9c8d5-z9k1m`])
  t.ok(posts.length >= 4)

  type Relay = { name: string; listeners: number; recordsReceived: number; lastRecordTime?: string }
  type Tap = {
    status?: { relays?: Relay[] }
    metadata: { managedFields?: { manager: string; subresource?: string; fieldsV1?: unknown }[] }
  }
  const entry = (o: Tap, name: string) => o.status?.relays?.find((e) => e.name === name)
  const obj = await until("this replica's counters on the LogTap", async () => {
    const o = (await custom.getNamespacedCustomObject({ ...g, name: 'tap' })) as Tap
    const e = entry(o, 'relay-a')
    return e?.recordsReceived === total && e.listeners === 1 ? o : undefined
  })
  t.match(entry(obj, 'relay-a'), { listeners: 1, recordsReceived: total, lastRecordTime: String })
  const mine = obj.metadata.managedFields?.filter((f) => f.manager === relayFieldManager('relay-a')) ?? []
  t.equal(mine.length, 1, 'one managed-fields entry for this replica')
  t.equal(mine[0]?.subresource, 'status')
  t.same(
    Object.keys((mine[0]?.fieldsV1 as { 'f:status'?: object } | undefined)?.['f:status'] ?? {}),
    ['f:relays'],
    'the replica owns its entry of status.relays and nothing else',
  )

  // Another replica writes its own entry beside it, under its own field manager.
  const other = k8sStatusWriter(c.kc, { logger, replica: 'relay-b', intervalMs: 50 })
  other.sink({ namespace: ns, name: 'tap', uid: tap.uid }, { listeners: 2, recordsReceived: 7 })
  await other.flush()
  await other.stop()
  const both = (await custom.getNamespacedCustomObject({ ...g, name: 'tap' })) as Tap
  t.match(entry(both, 'relay-a'), { listeners: 1, recordsReceived: total })
  t.match(entry(both, 'relay-b'), { listeners: 2, recordsReceived: 7 })

  client.ws.close()
  await until('listeners back to 0 in the status', async () => {
    const o = (await custom.getNamespacedCustomObject({ ...g, name: 'tap' })) as Tap
    return entry(o, 'relay-a')?.listeners === 0 || undefined
  })
  t.match(entry((await custom.getNamespacedCustomObject({ ...g, name: 'tap' })) as Tap, 'relay-b'), {
    listeners: 2,
  })
  t.pass('listener count written back after the client left')
})

t.test('deleting the LogTap closes its streams with 4004', async (t) => {
  await custom.createNamespacedCustomObject({ ...g, body: tapObject('short') })
  const short = await until('the informer to see the second tap', () => taps.get(ns, 'short'))
  const client = await connect(r.streamUrl(short), viewer)
  await custom.deleteNamespacedCustomObject({ ...g, name: 'short' })
  t.same(await client.closed, { code: 4004, reason: 'tap deleted' })
  t.equal(taps.get(ns, 'short'), undefined)
})

t.test('a ClusterOutput posting plain NDJSON reaches its own tap only', async (t) => {
  await custom.createNamespacedCustomObject({ ...g, body: tapObject('ctap') })
  const ctap = await until('the informer to see ctap', () => taps.get(ns, 'ctap'))
  const mine = await connect(r.streamUrl(ctap), viewer)
  const other = await connect(r.streamUrl(tap), viewer)
  const relayService = `http://log-socket-relay.${ns}.svc:10000`
  const sender = await startFluentdSender({
    kc: c.kc,
    namespace: ns,
    activationDelayMs: 200,
    flushIntervalMs: 100,
    recordsPerChunk: 3,
    pods: samplePods(ns).slice(0, 1), // checkout: rbac/policy allow
    resolve: (u) => u.replace(relayService, r.relay.addresses.ingest),
  })
  t.teardown(() => sender.stop())
  await custom.createNamespacedCustomObject({
    ...resourceOf('ClusterOutput'),
    namespace: ns,
    body: {
      apiVersion: KINDS.ClusterOutput.apiVersion,
      kind: 'ClusterOutput',
      metadata: { name: 'ctap-out', namespace: ns },
      spec: {
        http: {
          endpoint: `${relayService}${ingestPath(ns, 'ctap')}`,
          headers: { authorization: basicAuthorization(ctap.name, r.credential(ctap)) },
        },
      },
    },
  })
  const posts = await sender.until(`ClusterOutput/${ns}/ctap-out`, 2)
  await sender.stop()
  const lines = sender.posts
    .filter((p) => p.output === `ClusterOutput/${ns}/ctap-out`)
    .flatMap((p) => p.lines)
  await mine.until(() => mine.records().length === lines.length)
  t.same(
    mine.records().map((x) => x.raw),
    lines,
    'NDJSON records byte for byte',
  )
  t.ok(posts.length >= 2)
  await new Promise((f) => setTimeout(f, 200))
  t.same(
    other.messages.filter((m) => m.type !== 'hello'),
    [],
    'the other tap saw none of them',
  )
  mine.ws.close()
  other.ws.close()
})

t.test("a LogTap's spec.selection, learned from the informer: applied, changed, invalid", async (t) => {
  const body = {
    ...tapObject('sel'),
    spec: {
      ...tapObject('sel').spec,
      selection: { where: 'kubernetes.pod_name =~ "^checkout"', fields: ['message'] },
    },
  }
  await custom.createNamespacedCustomObject({ ...g, body })
  const sel = await until('the informer to see sel', () => taps.get(ns, 'sel'))
  const client = await connect(r.streamUrl(sel), viewer)
  t.match(client.messages[0], {
    type: 'hello',
    selection: { tap: true, text: 'where kubernetes.pod_name =~ "^checkout"; fields message' },
  })
  const pods = samplePods(ns) // checkout is allowed to everyone (rbac/policy: allow)
  const lines = pods.map((p) =>
    JSON.stringify({
      message: `from ${p.name}`,
      kubernetes: { pod_name: p.name, namespace_name: ns, labels: p.labels },
    }),
  )
  t.equal((await r.post(sel, `${lines.join('\n')}\n`)).status, 200)
  await client.until(() => client.records().length === 1)
  t.same(client.records()[0]!.raw, JSON.stringify({ message: `from ${pods[0]!.name}` }))
  // A changed selection (here an invalid one): the relay learns it from the informer, and its next
  // chunk for the tap closes the stream for the listener to reconnect and get it.
  await custom.patchNamespacedCustomObject(
    {
      ...g,
      name: 'sel',
      body: [{ op: 'replace', path: '/spec/selection/where', value: 'level == error ||' }],
    },
    setHeaderOptions('Content-Type', 'application/json-patch+json'),
  )
  const changed = await until('the informer to see the change', () =>
    taps.get(ns, 'sel')?.selection?.error ? taps.get(ns, 'sel') : undefined,
  )
  t.equal((await r.post(changed, `${lines[0]}\n`)).status, 200)
  t.match(await client.closed, { code: 4012 })
  const refused = await connect(r.streamUrl(sel), viewer).then(
    () => undefined,
    (e: { status?: number; body?: string }) => e,
  )
  t.match(refused, {
    status: 409,
    body: /"error":"bad-tap-selection".*spec\.selection\.where: there is no \|\|/,
  })
})
