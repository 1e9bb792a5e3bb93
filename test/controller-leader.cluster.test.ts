// Two controllers started with the same leader-election identity, the default (the hostname, so
// any two on one machine share it): exactly one leads, never both. Each writes its identity plus a
// random suffix to the Lease, so neither takes the other's renewals for its own.
import { hostname } from 'node:os'
import t from 'tap'
import { getCluster } from '../local-cluster/cluster.ts'
import { runController, sleep, waitFor } from './controller-helpers.ts'

const c = await getCluster()

t.test('two controllers with the same identity never both lead', async (t) => {
  const ns = await c.newNamespace('same-identity')
  const le = { namespace: ns, identity: hostname(), leaseDurationSeconds: 3, retryPeriodMs: 200 }
  const a = await runController(c, ns, { leaderElection: le })
  const b = await runController(c, ns, { leaderElection: le })
  t.teardown(async () => {
    await a.stop()
    await b.stop()
  })
  await waitFor('a leader', async () => a.isLeader() || b.isLeader())
  // Several lease durations: a follower that mistook the lease for its own would lead by now.
  let both = 0
  let samples = 0
  for (const end = Date.now() + 8000; Date.now() < end; samples++) {
    if (a.isLeader() && b.isLeader()) both++
    await sleep(50)
  }
  t.equal(both, 0, `never both leaders (${samples} samples over 8 s)`)
  t.equal(Number(a.isLeader()) + Number(b.isLeader()), 1, 'exactly one leads')
  // The leader goes: the other takes over.
  const [leader, other] = a.isLeader() ? [a, b] : [b, a]
  await leader.stop()
  await waitFor('the other leads', async () => other.isLeader(), 15_000)
  t.pass('the other took over')
})
