// Waiting for a tap to become Ready. Activating an output means a fluentd reload by
// logging-operator, which can take minutes: say what is happening (from the LogTap's conditions)
// and for how long, as a spinner line on a terminal or as plain lines otherwise, and fail with
// the controller's reason when the tap cannot work.
import { setTimeout as sleep } from 'node:timers/promises'
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node'
import { Conditions, GROUP, type LogTap, PLURAL, VERSION } from '../api/logtap.ts'
import { apiStatusCode, fromApiError, notFoundError, tapFailedError } from './errors.ts'

export type TapState =
  | { state: 'waiting'; text: string }
  | { state: 'ready'; text: string }
  | { state: 'not-found'; text: string } // the tapped flow does not exist
  | { state: 'failed'; text: string }

// Reasons are the controller's; a False condition whose reason says failure is final, anything
// else (WaitingForReload, Pending, ...) is progress.
const FAILURE_REASON = /(fail|invalid|error|forbidden|denied|conflict|notfound|missing|unsupported)/i

// Waiting for logging-operator (Accepted): its message is the line, as the controller wrote it
// ("There is no Logging: …", "logging-operator has not accepted … is logging-operator running?",
// "logging-operator reports on …: <its problems>").
const OPERATOR_REASONS = new Set([
  'NoLogging',
  'NoMatchingLogging',
  'NamespaceNotWatched',
  'LoggingOperatorNotResponding',
  'OperatorProblems',
])

export function describeTap(tap: LogTap): TapState {
  if (tap.metadata.deletionTimestamp) return { state: 'failed', text: 'the tap is being deleted' }
  const conditions = tap.status?.conditions ?? []
  const get = (type: string) => conditions.find((c) => c.type === type)
  const ready = get(Conditions.Ready)
  if (ready?.status === 'True') return { state: 'ready', text: ready.message || 'ready' }
  const flow = get(Conditions.FlowFound)
  if (flow?.status === 'False') {
    // FlowNotFound: the controller would wait for the flow; a user at a terminal wants to know now.
    const text = `${flow.reason}${flow.message ? `: ${flow.message}` : ''}`
    return flow.reason === 'FlowNotFound'
      ? { state: 'not-found', text }
      : { state: 'failed', text: `FlowFound ${text}` }
  }
  const failed = conditions.find((c) => c.status === 'False' && FAILURE_REASON.test(c.reason))
  if (failed)
    return {
      state: 'failed',
      text: `${failed.type} ${failed.reason}${failed.message ? `: ${failed.message}` : ''}`,
    }
  // The most telling condition that is not yet True, in pipeline order.
  for (const type of [
    Conditions.FlowFound,
    Conditions.OutputReady,
    Conditions.Attached,
    Conditions.Accepted,
    Conditions.Ready,
  ]) {
    const c = get(type)
    if (c && c.status !== 'True') {
      if (OPERATOR_REASONS.has(c.reason) && c.message) return { state: 'waiting', text: c.message }
      return { state: 'waiting', text: `${c.reason}${c.message ? `: ${c.message}` : ''}` }
    }
  }
  if (conditions.length === 0)
    return { state: 'waiting', text: 'waiting for the log-socket controller to pick up the tap' }
  return { state: 'waiting', text: 'activating' }
}

export function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000)
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']

export interface WaitDeps {
  kc: KubeConfig
  stderr: { write(s: string): unknown }
  isTTY: boolean
  signal: AbortSignal
  pollMs?: number
  now?: () => number
}

// Resolves once Ready; throws (not found / tap failed / API error); returns false when aborted.
export async function waitForReady(namespace: string, name: string, d: WaitDeps): Promise<boolean> {
  const api = d.kc.makeApiClient(CustomObjectsApi)
  const now = d.now ?? Date.now
  const started = now()
  const pollMs = d.pollMs ?? 1000
  let current: TapState = describeTap({ metadata: {}, spec: {} } as LogTap)
  let lastPrinted = ''
  let lastPrintedAt = 0
  let frame = 0
  const render = () => {
    const line = `${current.text} (${formatElapsed(now() - started)})`
    if (d.isTTY) d.stderr.write(`\r\x1b[2K${SPINNER[frame++ % SPINNER.length]} ${namespace}/${name}: ${line}`)
    else if (current.text !== lastPrinted || now() - lastPrintedAt >= 30_000) {
      // Plain lines: on every change, and every 30s so a log shows it is still waiting.
      d.stderr.write(`k8stail: ${namespace}/${name}: ${line}\n`)
      lastPrinted = current.text
      lastPrintedAt = now()
    }
  }
  const spinner = d.isTTY ? setInterval(render, 100) : undefined
  let cleared = false
  const clearLine = () => {
    clearInterval(spinner)
    if (d.isTTY && !cleared) d.stderr.write('\r\x1b[2K')
    cleared = true
  }
  try {
    for (;;) {
      if (d.signal.aborted) return false
      let tap: LogTap
      try {
        tap = (await api.getNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          name,
        })) as LogTap
      } catch (err) {
        if (apiStatusCode(err) === 404)
          throw tapFailedError(`LogTap ${namespace}/${name} was deleted while waiting for it`)
        throw fromApiError(err, `reading LogTap ${namespace}/${name}`)
      }
      current = describeTap(tap)
      if (current.state === 'ready') {
        clearLine()
        d.stderr.write(
          `k8stail: ${namespace}/${name} ready after ${formatElapsed(now() - started)}; streaming\n`,
        )
        return true
      }
      if (current.state === 'not-found') throw notFoundError(`flow not found: ${current.text}`)
      if (current.state === 'failed') throw tapFailedError(`tap ${namespace}/${name} failed: ${current.text}`)
      render()
      try {
        await sleep(pollMs, undefined, { signal: d.signal })
      } catch {
        return false
      }
    }
  } finally {
    clearLine()
  }
}
