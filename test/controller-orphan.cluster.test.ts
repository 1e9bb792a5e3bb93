// `kubectl delete logtap X --cascade=orphan`, with the real kubectl against the real control plane:
// the garbage collector strips the owner references of the tap's Output, mirror flow and Secret.
// The controller must still recognise them (by their labels) and release them in the safe order,
// whether it runs during the delete or is down until after it, and a new tap X must work.
import { CoreV1Api } from '@kubernetes/client-node'
import t, { type Test } from 'tap'
import { getCluster } from '../local-cluster/cluster.ts'
import { InvariantWatcher, Objects, runController, tapSpec, userFlow, waitFor } from './controller-helpers.ts'

const c = await getCluster()
const core = c.kc.makeApiClient(CoreV1Api)

const secretOf = (ns: string, name: string) =>
  core.readNamespacedSecret({ namespace: ns, name }).catch(() => undefined)

async function orphanDelete(ns: string, name: string) {
  const r = await c.kubectl(['delete', 'logtap', name, '-n', ns, '--cascade=orphan', '--wait=false'])
  if (r.code !== 0) throw new Error(`kubectl delete failed: ${r.stderr}`)
}

async function nothingLeft(t: Test, o: Objects, mode: string) {
  await waitFor(
    'tap, Output and mirror gone',
    async () =>
      !(await o.tap('x')) && !(await o.get('Output', 'logtap-x')) && !(await o.get('Flow', 'logtap-x')),
    30_000,
  )
  t.same(await o.refs('Flow', 'app'), ['es'], `${mode}: no ref left`)
  await waitFor('the Secret gone too', async () => !(await secretOf(o.ns, 'logtap-x')), 30_000)
}

for (const mode of ['inject', 'mirror'] as const) {
  t.test(`${mode}: --cascade=orphan while the controller runs leaks nothing, 4 times in a row`, async (t) => {
    const ns = await c.newNamespace(`orphan-${mode}`)
    const o = new Objects(c.kc, ns)
    const inv = new InvariantWatcher(c.kc, ns)
    await inv.start()
    await userFlow(o)
    const ctl = await runController(c, ns)
    t.teardown(() => ctl.stop())
    for (let i = 0; i < 4; i++) {
      await o.create('LogTap', 'x', tapSpec('app', { mode }))
      await waitFor('attached', async () => (await o.condition('x', 'Attached'))?.status === 'True')
      await orphanDelete(ns, 'x')
      await nothingLeft(t, o, mode)
    }
    await inv.stop()
    t.same(inv.violations, [], 'no flow ever referenced a missing output')
  })
}

t.test('--cascade=orphan while the controller is down: released when it is back', async (t) => {
  const ns = await c.newNamespace('orphan-down')
  const o = new Objects(c.kc, ns)
  const inv = new InvariantWatcher(c.kc, ns)
  await inv.start()
  await userFlow(o)
  const first = await runController(c, ns)
  await o.create('LogTap', 'x', tapSpec('app', { mode: 'mirror' }))
  await waitFor('attached', async () => (await o.condition('x', 'Attached'))?.status === 'True')
  await first.stop()
  await orphanDelete(ns, 'x')
  // The garbage collector has done its part: no owner reference left on what the tap made.
  await waitFor(
    'owner references stripped',
    async () => {
      const [out, mirror, secret] = await Promise.all([
        o.get('Output', 'logtap-x'),
        o.get('Flow', 'logtap-x'),
        secretOf(ns, 'logtap-x'),
      ])
      return (
        !out?.metadata.ownerReferences?.length &&
        !mirror?.metadata.ownerReferences?.length &&
        !secret?.metadata?.ownerReferences?.some((r) => r.kind === 'LogTap')
      )
    },
    40_000,
  )
  t.ok(await o.tap('x'), 'the tap waits for the controller (its finalizer)')
  t.ok(await o.get('Output', 'logtap-x'), 'the Output is still there, and still fed by the mirror')
  const ctl = await runController(c, ns)
  t.teardown(() => ctl.stop())
  await nothingLeft(t, o, 'mirror')
  // A new tap of the same name is not blocked by anything the old one left.
  await o.create('LogTap', 'x', tapSpec('app'))
  await waitFor('the new tap attached', async () => (await o.condition('x', 'Attached'))?.status === 'True')
  t.equal((await o.condition('x', 'OutputReady'))?.status, 'True')
  await inv.stop()
  t.same(inv.violations, [])
})
