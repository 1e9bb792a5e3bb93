// Starting and stopping a control plane leaves nothing behind: no process, no temp dir, no netns.
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { type ClusterState, startCluster, stopCluster } from '../local-cluster/cluster.ts'
import { httpsRequest, isAlive } from '../local-cluster/control-plane.ts'
import { reapStale } from '../local-cluster/run-registry.ts'
import { netnsExists } from '../local-cluster/test-host.ts'
import { announceMissing } from './support/real-pipeline.ts'

const repoRoot = path.resolve(import.meta.dirname, '..')

const smallCrds = { LOG_SOCKET_LOGGING_CRDS: path.join(repoRoot, 'no-such-folder') }
// The holders below start at once, the one with the operator (and its large CRDs) is slow.
const holders = [hold({ operator: false }), hold({ operator: true })]
for (const h of holders) h.catch(() => {}) // reported by the test that awaits it

t.test('teardown removes every process, the work dir and the network namespace', async (t) => {
  // This one needs no logging-operator kinds: the small CRDs of our own start fastest.
  Object.assign(process.env, smallCrds)
  const s = await startCluster().finally(() => delete process.env.LOG_SOCKET_LOGGING_CRDS)
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

// Starts local-cluster/hold-cluster.ts (with the real logging-operator, or with our small CRDs and
// no operator) and resolves with its state.
async function hold(o: { operator: boolean }): Promise<{ child: ChildProcess; s: ClusterState }> {
  const child = spawn(
    path.join(repoRoot, 'node_modules', '.bin', 'node'),
    ['local-cluster/hold-cluster.ts', ...(o.operator ? ['--operator'] : [])],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...(o.operator ? {} : smallCrds) },
    },
  )
  // If this file dies first, the holder tears its cluster down (SIGTERM) instead of holding it forever.
  const orphan = () => child.kill('SIGTERM')
  process.on('exit', orphan)
  child.on('exit', () => process.removeListener('exit', orphan))
  let out = ''
  child.stdout!.setEncoding('utf8')
  const s = await new Promise<ClusterState>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!))
    })
    child.on('exit', (code) => reject(new Error(`holder exited with ${code} before starting`)))
  })
  return { child, s }
}

// Every process the holder started: the control plane's and, when it could run here, the operator.
function pidsOf(t: Test, s: ClusterState, operator: boolean): number[] {
  const op = s.pipeline?.operator
  if (operator && !op) announceMissing(t, s.pipeline?.missing.operator ?? 'the holder did not start it')
  return [...Object.values(s.controlPlane.pids), ...(op ? [op.pid] : [])]
}

function assertNothingLeft(t: Test, s: ClusterState, pids: number[]): void {
  t.same(pids.filter(isAlive), [], 'no process left')
  t.notOk(existsSync(s.controlPlane.workDir), 'work dir removed')
  const op = s.pipeline?.operator
  if (op) t.notOk(existsSync(op.workDir), "the operator's work dir removed")
  t.notOk(netnsExists(s.testHost.netns), 'network namespace removed')
  t.notOk(existsSync(s.registration!), 'registration removed')
}

async function gone(pids: number[]): Promise<void> {
  const deadline = Date.now() + 15_000
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
}

// SIGINT and SIGHUP take the same path in hold-cluster.ts, and so does the operator's teardown.
t.test('SIGTERM to a holder tears down everything it started', async (t) => {
  const { child, s } = await holders[0]!
  const pids = pidsOf(t, s, false)
  t.ok(pids.every(isAlive), 'all running')
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
  child.kill('SIGTERM')
  t.equal(await exited, 143, 'it exits with 128 + SIGTERM')
  await gone(pids)
  assertNothingLeft(t, s, pids)
})

t.test('a run killed before its teardown is reaped by the next one, its logging-operator too', async (t) => {
  const { child, s } = await holders[1]!
  const pids = pidsOf(t, s, true)
  child.kill('SIGKILL')
  await new Promise((r) => child.on('exit', r))
  t.ok(pids.every(isAlive), 'its owner died, its control plane and operator did not')
  reapStale()
  await gone(pids)
  assertNothingLeft(t, s, pids)
})
