// A clone of the repository without ../shared has no real pipeline: a real-pipeline test file then
// skips loudly (a banner on stderr, a TAP skip with the reason), and under CI=true it fails.
// Proven by running a real-pipeline test file against this run's cluster with the parts pointed
// at a folder that does not exist, both as `npm test` passes it on and as a file run on its own.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { CLUSTER_ENV, type ClusterState, getCluster } from '../local-cluster/cluster.ts'
import { PARTS_ENV } from '../local-cluster/real-pipeline/parts.ts'
import { startPipeline } from '../local-cluster/real-pipeline/pipeline.ts'

const repoRoot = path.resolve(import.meta.dirname, '..')
const c = await getCluster()
const dir = mkdtempSync(path.join(tmpdir(), 'log-socket-absent-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const missing = path.join(dir, 'no-such-folder')
const file = 'test/real-pipeline-fluentd.cluster.test.ts'

// The run's cluster state, with the real pipeline as `how` says.
function stateFile(how: 'run' | 'own', pipeline?: ClusterState['pipeline']): string {
  const state = JSON.parse(readFileSync(process.env[CLUSTER_ENV]!, 'utf8')) as ClusterState
  delete state.pipeline
  const f = path.join(dir, `cluster-${how}.json`)
  writeFileSync(f, JSON.stringify(pipeline ? { ...state, pipeline } : state))
  return f
}

function run(state: string, ci: boolean): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: Record<string, string> = {}
  // Not as a tap child (nor with tap's coverage hooks): as a plain process, like node test/x.test.ts.
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !/^(TAP|_TAPJS_|NODE_OPTIONS$|NODE_V8_COVERAGE$)/.test(k)) env[k] = v
  Object.assign(env, { [CLUSTER_ENV]: state, [PARTS_ENV]: missing, CI: ci ? 'true' : 'false' })
  return new Promise((resolve) => {
    const child = spawn(path.join(repoRoot, 'node_modules', '.bin', 'node'), [file], { cwd: repoRoot, env })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d
    })
    child.stderr.setEncoding('utf8').on('data', (d) => {
      stderr += d
    })
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }))
  })
}

// What `npm test` finds in such a clone: its own detection, with the parts pointed away.
const saved = process.env[PARTS_ENV]
process.env[PARTS_ENV] = missing
const found = await startPipeline(c, undefined)
if (saved === undefined) delete process.env[PARTS_ENV]
else process.env[PARTS_ENV] = saved

t.test('the run notes why the parts are missing and starts no operator', async (t) => {
  t.equal(found.operator, undefined)
  t.match(found.missing.operator, `${missing} does not exist`)
  t.match(found.missing.fluentd, `${missing} does not exist`)
})

// As npm test passes the run's findings on, and as a file run on its own (it checks by itself).
for (const how of ['run', 'own'] as const) {
  const what = how === 'run' ? 'under npm test' : 'run on its own'
  t.test(`${what}: a real-pipeline test file skips loudly`, async (t) => {
    const r = await run(stateFile(how, how === 'run' ? found : undefined), false)
    t.equal(r.code, 0, 'the file passes (as skipped: a plan of 0 with a reason)')
    t.match(r.stderr, 'REAL PIPELINE MISSING: the tests that need it are SKIPPED', 'a banner on stderr')
    t.match(r.stderr, `${missing} does not exist`, 'saying why')
    t.match(r.stdout, new RegExp(`^1\\.\\.0 # real pipeline missing: .*${missing} does not exist`, 'm'))
    t.notMatch(r.stdout, /^ok \d/m, 'no test ran')
  })
}

t.test('CI=true: a real-pipeline test file fails', async (t) => {
  const r = await run(stateFile('run', found), true)
  t.not(r.code, 0, 'the file fails')
  t.match(r.stderr, 'REAL PIPELINE MISSING under CI=true: the tests that need it FAIL')
  t.match(r.stdout, /^not ok 1 - the real pipeline is required under CI=true: .*does not exist/m)
})
