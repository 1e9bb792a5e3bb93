// Bad input, session expiry and drift, against the real control plane.
import { CustomObjectsApi, setHeaderOptions } from '@kubernetes/client-node'
import t from 'tap'
import { KINDS, resourceOf } from '../api/kinds.ts'
import { getCluster } from '../local-cluster/cluster.ts'
import {
  InvariantWatcher,
  Objects,
  runController,
  sleep,
  tapSpec,
  testLogging,
  userFlow,
  waitFor,
} from './controller-helpers.ts'

const c = await getCluster()
const LEASES = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' }
const micro = (ms: number) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')

t.test('flow not found: a clear condition, then attached once the Flow appears', async (t) => {
  const ns = await c.newNamespace('nf')
  const o = new Objects(c.kc, ns)
  const ctl = await runController(c, ns)
  t.teardown(() => ctl.stop())
  await o.create('LogTap', 'x', tapSpec('later'))
  const cond = await waitFor('FlowFound=False', async () => {
    const f = await o.condition('x', 'FlowFound')
    return f?.status === 'False' ? f : undefined
  })
  t.equal(cond.reason, 'FlowNotFound')
  t.match(cond.message, /Flow .*later does not exist/)
  t.equal((await o.condition('x', 'Ready'))?.status, 'False')
  t.equal(await o.get('Output', 'logtap-x'), undefined, 'nothing created meanwhile')
  await userFlow(o, 'later')
  await waitFor('attached', async () => (await o.condition('x', 'Attached'))?.status === 'True')
  t.ok((await o.refs('Flow', 'later'))?.includes('logtap-x'))
})

t.test(
  'no logging-operator renders the flow: Ready says why, at once or after the bounded wait',
  async (t) => {
    const ns = await c.newNamespace('noop')
    const o = new Objects(c.kc, ns)
    const loggingRef = `noop-${ns}`
    await o.create('Output', 'es', { loggingRef, http: { endpoint: 'http://127.0.0.1:9/' } })
    await o.create('Flow', 'app', {
      loggingRef,
      match: [{ select: { labels: { app: 'a' } } }],
      localOutputRefs: ['es'],
    })
    // Some Logging exists (another team's): just none with this flow's loggingRef.
    const logging = (ref: string) =>
      testLogging(t, c.kc, ref, { controlNamespace: ns, watchNamespaces: [ns], loggingRef: ref })
    await logging(`other-${ns}`)
    const ctl = await runController(c, ns, { operatorAcceptanceTimeoutMs: 5000 })
    t.teardown(() => ctl.stop())
    await o.create('LogTap', 'x', tapSpec('app'))
    const none = await waitFor('NoMatchingLogging', async () => {
      const r = await o.condition('x', 'Ready')
      return r?.reason === 'NoMatchingLogging' ? r : undefined
    })
    t.equal(none.status, 'False')
    t.match(none.message, `No Logging has loggingRef "${loggingRef}", the Flow app's`)
    t.equal((await o.condition('x', 'Attached'))?.status, 'True', 'attached all the same')
    // A Logging that would render it, but nothing answers for it (no operator writes status).
    await logging(loggingRef)
    // The wait starts when a Logging would render the flow, however long after the attachment.
    let seen: unknown
    const waiting = await waitFor('WaitingForLoggingOperator', async () => {
      const r = await o.condition('x', 'Accepted')
      seen = r
      return r?.reason === 'WaitingForLoggingOperator' ? r : undefined
    }).catch((err: Error) => {
      throw new Error(`${err.message}; Accepted was ${JSON.stringify(seen)}`)
    })
    t.equal(waiting.status, 'Unknown', 'Accepted is not known yet')
    t.equal((await o.condition('x', 'Ready'))?.status, 'False')
    const silent = await waitFor('LoggingOperatorNotResponding', async () => {
      const r = await o.condition('x', 'Ready')
      return r?.reason === 'LoggingOperatorNotResponding' ? r : undefined
    })
    t.match(silent.message, `is logging-operator running for Logging ${loggingRef}?`)
  },
)

t.test('ClusterFlow tap outside the control namespace: WrongNamespace', async (t) => {
  const ns = await c.newNamespace('wrongns')
  const o = new Objects(c.kc, ns)
  await testLogging(t, c.kc, `l-${ns}`, { controlNamespace: `${ns}-control` })
  const ctl = await runController(c, ns)
  t.teardown(() => ctl.stop())
  await userFlow(o, 'all', 'ClusterFlow')
  await o.create('LogTap', 'c', { flow: { kind: 'ClusterFlow', name: 'all' } })
  const cond = await waitFor('WrongNamespace', async () => {
    const f = await o.condition('c', 'FlowFound')
    return f?.reason === 'WrongNamespace' ? f : undefined
  })
  t.match(cond.message, new RegExp(`${ns}-control`))
  t.equal(await o.get('ClusterOutput', 'logtap-c'), undefined)
  t.same(await o.refs('ClusterFlow', 'all'), ['es'], 'ClusterFlow untouched')
})

