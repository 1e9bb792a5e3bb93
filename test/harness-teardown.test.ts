// Starting and stopping a control plane leaves nothing behind: no process, no temp dir, no netns.
import { existsSync } from 'node:fs'
import t from 'tap'
import { startCluster } from './support/cluster.ts'
import { httpsRequest, isAlive, stopControlPlane } from './support/control-plane.ts'
import { netnsExists, removeTestHost } from './support/test-host.ts'

t.test('teardown removes every process, the work dir and the network namespace', async (t) => {
  const s = await startCluster()
  const pids = Object.values(s.controlPlane.pids)
  t.equal(pids.length, 3, 'etcd, kube-apiserver and kube-controller-manager were started')
  t.ok(pids.every(isAlive), 'all running')
  t.ok(netnsExists(s.testHost.netns), 'network namespace exists while running')
  const ca = (await import('node:fs')).readFileSync(s.controlPlane.caFile, 'utf8')
  const ready = await httpsRequest(`${s.controlPlane.server}/readyz`, {
    ca,
    token: s.controlPlane.adminToken,
  })
  t.equal(ready.status, 200)

  await stopControlPlane(s.controlPlane)
  removeTestHost(s.testHost)

  t.same(pids.filter(isAlive), [], 'no process left')
  t.notOk(existsSync(s.controlPlane.workDir), 'work dir removed')
  t.notOk(netnsExists(s.testHost.netns), 'network namespace removed')
})
