/**
 * Errors and exit codes of k8stail. Every failure the user can meet ends as ONE line on stderr
 * (`k8stail: <what went wrong>`) and one of these exit codes:
 *
 *   0  ok: stream ended normally, Ctrl-C / SIGTERM, --for or --count reached
 *   1  usage: bad argument or flag (`ns/name` expected, bad duration, bad regex, ...)
 *   2  connection: kubeconfig, credentials, TLS, network, relay unreachable
 *   3  not found: the flow, the tap, or the relay service does not exist
 *   4  forbidden: not allowed (creating LogTaps, proxying to the relay, or the relay refused the token)
 *   5  tap failed: the tap could not be activated, or was deleted while streaming
 */
import type { RefusalBody } from '../api/stream-protocol.ts'

export const ExitCodes = {
  Ok: 0,
  Usage: 1,
  Connection: 2,
  NotFound: 3,
  Forbidden: 4,
  TapFailed: 5,
} as const
export type ExitCode = (typeof ExitCodes)[keyof typeof ExitCodes]

// The same table for `k8stail --help`.
export const EXIT_CODES_HELP = [
  ['0', 'ok: stream ended, Ctrl-C/SIGTERM, --for or --count reached'],
  ['1', 'usage: bad argument or flag'],
  ['2', 'connection: kubeconfig, credentials, TLS, network, relay unreachable'],
  ['3', 'not found: flow, tap or relay service'],
  ['4', 'forbidden: RBAC denied, or the relay refused the token'],
  ['5', 'tap failed to activate, or was deleted while streaming'],
] as const

export class K8stailError extends Error {
  readonly exitCode: ExitCode
  constructor(message: string, exitCode: ExitCode, options?: ErrorOptions) {
    super(message, options)
    this.name = 'K8stailError'
    this.exitCode = exitCode
  }
}

export const usageError = (message: string) => new K8stailError(message, ExitCodes.Usage)
export const connectionError = (message: string, cause?: unknown) =>
  new K8stailError(message, ExitCodes.Connection, { cause })
export const notFoundError = (message: string) => new K8stailError(message, ExitCodes.NotFound)
export const forbiddenError = (message: string) => new K8stailError(message, ExitCodes.Forbidden)
export const tapFailedError = (message: string) => new K8stailError(message, ExitCodes.TapFailed)

// The status code of an @kubernetes/client-node ApiException (or anything shaped like it).
export function apiStatusCode(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'number')
    return err.code
  return undefined
}

// The Kubernetes Status message inside an ApiException body (a string or an object in client-node 2.x).
function apiMessage(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('body' in err)) return undefined
  let body: unknown = err.body
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body)
    } catch {
      return (body as string).trim().split('\n')[0] || undefined
    }
  }
  if (typeof body === 'object' && body !== null && 'message' in body && typeof body.message === 'string') {
    return body.message
  }
  return undefined
}

// Turns a failed Kubernetes API call into a K8stailError, `doing` saying what was attempted.
export function fromApiError(err: unknown, doing: string): K8stailError {
  if (err instanceof K8stailError) return err
  const code = apiStatusCode(err)
  const detail = apiMessage(err) ?? (err instanceof Error ? err.message : String(err))
  if (code === 401)
    return forbiddenError(`${doing}: unauthorized (kubeconfig credentials rejected): ${detail}`)
  if (code === 403) return forbiddenError(`${doing}: forbidden: ${detail}`)
  if (code === 404) return notFoundError(`${doing}: not found: ${detail}`)
  return connectionError(`${doing}: ${oneLine(detail)}`, err)
}

// A refused WebSocket upgrade: HTTP status plus the one-line reason of whoever refused. A Kubernetes
// Status body means the API server refused (no such Service, no services/proxy permission, no
// endpoints); a `{"error","reason"}` body is the relay's own answer.
export function fromRefusal(status: number, body: string): K8stailError {
  const parsed = parseJson(body)
  const reason = refusalReason(body)
  const http = `HTTP ${status}${reason ? ` ${reason}` : ''}`
  if (parsed?.kind === 'Status') {
    if (status === 404 && parsed.details?.kind === 'services') {
      return notFoundError(
        `relay not installed? the API server says ${http} (see -n/--namespace, -s/--service)`,
      )
    }
    const text = `the API server refused the stream: ${http}`
    if (status === 401 || status === 403) return forbiddenError(text)
    if (status === 404) return notFoundError(text)
    return connectionError(text)
  }
  const text = `the relay refused the stream: ${http}`
  if (status === 401 || status === 403) return forbiddenError(text)
  if (status === 404) return notFoundError(text)
  return connectionError(text)
}

// True when the body is the API server's own Status (not an answer relayed from the relay).
export function isKubernetesStatus(body: string): boolean {
  return parseJson(body)?.kind === 'Status'
}

interface RefusalJson extends Partial<RefusalBody> {
  kind?: string
  message?: string
  details?: { kind?: string }
}

function parseJson(body: string): RefusalJson | undefined {
  try {
    const v = JSON.parse(body) as unknown
    return typeof v === 'object' && v !== null ? (v as RefusalJson) : undefined
  } catch {
    return undefined
  }
}

// The relay answers `{"error","reason"}`; the API server a Status `{"message","reason"}`; else text.
export function refusalReason(body: string): string {
  const trimmed = body.trim()
  if (!trimmed) return ''
  const parsed = parseJson(trimmed)
  if (parsed) {
    if (typeof parsed.error === 'string' && typeof parsed.reason === 'string')
      return `${parsed.error}: ${parsed.reason}`
    if (typeof parsed.message === 'string') return oneLine(parsed.message)
    if (typeof parsed.reason === 'string') return parsed.reason
    if (typeof parsed.error === 'string') return parsed.error
  }
  return oneLine(trimmed).slice(0, 300)
}

export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof K8stailError) return err.exitCode
  return ExitCodes.Connection
}

// One line, no stack: what the user reads.
export function formatError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return `k8stail: ${oneLine(message)}`
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim()
}
