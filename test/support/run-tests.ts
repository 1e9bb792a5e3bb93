// `npm test`: one real control plane (and service-proxy test host) for the whole run, then tap,
// then teardown by recorded PID — also when tap fails or the run is interrupted.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import {
  CLUSTER_ENV,
  type ClusterState,
  startCluster,
  stopCluster,
  view,
} from '../../local-cluster/cluster.ts'
import { isAlive } from '../../local-cluster/control-plane.ts'
import { describeOperatorLog } from '../../local-cluster/real-pipeline/operator.ts'
import { missingBanner, startPipeline } from '../../local-cluster/real-pipeline/pipeline.ts'
import { netnsExists } from '../../local-cluster/test-host.ts'

const say = (line: string) => process.stderr.write(`[test-run] ${line}\n`)
const t0 = Date.now()
const repoRoot = path.resolve(import.meta.dirname, '..', '..')
const ci = process.env.CI === 'true'

let state: ClusterState | undefined
let tearingDown: Promise<void> | undefined

function teardown(): Promise<void> {
  tearingDown ??= (async () => {
    if (!state) return
    const s = state
    const t = Date.now()
    await stopCluster(s)
    const op = s.pipeline?.operator
    const left = [
      ...(op && isAlive(op.pid) ? [`logging-operator (${op.pid})`] : []),
      ...(op && existsSync(op.workDir) ? [`dir ${op.workDir}`] : []),
      ...Object.entries(s.controlPlane.pids)
        .filter(([, pid]) => isAlive(pid))
        .map(([n, pid]) => `process ${n} (${pid})`),
      ...(existsSync(s.controlPlane.workDir) ? [`dir ${s.controlPlane.workDir}`] : []),
      ...(netnsExists(s.testHost.netns) ? [`netns ${s.testHost.netns}`] : []),
      ...(s.registration && existsSync(s.registration) ? [`registration ${s.registration}`] : []),
    ]
    if (left.length) {
      say(`teardown left behind: ${left.join(', ')}`)
      process.exitCode = 1
    } else {
      say(`teardown clean in ${Date.now() - t} ms`)
    }
  })()
  return tearingDown
}

let tap: ReturnType<typeof spawn> | undefined
let tail = ''
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    say(`${sig}: stopping`)
    tap?.kill(sig)
    void teardown().then(() => process.exit(130))
  })
}

try {
  // Build (first run only) or find helm now, not inside a test's timeout.
  execFileSync('bash', [path.join(repoRoot, 'scripts', 'helm.sh')], {
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  say('starting the control plane')
  state = await startCluster(say)
  say(
    `control plane ${state.controlPlane.version} up at ${state.controlPlane.server} in ${Date.now() - t0} ms`,
  )
  const t1 = Date.now()
  state.pipeline = await startPipeline(view(state), state.registration, say)
  if (state.pipeline.operator) say(`logging-operator up in ${Date.now() - t1} ms`)
  const banner = missingBanner(state.pipeline, ci)
  for (const line of banner) say(line)
  const stateFile = path.join(state.controlPlane.workDir, 'cluster.json')
  writeFileSync(stateFile, JSON.stringify(state))
  const code = await new Promise<number>((resolve) => {
    tap = spawn(path.join(repoRoot, 'node_modules', '.bin', 'tap'), process.argv.slice(2), {
      stdio: ['inherit', 'pipe', 'inherit'],
      // node_modules/.bin first: tap's test processes must run on the project's Node 24, not the system's.
      env: {
        ...process.env,
        PATH: `${path.join(repoRoot, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH ?? ''}`,
        [CLUSTER_ENV]: stateFile,
      },
    })
    // Pass tap's report through, keeping its end for the plain summary line below.
    tap.stdout!.on('data', (d: Buffer) => {
      process.stdout.write(d)
      tail = (tail + d.toString('utf8')).slice(-4096)
    })
    tap.on('close', (c, sig) => resolve(c ?? (sig ? 128 : 1)))
  })
  const m = /# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?/.exec(tail)
  if (m) process.stdout.write(`tests: ${m[2]} passed, ${m[3] ?? 0} failed\n`)
  const op = state.pipeline.operator
  if (op && (code !== 0 || !isAlive(op.pid))) {
    if (!isAlive(op.pid)) say('the logging-operator died during the run')
    process.stderr.write(`${describeOperatorLog(op)}\n`)
  }
  for (const line of banner) say(line)
  process.exitCode = code || (ci && banner.length ? 1 : 0) || (op && !isAlive(op.pid) ? 1 : 0)
} catch (err) {
  say((err as Error).message)
  process.exitCode = 1
} finally {
  await teardown()
  say(`total ${((Date.now() - t0) / 1000).toFixed(1)} s`)
}
