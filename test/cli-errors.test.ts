// Exit codes: every failure maps to the documented code and prints one line.
import t from 'tap'
import {
  ExitCodes,
  exitCodeFor,
  formatError,
  fromApiError,
  fromRefusal,
  K8stailError,
  refusalReason,
} from '../cli/errors.ts'

// What @kubernetes/client-node 2.x throws: an ApiException with code and a (string) Status body.
function apiException(code: number, message: string) {
  return Object.assign(new Error(`HTTP-Code: ${code}`), {
    code,
    body: JSON.stringify({ kind: 'Status', status: 'Failure', message, code }),
  })
}

t.test('Kubernetes API errors', async (t) => {
  const forbidden = fromApiError(
    apiException(403, 'logtaps.logsocket.dev is forbidden: User "bob" cannot create resource "logtaps"'),
    'creating LogTap default/x',
  )
  t.equal(exitCodeFor(forbidden), ExitCodes.Forbidden)
  t.equal(
    formatError(forbidden),
    'k8stail: creating LogTap default/x: forbidden: logtaps.logsocket.dev is forbidden: User "bob" cannot create resource "logtaps"',
  )
  t.equal(exitCodeFor(fromApiError(apiException(401, 'Unauthorized'), 'x')), ExitCodes.Forbidden)
  t.equal(exitCodeFor(fromApiError(apiException(404, 'not found'), 'x')), ExitCodes.NotFound)
  t.equal(exitCodeFor(fromApiError(apiException(500, 'etcd down'), 'x')), ExitCodes.Connection)
  t.equal(
    exitCodeFor(fromApiError(new Error('connect ECONNREFUSED 127.0.0.1:6443'), 'x')),
    ExitCodes.Connection,
  )
  t.equal(exitCodeFor(new Error('anything else')), ExitCodes.Connection)
})

t.test('refused WebSocket upgrades show the status and the reason', async (t) => {
  const relay403 = fromRefusal(
    403,
    '{"error":"forbidden","reason":"system:serviceaccount:a:b may not get logtaps"}',
  )
  t.equal(relay403.exitCode, ExitCodes.Forbidden)
  t.equal(
    relay403.message,
    'the relay refused the stream: HTTP 403 forbidden: system:serviceaccount:a:b may not get logtaps',
  )
  t.equal(fromRefusal(404, '{"error":"not-found","reason":"no LogTap a/b"}').exitCode, ExitCodes.NotFound)

  // What the API server answers itself (a Status, with both message and reason).
  const status = (code: number, reason: string, message: string, kind?: string) =>
    JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      message,
      reason,
      code,
      details: { name: 'log-socket', kind },
    })
  const noService = fromRefusal(404, status(404, 'NotFound', 'services "log-socket" not found', 'services'))
  t.equal(noService.exitCode, ExitCodes.NotFound)
  t.equal(
    noService.message,
    'relay not installed? the API server says HTTP 404 services "log-socket" not found (see -n/--namespace, -s/--service)',
  )
  const noProxy = fromRefusal(
    403,
    status(
      403,
      'Forbidden',
      'services "log-socket" is forbidden: User "bob" cannot get resource "services/proxy"',
      'services',
    ),
  )
  t.equal(noProxy.exitCode, ExitCodes.Forbidden)
  t.equal(
    noProxy.message,
    'the API server refused the stream: HTTP 403 services "log-socket" is forbidden: User "bob" cannot get resource "services/proxy"',
  )
  const noEndpoints = fromRefusal(
    503,
    status(503, 'ServiceUnavailable', 'no endpoints available for service "log-socket"'),
  )
  t.equal(noEndpoints.exitCode, ExitCodes.Connection)
  t.match(noEndpoints.message, /HTTP 503 no endpoints available/)
  t.equal(fromRefusal(502, 'Bad Gateway\n').message, 'the relay refused the stream: HTTP 502 Bad Gateway')
  t.equal(refusalReason(''), '')
  t.equal(refusalReason('line one\nline two'), 'line one line two')
})

t.test('one line, no stack', async (t) => {
  t.equal(formatError(new K8stailError('a\n  b', ExitCodes.TapFailed)), 'k8stail: a b')
  t.equal(formatError('plain'), 'k8stail: plain')
  t.same(Object.values(ExitCodes), [0, 1, 2, 3, 4, 5])
})
