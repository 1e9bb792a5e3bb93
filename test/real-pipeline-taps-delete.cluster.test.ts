// log-socket in the real pipeline (see test/support/real-taps.ts), part 2: a mirror tap and a
// ClusterFlow tap whose ClusterOutput another namespace's Flow names, each accepted, rendered and
// delivering through real fluentd to k8stail, then deleted with the operator never reporting a
// missing output and the Logging rendering on.
import t from 'tap'
import { resourceOf } from '../api/kinds.ts'
import { flowSection } from '../local-cluster/real-pipeline/fluentd-config.ts'
import {
  accepted,
  getLoggingObject,
  renderedConfig,
  waitForStatus,
} from '../local-cluster/real-pipeline/logging.ts'
import { startLogSocket, writeTokenKubeconfig } from '../local-cluster/stack.ts'
import { k8stail, until } from './support/k8stail-user.ts'
import { realPipeline } from './support/real-pipeline.ts'
import { realTaps } from './support/real-taps.ts'

const rp = await realPipeline(['operator', 'fluentd'])
if (rp) {
  const ls = await startLogSocket(rp.cluster, { namespace: await rp.cluster.newNamespace('rp-taps') })
  t.teardown(() => ls.stop())
  const x = await realTaps(rp, {
    ls,
    kubeconfigFor: (token, dir) => writeTokenKubeconfig(rp.cluster, dir, token, 'viewer'),
  })
  const { kc, custom, ns, tenant, logging, live, inv, problems, viewer } = x

  t.test(
    'mirror: the copy is accepted, rendered without stdout, and delivers; deleting it leaves the Flow alone',
    async (t) => {
      const flowBefore = await getLoggingObject(kc, 'Flow', ns, 'app')
      const before = live.reloads
      await x.createTap('m', { flow: { kind: 'Flow', name: 'app' }, mode: 'mirror', lifetime: 'persistent' })
      const ready = await until('tap m Ready', 60_000, async () => {
        const r = await x.condition('m', 'Ready')
        return r?.status === 'True' ? r : undefined
      })
      t.ok(ready)
      t.match(await x.condition('m', 'Attached'), { message: /stdout filters are left out of the copy/ })
      t.match((await getLoggingObject(kc, 'Flow', ns, 'logtap-m'))?.status, { active: true })
      t.notOk((await getLoggingObject(kc, 'Flow', ns, 'logtap-m'))?.status?.problems?.length)
      const id = `flow:${ns}:logtap-m:output:${ns}:logtap-m`
      const conf = await x.rendered((s) => s.includes(id), `@id ${id}`)
      const copy = flowSection(conf, `flow:${ns}:logtap-m`)
      t.same(
        copy?.filters.map((f) => f.params.get('@type')),
        ['record_transformer'],
        'the rendered copy runs record_transformer, not stdout',
      )
      t.same(
        flowSection(conf, `flow:${ns}:app`)?.filters.map((f) => f.params.get('@type')),
        ['stdout', 'record_transformer'],
        "the Flow's own filters are untouched",
      )
      await x.fluentdRuns(id, true, before)

      const run = k8stail(viewer, ns, ['-o', 'raw', '--count', '4', `${ns}/app`])
      t.teardown(() => run.kill('SIGKILL'))
      const { printed } = await x.streamed(run, 'mirror', 4)
      t.equal(await run.exit, 0, '--count reached')
      t.match(run.err(), new RegExp(`attaching to persistent LogTap ${ns}/m`))
      t.ok(
        printed.every((l) => JSON.parse(l).tapped_by === 'app'),
        'the copied filter ran on the tap',
      )

      const reloads = live.reloads
      await x.deleteTap('m')
      await x.goneAndRendered(t, 'm', 'Output', [id], reloads)
      const flowAfter = await getLoggingObject(kc, 'Flow', ns, 'app')
      t.same(flowAfter?.spec, flowBefore?.spec, 'the Flow was never changed')
      t.equal(await getLoggingObject(kc, 'Flow', ns, 'logtap-m'), undefined, 'the copy is gone')
    },
  )

  t.test(
    "ClusterFlow tap named by another namespace's Flow: detached there first, the Logging never frozen",
    async (t) => {
      const before = live.reloads
      await x.createTap('c', { flow: { kind: 'ClusterFlow', name: 'all' }, lifetime: 'persistent' })
      await until('tap c Ready', 60_000, async () => (await x.condition('c', 'Ready'))?.status === 'True')
      t.match((await getLoggingObject(kc, 'ClusterOutput', ns, 'logtap-c'))?.status, { active: true })
      // Another team sends its Flow to the tap's ClusterOutput too.
      await custom.patchNamespacedCustomObject({
        ...resourceOf('Flow'),
        namespace: tenant,
        name: 'tenant',
        body: [{ op: 'add', path: '/spec/globalOutputRefs', value: ['logtap-c'] }],
      })
      const cid = `clusterflow:${ns}:all:clusteroutput:${ns}:logtap-c`
      const tid = `flow:${tenant}:tenant:clusteroutput:${ns}:logtap-c`
      await x.rendered((s) => s.includes(cid) && s.includes(tid), `${cid} and ${tid}`)
      await waitForStatus(kc, 'Flow', tenant, 'tenant', accepted, 'active and no problems')
      await x.fluentdRuns(cid, true, before)

      const run = k8stail(viewer, ns, ['-o', 'raw', '--count', '4', '--clusterflow', `${ns}/all`])
      t.teardown(() => run.kill('SIGKILL'))
      await x.streamed(run, 'cluster', 4)
      t.equal(await run.exit, 0, '--count reached')
      t.match(run.err(), new RegExp(`attaching to persistent LogTap ${ns}/c`))

      const reloads = live.reloads
      await x.deleteTap('c')
      await x.goneAndRendered(t, 'c', 'ClusterOutput', [cid, tid], reloads)
      const tenantFlow = await getLoggingObject(kc, 'Flow', tenant, 'tenant')
      t.same(
        tenantFlow?.spec?.['globalOutputRefs'] ?? [],
        [],
        "the tap's ref was taken off the tenant's Flow",
      )
      t.same(tenantFlow?.spec?.['localOutputRefs'], ['es'], "the tenant's own output is kept")
      await waitForStatus(kc, 'Flow', tenant, 'tenant', accepted, 'active and no problems')
      // Not frozen: a new Flow is rendered.
      await logging.create('Flow', tenant, 'after', { localOutputRefs: ['es'] })
      await x.rendered((s) => s.includes(`flow:${tenant}:after:`), 'the new Flow')
      t.same(inv.violations, [], 'no Flow referenced a missing output at any revision')
      t.same(problems.seen(), [], 'logging-operator never reported a missing output')
    },
  )

  t.test('finally: no Flow ever referenced a missing output', async (t) => {
    t.same(inv.violations, [])
    t.ok(inv.checks > 1, `checked at ${inv.checks} revisions`)
    t.same(problems.seen(), [])
    const conf = await renderedConfig(kc, logging)
    t.notMatch(conf ?? '', /logtap-/, 'no tap left in the rendered configuration')
  })
}
