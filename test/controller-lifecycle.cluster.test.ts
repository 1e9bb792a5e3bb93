// LogTap lifecycle against the real control plane, with the controller running under the
// least-privilege ServiceAccount: creation speed, deletion order, cascades, shared flows,
// concurrent edits, and what kubectl shows.
import { CoreV1Api, CustomObjectsApi, setHeaderOptions } from '@kubernetes/client-node'
import { Registry } from 'prom-client'
import t, { type Test } from 'tap'
import { verifyTapCredential } from '../api/credential.ts'
import { resourceOf } from '../api/kinds.ts'
import { FINALIZER_OUTPUT, FINALIZER_TAP } from '../api/logtap.ts'
import { getCluster } from '../local-cluster/cluster.ts'
import {
  controllerKubeConfig,
  INGEST_KEY,
  InvariantWatcher,
  Objects,
  runController,
  tapSpec,
  testLogging,
  userFlow,
  waitFor,
} from './controller-helpers.ts'

const c = await getCluster()
const core = c.kc.makeApiClient(CoreV1Api)

async function setup(t: Test, prefix: string, registry = new Registry()) {
  const ns = await c.newNamespace(prefix)
  const o = new Objects(c.kc, ns)
  const inv = new InvariantWatcher(c.kc, ns)
  await inv.start()
  const ctl = await runController(c, ns, { registry })
  t.teardown(() => ctl.stop())
  return { ns, o, inv, ctl }
}

async function finish(t: Test, inv: InvariantWatcher) {
  await inv.stop()
  t.same(inv.violations, [], 'no flow ever referenced a missing output')
  t.ok(inv.checks > 1, `invariant checked at ${inv.checks} revisions`)
}

t.test('inject: Output and flow ref appear; delete removes ref, then Output', async (t) => {
  const { ns, o, inv } = await setup(t, 'inject')
  await userFlow(o)
  await o.create('LogTap', 'web', tapSpec('app'))
  await waitFor('ref attached', async () => (await o.refs('Flow', 'app'))?.includes('logtap-web'))
  t.same(await o.refs('Flow', 'app'), ['es', 'logtap-web'], 'appended last, others untouched')

  const out = await o.get('Output', 'logtap-web')
  const tap = await o.tap('web')
  t.same(out?.metadata.finalizers, [FINALIZER_OUTPUT])
  t.match(out?.metadata.ownerReferences, [
    { kind: 'LogTap', name: 'web', uid: tap?.metadata.uid, controller: true },
  ])
  const http = out?.spec?.['http'] as Record<string, unknown>
  t.equal(http['endpoint'], `http://log-socket.log-socket.svc:10000/ingest/${ns}/web`)
  t.match(http['buffer'], { tags: '[]', overflow_action: 'drop_oldest_chunk', retry_forever: false })
  // The credential is in a Secret the Output names, owned by the tap and by the Output.
  t.match(http['auth'], {
    password: { valueFrom: { secretKeyRef: { name: 'logtap-web', key: 'password' } } },
  })
  const secret = await waitFor('the Secret, owned by the tap and the Output', async () => {
    const s = await core.readNamespacedSecret({ namespace: ns, name: 'logtap-web' })
    return s.metadata?.ownerReferences?.length === 2 ? s : undefined
  })
  const password = Buffer.from(secret.data?.['password'] ?? '', 'base64').toString()
  t.ok(
    verifyTapCredential(INGEST_KEY, ns, 'web', tap?.metadata.uid ?? '', password),
    'it holds the credential',
  )
  t.same(
    secret.metadata?.ownerReferences?.map((r) => [r.kind, r.uid]),
    [
      ['LogTap', tap?.metadata.uid],
      ['Output', out?.metadata.uid],
    ],
  )

  await waitFor('attached', async () => (await o.condition('web', 'Attached'))?.status === 'True')
  // No logging-operator writes status here: Ready waits for it (real-pipeline tests show the rest).
  // Which reason depends on the Loggings other tests have in the cluster at that moment.
  t.match(await o.condition('web', 'Ready'), {
    status: 'False',
    reason: /^(WaitingForLoggingOperator|NoLogging|NoMatchingLogging|NamespaceNotWatched)$/,
  })
  const st = (await o.tap('web'))?.status
  t.match(st, {
    outputKind: 'Output',
    outputName: 'logtap-web',
    streamPath: `/taps/${ns}/web`,
    observedGeneration: 1,
  })
  t.same((await o.tap('web'))?.metadata.finalizers, [FINALIZER_TAP])

  await o.delete('LogTap', 'web')
  await waitFor('tap gone', async () => !(await o.tap('web')))
  t.equal(await o.get('Output', 'logtap-web'), undefined, 'Output deleted')
  t.same(await o.refs('Flow', 'app'), ['es'])
  t.ok(await o.get('Output', 'es'), "the user's Output is untouched")
  await waitFor(
    'the garbage collector removes the Secret',
    async () =>
      !(await core.readNamespacedSecret({ namespace: ns, name: 'logtap-web' }).catch(() => undefined)),
    30_000,
  )
  await finish(t, inv)
})

