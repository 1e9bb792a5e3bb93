// The controller killed before each step of creation and deletion, then restarted, converges with
// no dangling ref and no orphan; and two replicas with leader election never lead at once.
import { CoreV1Api } from '@kubernetes/client-node'
import t, { type Test } from 'tap'
import type { Action } from '../controller/reconciler/desired/plan.ts'
import { getCluster } from '../local-cluster/cluster.ts'
import {
  InvariantWatcher,
  Objects,
  runController,
  sleep,
  tapSpec,
  userFlow,
  waitFor,
} from './controller-helpers.ts'

const c = await getCluster()
const core = c.kc.makeApiClient(CoreV1Api)

// Runs a controller that "dies" right before the first step of type `step`: from then on the
// hook throws (nothing further happens), and it is stopped like a killed process.
async function runUntilCrash(ns: string, step: Action['type'], trigger: () => Promise<void>) {
  let crashed = false
  const ctl = await runController(c, ns, {
    beforeAction: (_key, a) => {
      if (crashed || a.type === step) {
        crashed = true
        throw new Error(`simulated crash before ${step}`)
      }
    },
  })
  await trigger()
  await waitFor(`crash before ${step}`, async () => crashed)
  await ctl.stop()
}

// What the world must look like right after a crash before `step`: proof the kill hit mid-way.
async function assertMidway(t: Test, o: Objects, step: Action['type']) {
  const [tap, out, mirror, refs, secret] = await Promise.all([
    o.tap('k'),
    o.get('Output', 'logtap-k'),
    o.get('Flow', 'logtap-k'),
    o.refs('Flow', 'app'),
    core.readNamespacedSecret({ namespace: o.ns, name: 'logtap-k' }).catch(() => undefined),
  ])
  const ref = refs?.includes('logtap-k')
  const mid: Record<string, boolean> = {
    AddTapFinalizer: !tap?.metadata.finalizers?.length && !out,
    ApplySecret: !secret && !out && !ref,
    ApplyOutput: !!secret && !out,
    Attach: !!out && !!secret && !ref,
    ApplyMirrorFlow: !!out && !!secret && !mirror,
    Detach: !!tap?.metadata.deletionTimestamp && !!ref && !!out,
    DeleteMirrorFlow: !!tap?.metadata.deletionTimestamp && !!mirror && !!out,
    ReleaseOutput: !ref && !mirror && !!out?.metadata.finalizers?.length,
    DeleteOutput: !ref && !!out && !out.metadata.finalizers?.length,
    RemoveTapFinalizer: !!tap?.metadata.finalizers?.length && !out,
  }
  t.ok(mid[step], `crashed mid-way before ${step}`)
}

const creationSteps = {
  inject: ['AddTapFinalizer', 'ApplySecret', 'ApplyOutput', 'Attach'],
  mirror: ['ApplySecret', 'ApplyMirrorFlow'],
} as const
for (const mode of ['inject', 'mirror'] as const) {
  for (const step of creationSteps[mode]) {
    t.test(`${mode}: killed before ${step} while creating, restarted: converges`, async (t) => {
      const ns = await c.newNamespace(`crc-${mode}-${step.toLowerCase()}`)
      const o = new Objects(c.kc, ns)
      const inv = new InvariantWatcher(c.kc, ns)
      await inv.start()
      await userFlow(o)
      await runUntilCrash(ns, step, () => o.create('LogTap', 'k', tapSpec('app', { mode })).then(() => {}))
      await assertMidway(t, o, step)
      const ctl = await runController(c, ns)
      t.teardown(() => ctl.stop())
      await waitFor('attached', async () => (await o.condition('k', 'Attached'))?.status === 'True')
      t.same(await o.refs('Flow', 'app'), mode === 'inject' ? ['es', 'logtap-k'] : ['es'])
      if (mode === 'mirror') t.ok(await o.get('Flow', 'logtap-k'), 'mirror flow in place')
      await inv.stop()
      t.same(inv.violations, [])
    })
  }
}

const deletionSteps = {
  inject: ['Detach', 'ReleaseOutput', 'DeleteOutput', 'RemoveTapFinalizer'],
  mirror: ['DeleteMirrorFlow', 'ReleaseOutput', 'DeleteOutput', 'RemoveTapFinalizer'],
} as const
for (const mode of ['inject', 'mirror'] as const) {
  for (const step of deletionSteps[mode]) {
    t.test(`${mode}: killed before ${step} while deleting, restarted: converges`, async (t) => {
      const ns = await c.newNamespace(`crd-${mode}-${step.toLowerCase()}`)
      const o = new Objects(c.kc, ns)
      const inv = new InvariantWatcher(c.kc, ns)
      await inv.start()
      await userFlow(o)
      const first = await runController(c, ns)
      await o.create('LogTap', 'k', tapSpec('app', { mode }))
      await waitFor('attached', async () => (await o.condition('k', 'Attached'))?.status === 'True')
      await first.stop()
      await runUntilCrash(ns, step, () => o.delete('LogTap', 'k'))
      await assertMidway(t, o, step)
      const ctl = await runController(c, ns)
      t.teardown(() => ctl.stop())
      await waitFor('all gone', async () => {
        const left = await Promise.all([o.tap('k'), o.get('Output', 'logtap-k'), o.get('Flow', 'logtap-k')])
        return left.every((x) => x === undefined)
      })
      t.same(await o.refs('Flow', 'app'), ['es'], 'no ref left')
      await inv.stop()
      t.same(inv.violations, [])
    })
  }
}

t.test('leader election: one leader at a time, the standby takes over', async (t) => {
  const ns = await c.newNamespace('leader')
  const o = new Objects(c.kc, ns)
  await userFlow(o)
  const le = (identity: string) => ({ namespace: ns, identity, leaseDurationSeconds: 4, retryPeriodMs: 200 })
  const a = await runController(c, ns, { leaderElection: le('a') })
  const b = await runController(c, ns, { leaderElection: le('b') })
  let both = 0
  let stopWatch = false
  const watcher = (async () => {
    while (!stopWatch) {
      if (a.isLeader() && b.isLeader()) both++
      await sleep(20)
    }
  })()
  const first = await waitFor('a leader', async () => (a.isLeader() ? a : b.isLeader() ? b : undefined))
  const second = first === a ? b : a
  t.notOk(second.isLeader())
  await o.create('LogTap', 'one', tapSpec('app'))
  await waitFor('one attached', async () => (await o.condition('one', 'Attached'))?.status === 'True')
  await first.stop()
  await waitFor('standby leads', async () => second.isLeader(), 30_000)
  t.ok(second.isLeader(), 'the standby took over')
  await o.create('LogTap', 'two', tapSpec('app'))
  await waitFor('two attached', async () => (await o.condition('two', 'Attached'))?.status === 'True')
  stopWatch = true
  await watcher
  await second.stop()
  t.equal(both, 0, 'never two leaders at once')
})
