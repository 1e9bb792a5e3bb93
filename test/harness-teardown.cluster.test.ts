// Starting and stopping a control plane leaves nothing behind: no process, no temp dir, no netns.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { type ClusterState, startCluster, stopCluster } from '../local-cluster/cluster.ts'
import { httpsRequest, isAlive } from '../local-cluster/control-plane.ts'
import { reapStale } from '../local-cluster/run-registry.ts'
import { netnsExists } from '../local-cluster/test-host.ts'

const repoRoot = path.resolve(import.meta.dirname, '..')

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

  t.ok(s.registration && existsSync(s.registration), 'registered while running')
  await stopCluster(s)

  t.same(pids.filter(isAlive), [], 'no process left')
  t.notOk(existsSync(s.controlPlane.workDir), 'work dir removed')
  t.notOk(netnsExists(s.testHost.netns), 'network namespace removed')
  t.notOk(existsSync(s.registration!), 'registration removed')
})

t.test('a run killed before its teardown is reaped by the next one', async (t) => {
  const child = spawn(
    path.join(repoRoot, 'node_modules', '.bin', 'node'),
    ['local-cluster/hold-cluster.ts'],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  let out = ''
  child.stdout.setEncoding('utf8')
  const s = await new Promise<ClusterState>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!))
    })
    child.on('exit', (code) => reject(new Error(`holder exited with ${code} before starting`)))
  })
  child.kill('SIGKILL')
  await new Promise((r) => child.on('exit', r))
  const pids = Object.values(s.controlPlane.pids)
  t.ok(pids.every(isAlive), 'its owner died, its control plane did not')
  reapStale()
  const deadline = Date.now() + 10_000
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  t.same(pids.filter(isAlive), [], 'no process left')
  t.notOk(existsSync(s.controlPlane.workDir), 'work dir removed')
  t.notOk(netnsExists(s.testHost.netns), 'network namespace removed')
  t.notOk(existsSync(s.registration!), 'registration removed')
})
