// Test helper: starts a control plane (with `--operator`, the real logging-operator too), prints its
// state as one JSON line, and holds it until told to stop. SIGTERM, SIGINT and SIGHUP tear it all
// down (processes, work dirs, network namespace, registration); SIGKILL leaves it for the next
// run's reaper (harness-teardown.cluster.test.ts proves both).
import { type ClusterState, startCluster, stopClusterSync, view } from './cluster.ts'
import { startPipeline } from './real-pipeline/pipeline.ts'

let state: ClusterState | undefined
let starting = true
let exitCode: number | undefined

function stop(code: number): void {
  if (state) stopClusterSync(state)
  process.exit(code)
}

for (const [sig, code] of [
  ['SIGTERM', 143],
  ['SIGINT', 130],
  ['SIGHUP', 129],
] as const) {
  // While starting, what is being started is not all in `state` yet: stop once it is.
  process.on(sig, () => {
    if (!starting) stop(code)
    exitCode ??= code
  })
}

state = await startCluster()
if (process.argv.includes('--operator')) state.pipeline = await startPipeline(view(state), state.registration)
starting = false
if (exitCode !== undefined) stop(exitCode)
process.stdout.write(`${JSON.stringify(state)}\n`)
setInterval(() => {}, 60_000)