t.test('name collision with an Output that is not ours: condition, never adopted', async (t) => {
  const ns = await c.newNamespace('collide')
  const o = new Objects(c.kc, ns)
  await userFlow(o)
  const theirs = await o.create('Output', 'logtap-x', { http: { endpoint: 'http://127.0.0.1:9/theirs' } })
  const ctl = await runController(c, ns)
  t.teardown(() => ctl.stop())
  await o.create('LogTap', 'x', tapSpec('app'))
  const cond = await waitFor('NameConflict', async () => {
    const f = await o.condition('x', 'OutputReady')
    return f?.reason === 'NameConflict' ? f : undefined
  })
  t.match(cond.message, /not managed by this LogTap/)
  await sleep(500)
  const now = await o.get('Output', 'logtap-x')
  t.equal(now?.metadata.resourceVersion, theirs.metadata.resourceVersion, 'their Output was not modified')
  t.same(await o.refs('Flow', 'app'), ['es'], 'no ref to an object that is not ours')
  await o.delete('LogTap', 'x')
  await waitFor('tap gone', async () => !(await o.tap('x')))
  t.ok(await o.get('Output', 'logtap-x'), 'their Output survives the tap')
})

t.test(
  'session tap: Lease stops renewing → tap and everything it made gone within duration + 10 s',
  async (t) => {
    const ns = await c.newNamespace('session')
    const o = new Objects(c.kc, ns)
    const inv = new InvariantWatcher(c.kc, ns)
    await inv.start()
    await userFlow(o)
    const ctl = await runController(c, ns)
    t.teardown(() => ctl.stop())
    const tap = await o.create('LogTap', 's', tapSpec('app', { lifetime: 'session' }))
    const custom = c.kc.makeApiClient(CustomObjectsApi)
    const duration = 3
    const lease = (renew: number) => ({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: 's',
        namespace: ns,
        ownerReferences: [
          { apiVersion: KINDS.LogTap.apiVersion, kind: 'LogTap', name: 's', uid: tap.metadata.uid },
        ],
      },
      spec: { holderIdentity: 'k8stail', leaseDurationSeconds: duration, renewTime: micro(renew) },
    })
    await custom.createNamespacedCustomObject({ ...LEASES, namespace: ns, body: lease(Date.now()) })
    await waitFor('attached', async () => (await o.condition('s', 'Attached'))?.status === 'True')
    // Renew for a while: the tap must survive well past one lease duration.
    for (let i = 0; i < 5; i++) {
      await sleep(1000)
      await custom.patchNamespacedCustomObject(
        { ...LEASES, namespace: ns, name: 's', body: { spec: { renewTime: micro(Date.now()) } } },
        setHeaderOptions('Content-Type', 'application/merge-patch+json'),
      )
    }
    t.ok(await o.tap('s'), 'alive while renewed')
    const lastRenew = Date.now()
    await waitFor(
      'tap and output gone',
      async () => !(await o.tap('s')) && !(await o.get('Output', 'logtap-s')),
      20_000,
    )
    const took = (Date.now() - lastRenew) / 1000
    t.ok(took < duration + 10, `gone ${took.toFixed(1)} s after the last renewal (lease ${duration} s)`)
    t.ok(took > duration, 'not before the lease expired')
    t.same(await o.refs('Flow', 'app'), ['es'])
    await inv.stop()
    t.same(inv.violations, [])
  },
)

t.test('session tap whose Lease never appears is deleted after the start grace', async (t) => {
  const ns = await c.newNamespace('nolease')
  const o = new Objects(c.kc, ns)
  await userFlow(o)
  const ctl = await runController(c, ns, { sessionGraceMs: 2000 })
  t.teardown(() => ctl.stop())
  await o.create('LogTap', 'n', tapSpec('app', { lifetime: 'session' }))
  await waitFor('attached', async () => (await o.refs('Flow', 'app'))?.includes('logtap-n'))
  await waitFor('deleted', async () => !(await o.tap('n')) && !(await o.get('Output', 'logtap-n')), 15_000)
  t.same(await o.refs('Flow', 'app'), ['es'])
})

