// The gate of every test that needs the real logging-operator, fluentd or syslog-ng. Under
// `npm test` the run started the operator once (its state comes with the cluster's); a file run on
// its own starts a private one that dies with it. When a part cannot run here, the file says so
// loudly (a banner on stderr and a TAP skip with the reason); under CI=true that is a failure.
import t from 'tap'
import { CLUSTER_ENV, getCluster, type TestCluster } from '../../local-cluster/cluster.ts'
import { isAlive } from '../../local-cluster/control-plane.ts'
import {
  describeOperatorLog,
  type OperatorState,
  startOperator,
  stopOperatorSync,
} from '../../local-cluster/real-pipeline/operator.ts'
import { missingPart, type Part } from '../../local-cluster/real-pipeline/parts.ts'
import { missingBanner } from '../../local-cluster/real-pipeline/pipeline.ts'
import { registerProcess } from '../../local-cluster/run-registry.ts'

export interface RealPipeline {
  cluster: TestCluster
  operator?: OperatorState // present when 'operator' was asked for
}

// Resolves with the parts, or undefined after reporting why the file's tests do not run.
export async function realPipeline(needs: Part[]): Promise<RealPipeline | undefined> {
  const ci = process.env.CI === 'true'
  const missing: Partial<Record<Part, string>> = {}
  for (const part of needs) {
    if (part === 'operator' && process.env[CLUSTER_ENV]) continue // the run says (below)
    const why = missingPart(part)
    if (why) missing[part] = why
  }
  // On its own, a file with parts missing skips before it starts a private cluster for nothing.
  let cluster: TestCluster | undefined
  let operator: OperatorState | undefined
  if (!Object.keys(missing).length) {
    cluster = await getCluster()
    const run = cluster.pipeline
    if (needs.includes('operator')) {
      if (run) {
        if (run.operator && isAlive(run.operator.pid)) operator = run.operator
        else missing.operator = run.missing.operator ?? 'the logging-operator this run started has died'
      } else {
        const why = missingPart('operator')
        if (why) missing.operator = why
        else operator = await privateOperator(cluster)
      }
    }
  }
  const banner = missingBanner({ missing }, ci)
  if (!banner.length && cluster) {
    if (operator) {
      const op = operator
      t.teardown(() => {
        if (!isAlive(op.pid))
          t.comment(`the logging-operator died during this file\n${describeOperatorLog(op)}`)
      })
    }
    return { cluster, ...(operator ? { operator } : {}) }
  }
  process.stderr.write(`\n${banner.join('\n')}\n\n`)
  const reason = Object.entries(missing)
    .map(([part, why]) => `${part}: ${why.split('\n')[0]}`)
    .join('; ')
  if (ci) t.fail(`the real pipeline is required under CI=true: ${reason}`)
  else t.plan(0, `real pipeline missing: ${reason}`)
  return undefined
}

// For a file run on its own: an operator against its private control plane, gone with the process.
async function privateOperator(c: TestCluster): Promise<OperatorState> {
  const op = await startOperator({
    kc: c.kc,
    server: c.server,
    caFile: c.caFile,
    kubectl: c.kubectl,
    ...(c.loggingCrds ? { loggingCrds: c.loggingCrds } : {}),
    onStarted: (s) => {
      registerProcess(c.registration, {
        name: 'logging-operator',
        pid: s.pid,
        binary: s.manager,
        workDir: s.workDir,
      })
      process.on('exit', () => stopOperatorSync(s))
    },
  })
  return op
}

// For a test that checks the real parts only in passing (harness tests): says loudly that this
// part of it was skipped and why, and fails under CI=true.
export function announceMissing(
  tt: { fail(msg: string): void; comment(msg: string): void },
  why: string,
): void {
  const ci = process.env.CI === 'true'
  process.stderr.write(`\n${missingBanner({ missing: { operator: why } }, ci).join('\n')}\n\n`)
  if (ci) tt.fail(`the real pipeline is required under CI=true: ${why}`)
  else tt.comment(`SKIPPED (real pipeline missing): ${why}`)
}