t.test('mirror: the user flow is never touched; the copy feeds only the tap', async (t) => {
  const { o, inv } = await setup(t, 'mirror')
  await userFlow(o)
  const before = await o.get('Flow', 'app')
  await o.create('LogTap', 'm', tapSpec('app', { mode: 'mirror' }))
  const copy = await waitFor('mirror flow', () => o.get('Flow', 'logtap-m'))
  t.ok(await o.get('Output', 'logtap-m'))
  // The flow's only filter is stdout: the copy would print every record a second time.
  t.same(before?.spec?.['filters'], [{ stdout: {} }])
  t.same(copy.spec, { match: before?.spec?.['match'], localOutputRefs: ['logtap-m'] })
  const attached = await waitFor('Attached', async () => {
    const a = await o.condition('m', 'Attached')
    return a?.status === 'True' ? a : undefined
  })
  t.match(attached.message, /stdout filters are left out of the copy/, 'the tap says so')
  await waitFor('attached', async () => (await o.condition('m', 'Attached'))?.status === 'True')
  t.equal(
    (await o.get('Flow', 'app'))?.metadata.resourceVersion,
    before?.metadata.resourceVersion,
    'user flow unchanged',
  )

  // The copy follows the source.
  await o.custom.patchNamespacedCustomObject(
    {
      ...resourceOf('Flow'),
      namespace: o.ns,
      name: 'app',
      body: [{ op: 'replace', path: '/spec/match', value: [{ select: { labels: { app: 'other' } } }] }],
    },
    setHeaderOptions('Content-Type', 'application/json-patch+json'),
  )
  await waitFor('mirror follows', async () =>
    JSON.stringify((await o.get('Flow', 'logtap-m'))?.spec?.['match']).includes('other'),
  )

  await o.delete('LogTap', 'm')
  await waitFor(
    'all gone',
    async () =>
      !(await o.tap('m')) && !(await o.get('Flow', 'logtap-m')) && !(await o.get('Output', 'logtap-m')),
  )
  await finish(t, inv)
})

t.test('ClusterFlow tap: ClusterOutput in globalOutputRefs', async (t) => {
  const { ns, o, inv } = await setup(t, 'cflow')
  await testLogging(t, c.kc, `l-${ns}`, { controlNamespace: ns })
  await userFlow(o, 'all', 'ClusterFlow')
  await o.create('LogTap', 'c', { flow: { kind: 'ClusterFlow', name: 'all' } })
  await waitFor('global ref', async () => (await o.refs('ClusterFlow', 'all'))?.includes('logtap-c'))
  t.ok(await o.get('ClusterOutput', 'logtap-c'))
  await o.delete('LogTap', 'c')
  await waitFor('gone', async () => !(await o.tap('c')) && !(await o.get('ClusterOutput', 'logtap-c')))
  t.same(await o.refs('ClusterFlow', 'all'), ['es'])
  await finish(t, inv)
})

