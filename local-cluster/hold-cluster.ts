// Test helper: starts a control plane, prints its state as one JSON line, and waits to be killed
// (harness-teardown.cluster.test.ts kills it with SIGKILL to prove the next run reaps what it left).
import { startCluster } from './cluster.ts'

const state = await startCluster()
process.stdout.write(`${JSON.stringify(state)}\n`)
setInterval(() => {}, 60_000)
