// The real pipeline of one local cluster: the logging-operator manager started once against it
// (registered with the run registry, so a killed run's manager is reaped by the next run), and a
// note of every real part that cannot run here and why, for the tests to skip loudly (or fail under
// CI=true) rather than pass without them.
import { registerProcess, unregisterProcess } from '../run-registry.ts'
import {
  type OperatorState,
  type StartOperatorOptions,
  startOperator,
  stopOperator,
  stopOperatorSync,
} from './operator.ts'
import { missingPart, type Part } from './parts.ts'

export interface PipelineState {
  operator?: OperatorState
  missing: Partial<Record<Part, string>> // part → why it cannot run here
}

const OPERATOR = 'logging-operator'

export async function startPipeline(
  c: Pick<StartOperatorOptions, 'kc' | 'server' | 'caFile' | 'kubectl' | 'loggingCrds'>,
  registration: string | undefined,
  log: (line: string) => void = () => {},
): Promise<PipelineState> {
  const state: PipelineState = { missing: {} }
  for (const part of ['fluentd', 'syslog-ng'] as const) {
    const why = missingPart(part)
    if (why) state.missing[part] = why
  }
  const why = missingPart('operator')
  if (why) {
    state.missing.operator = why
    return state
  }
  try {
    state.operator = await startOperator({
      kc: c.kc,
      server: c.server,
      caFile: c.caFile,
      kubectl: c.kubectl,
      ...(c.loggingCrds ? { loggingCrds: c.loggingCrds } : {}),
      log,
      onStarted: (op) =>
        registerProcess(registration, {
          name: OPERATOR,
          pid: op.pid,
          binary: op.manager,
          workDir: op.workDir,
        }),
    })
  } catch (err) {
    unregisterProcess(registration, OPERATOR)
    state.missing.operator = (err as Error).message
  }
  return state
}

export async function stopPipeline(p: PipelineState, registration: string | undefined): Promise<void> {
  if (p.operator) await stopOperator(p.operator)
  unregisterProcess(registration, OPERATOR)
}

export function stopPipelineSync(p: PipelineState, registration: string | undefined): void {
  if (p.operator) stopOperatorSync(p.operator)
  unregisterProcess(registration, OPERATOR)
}

// The lines of the banner a run prints when parts are missing (empty when all are here).
export function missingBanner(p: PipelineState, ci: boolean): string[] {
  const entries = Object.entries(p.missing)
  if (!entries.length) return []
  const rule = '='.repeat(78)
  return [
    rule,
    ci
      ? 'REAL PIPELINE MISSING under CI=true: the tests that need it FAIL'
      : 'REAL PIPELINE MISSING: the tests that need it are SKIPPED (CI=true would fail them)',
    ...entries.map(([part, why]) => `  ${part}: ${why.split('\n')[0]}`),
    'See README "Set-up" (../shared/real-pipeline beside the repository, or LOG_SOCKET_REAL_PIPELINE).',
    rule,
  ]
}