t.test('sweep: a ref removed by hand comes back; a dangling ref of ours is removed', async (t) => {
  const ns = await c.newNamespace('sweep')
  const o = new Objects(c.kc, ns)
  const inv = new InvariantWatcher(c.kc, ns)
  await inv.start()
  await userFlow(o)
  await o.create('Flow', 'broken', {
    match: [{ select: { labels: { a: 'b' } } }],
    localOutputRefs: ['es', 'logtap-ghost'],
  })
  const ctl = await runController(c, ns, { sweepIntervalMs: 500 })
  t.teardown(() => ctl.stop())
  await waitFor(
    'dangling ref removed',
    async () => JSON.stringify(await o.refs('Flow', 'broken')) === '["es"]',
  )
  await o.create('LogTap', 'r', tapSpec('app'))
  await waitFor('attached', async () => (await o.refs('Flow', 'app'))?.includes('logtap-r'))
  const custom = c.kc.makeApiClient(CustomObjectsApi)
  await custom.patchNamespacedCustomObject(
    {
      ...resourceOf('Flow'),
      namespace: ns,
      name: 'app',
      body: { spec: { localOutputRefs: ['es'] } },
    },
    setHeaderOptions('Content-Type', 'application/merge-patch+json'),
  )
  await waitFor('ref restored', async () => (await o.refs('Flow', 'app'))?.includes('logtap-r'))
  await inv.stop()
  // The checker itself must see a violation when there is one: the planted dangling ref.
  t.ok(
    inv.violations.length > 0 && inv.violations.every((v) => v.includes('logtap-ghost')),
    'only the planted dangling ref was ever seen',
  )
})

t.test('sweep: a dangling global ref of ours is removed in any namespace its Logging watches', async (t) => {
  const control = await c.newNamespace('sweep-global')
  const tenant = await c.newNamespace('sweep-tenant')
  const loggingRef = `sweep-${control}`
  await testLogging(t, c.kc, loggingRef, { controlNamespace: control, watchNamespaces: [tenant], loggingRef })
  const tenantObjects = new Objects(c.kc, tenant)
  const spec = (refs: string[], ref = loggingRef) => ({
    loggingRef: ref,
    match: [{ select: { labels: { a: 'b' } } }],
    globalOutputRefs: refs,
  })
  await tenantObjects.create('Flow', 'broken', spec(['shared', 'logtap-ghost']))
  // Its Logging takes ClusterOutputs from a namespace this controller does not watch: not judged.
  await tenantObjects.create('Flow', 'foreign', spec(['logtap-ghost'], `other-${control}`))
  const ctl = await runController(c, control, { sweepIntervalMs: 500 })
  t.teardown(() => ctl.stop())
  const globalRefs = async (name: string) =>
    (await tenantObjects.get('Flow', name))?.spec?.['globalOutputRefs']
  await waitFor(
    'dangling global ref removed',
    async () => JSON.stringify(await globalRefs('broken')) === '["shared"]',
  )
  t.same(await globalRefs('foreign'), ['logtap-ghost'], 'a flow of another Logging is left alone')
})

t.test('force-removed LogTap finalizer: the orphaned Output is cleaned up in the safe order', async (t) => {
  const ns = await c.newNamespace('force')
  const o = new Objects(c.kc, ns)
  const inv = new InvariantWatcher(c.kc, ns)
  await inv.start()
  await userFlow(o)
  let ctl = await runController(c, ns)
  await o.create('LogTap', 'f', tapSpec('app'))
  await waitFor('attached', async () => (await o.condition('f', 'Attached'))?.status === 'True')
  await ctl.stop()
  const custom = c.kc.makeApiClient(CustomObjectsApi)
  await custom.patchNamespacedCustomObject(
    {
      ...resourceOf('LogTap'),
      namespace: ns,
      name: 'f',
      body: { metadata: { finalizers: null } },
    },
    setHeaderOptions('Content-Type', 'application/merge-patch+json'),
  )
  await o.delete('LogTap', 'f')
  await waitFor('tap gone', async () => !(await o.tap('f')))
  // The garbage collector deletes the orphan; our finalizer holds it while the flow refers to it.
  await waitFor(
    'Output deleting',
    async () => (await o.get('Output', 'logtap-f'))?.metadata.deletionTimestamp,
    40_000,
  )
  t.ok((await o.refs('Flow', 'app'))?.includes('logtap-f'), 'ref still there, Output still there')
  ctl = await runController(c, ns)
  t.teardown(() => ctl.stop())
  await waitFor('cleaned up', async () => !(await o.get('Output', 'logtap-f')))
  t.same(await o.refs('Flow', 'app'), ['es'])
  await inv.stop()
  t.same(inv.violations, [])
})