t.test(
  'ClusterFlow tap whose ClusterOutput a Flow in another namespace names: that Flow is detached first, with an Event',
  async (t) => {
    const control = await c.newNamespace('xns-control')
    const tenant = await c.newNamespace('xns-tenant')
    const o = new Objects(c.kc, control)
    const tenantObjects = new Objects(c.kc, tenant)
    // A Logging of its own (loggingRef): no other test's flows belong to it.
    const loggingRef = `xns-${control}`
    await testLogging(t, c.kc, loggingRef, {
      controlNamespace: control,
      watchNamespaces: [tenant],
      loggingRef,
    })
    const inv = new InvariantWatcher(c.kc, control, { tenants: [tenant] })
    await inv.start()
    // The controller watches only the control namespace, as it would watch its taps' namespaces.
    const ctl = await runController(c, control)
    t.teardown(() => ctl.stop())
    await o.create('ClusterOutput', 'es', { loggingRef, http: { endpoint: 'http://127.0.0.1:9/' } })
    await o.create('ClusterFlow', 'all', { loggingRef, globalOutputRefs: ['es'] })
    await o.create('LogTap', 'c', { flow: { kind: 'ClusterFlow', name: 'all' } })
    await waitFor('attached', async () => (await o.refs('ClusterFlow', 'all'))?.includes('logtap-c'))
    // A tenant routes its own Flow to the tap's ClusterOutput too.
    await tenantObjects.create('Flow', 'app', {
      loggingRef,
      match: [{ select: { labels: { app: 'x' } } }],
      globalOutputRefs: ['logtap-c'],
    })
    await o.delete('LogTap', 'c')
    await waitFor(
      'gone',
      async () => !(await o.tap('c')) && !(await o.get('ClusterOutput', 'logtap-c')),
      20_000,
    )
    t.same(await tenantObjects.refs('Flow', 'app'), [], "the tenant's ref was removed first")
    t.same(await o.refs('ClusterFlow', 'all'), ['es'])
    const told = await waitFor('an Event on the tenant Flow', async () =>
      (await core.listNamespacedEvent({ namespace: tenant })).items.find(
        (e) =>
          e.involvedObject.kind === 'Flow' &&
          e.involvedObject.name === 'app' &&
          e.reason === 'TapOutputDetached',
      ),
    )
    t.match(
      told.message,
      new RegExp(`LogTap ${control}/c is being removed: logtap-c was removed from .spec.globalOutputRefs`),
    )
    await finish(t, inv)
  },
)

t.test('foreground cascading delete keeps the invariant', async (t) => {
  const { o, inv } = await setup(t, 'fg')
  await userFlow(o)
  await o.create('LogTap', 'fg', tapSpec('app'))
  await waitFor('attached', async () => (await o.condition('fg', 'Attached'))?.status === 'True')
  await o.delete('LogTap', 'fg', 'Foreground')
  await waitFor('gone', async () => !(await o.tap('fg')) && !(await o.get('Output', 'logtap-fg')), 30_000)
  t.same(await o.refs('Flow', 'app'), ['es'])
  await finish(t, inv)
})

t.test('two taps on one flow: removing one leaves the other intact', async (t) => {
  const { o, inv } = await setup(t, 'two')
  await userFlow(o)
  await o.create('LogTap', 'a', tapSpec('app'))
  await o.create('LogTap', 'b', tapSpec('app'))
  await waitFor('both', async () => {
    const r = await o.refs('Flow', 'app')
    return r?.includes('logtap-a') && r.includes('logtap-b')
  })
  await waitFor('b attached', async () => (await o.condition('b', 'Attached'))?.status === 'True')
  const bOut = await o.get('Output', 'logtap-b')
  await o.delete('LogTap', 'a')
  await waitFor('a gone', async () => !(await o.tap('a')) && !(await o.get('Output', 'logtap-a')))
  const refs = await o.refs('Flow', 'app')
  t.same(
    refs?.filter((r) => r !== 'logtap-b'),
    ['es'],
  )
  t.ok(refs?.includes('logtap-b'), "b's ref kept")
  t.equal((await o.get('Output', 'logtap-b'))?.metadata.uid, bOut?.metadata.uid, "b's Output kept")
  t.equal((await o.condition('b', 'Attached'))?.status, 'True')
  await finish(t, inv)
})

t.test('concurrent edits of the Flow by someone else are preserved', async (t) => {
  const { o, inv } = await setup(t, 'edit')
  await userFlow(o)
  await o.create('Output', 'loki', { http: { endpoint: 'http://127.0.0.1:9/' } })
  // Someone edits the flow (labels, filters, refs) in a tight loop while the tap attaches.
  const user = c.kc.makeApiClient(CustomObjectsApi)
  const merge = async (i: number) => {
    await user.patchNamespacedCustomObject(
      {
        ...resourceOf('Flow'),
        namespace: o.ns,
        name: 'app',
        body: {
          metadata: { labels: { edit: String(i) } },
          spec: { filters: [{ stdout: {} }, { dedot: {} }] },
        },
      },
      setHeaderOptions('Content-Type', 'application/merge-patch+json'),
    )
  }
  const edits = (async () => {
    for (let i = 0; i < 30; i++) await merge(i)
  })()
  await o.create('LogTap', 'e', tapSpec('app'))
  await edits
  // And one more edit of the list itself, after attaching: the user's new entry stays.
  await waitFor('attached', async () => (await o.refs('Flow', 'app'))?.includes('logtap-e'))
  const f = await o.get('Flow', 'app')
  const refs = f?.spec?.['localOutputRefs'] as string[]
  await user.patchNamespacedCustomObject(
    {
      ...resourceOf('Flow'),
      namespace: o.ns,
      name: 'app',
      body: [
        { op: 'test', path: '/spec/localOutputRefs', value: refs },
        { op: 'add', path: '/spec/localOutputRefs/-', value: 'loki' },
      ],
    },
    setHeaderOptions('Content-Type', 'application/json-patch+json'),
  )
  await waitFor('attached', async () => (await o.condition('e', 'Attached'))?.status === 'True')
  const after = await o.get('Flow', 'app')
  t.equal(after?.metadata.labels?.['edit'], '29', 'last label edit kept')
  t.same(after?.spec?.['filters'], [{ stdout: {} }, { dedot: {} }])
  t.same(after?.spec?.['localOutputRefs'], ['es', 'logtap-e', 'loki'])
  await o.delete('LogTap', 'e')
  await waitFor('gone', async () => !(await o.tap('e')))
  t.same(await o.refs('Flow', 'app'), ['es', 'loki'], "only our entry removed; the user's later one stays")
  await finish(t, inv)
})

t.test('kubectl shows columns, conditions and Events; metrics count reconciles', async (t) => {
  const registry = new Registry()
  const { ns, o } = await setup(t, 'kubectl', registry)
  await userFlow(o)
  await o.create('LogTap', 'k', tapSpec('app'))
  await waitFor('attached', async () => (await o.condition('k', 'Attached'))?.status === 'True')
  const get = await c.kubectl(['get', 'ltap', '-n', ns])
  t.equal(get.code, 0, get.stderr)
  t.match(get.stdout, /NAME\s+FLOW\s+KIND\s+MODE\s+LIFETIME\s+READY\s+LISTENERS\s+RECORDS\s+AGE/)
  t.match(get.stdout, /k\s+app\s+Flow\s+inject\s+persistent\s+False/, 'not Ready: no logging-operator here')
  const desc = await waitFor('events', async () => {
    const d = await c.kubectl(['describe', 'logtap', 'k', '-n', ns])
    return d.stdout.includes('Attached') && d.stdout.includes('Ready') && d.stdout.includes('ApplyOutput')
      ? d
      : undefined
  })
  t.match(desc.stdout, /Created Output: Output .*logtap-k/)
  t.match(desc.stdout, /Type:\s+Ready/)
  const metrics = await registry.metrics()
  t.match(metrics, /log_socket_controller_reconciles_total\{result="success"\} [1-9]/)
  t.match(metrics, /log_socket_controller_actions_total\{action="Attach"\} 1/)
  t.match(metrics, /log_socket_controller_queue_depth 0/)
  t.match(metrics, /log_socket_controller_reconcile_duration_seconds_count [1-9]/)
})

t.test('the controller identity is least-privilege, not admin', async (t) => {
  const kc = await controllerKubeConfig(c)
  const core = kc.makeApiClient(CoreV1Api)
  const ns = await c.newNamespace('priv')
  const code = (p: Promise<unknown>) =>
    p.then(
      () => 200,
      (e) => (e as { code?: number }).code,
    )
  t.equal(await code(core.listSecretForAllNamespaces()), 403, 'cannot list Secrets anywhere')
  t.equal(await code(core.listNamespacedSecret({ namespace: ns })), 403, 'nor in a namespace')
  t.equal(
    await code(core.listNamespacedSecret({ namespace: ns, watch: true, timeoutSeconds: 1 })),
    403,
    'nor watch them',
  )
  const err2 = await core
    .createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'x' } } })
    .then(
      () => undefined,
      (e) => e,
    )
  t.equal(err2?.code, 403, 'cannot write ConfigMaps')
})
