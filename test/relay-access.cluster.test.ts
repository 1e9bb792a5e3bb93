// Access ends when access ends, against the real API server: a stream open under a
// ServiceAccount token is closed, with a reason k8stail prints, when the RoleBinding that let it
// get the LogTap is deleted, when the ServiceAccount is deleted, and when the token expires.
import { createSign } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node'
import t, { type Test } from 'tap'
import { GROUP, PLURAL } from '../api/logtap.ts'
import { CloseCodes, type StreamMessage } from '../api/stream-protocol.ts'
import { K8stailError } from '../cli/errors.ts'
import { streamTap } from '../cli/relay-client.ts'
import { k8sAuth } from '../controller/relay/kube/auth.ts'
import type { TapInfo } from '../controller/relay/tap-directory.ts'
import { getCluster } from '../local-cluster/cluster.ts'
import { encodeChunk, generateRecords } from '../local-cluster/sample-records.ts'
import { connect, startTestRelay, type TestRelay } from './support/relay.ts'
import { until } from './support/until.ts'

const c = await getCluster()
const ns = await c.newNamespace('access')
const rbac = c.kc.makeApiClient(RbacAuthorizationV1Api)
const core = c.kc.makeApiClient(CoreV1Api)
await rbac.createNamespacedRole({
  namespace: ns,
  body: {
    metadata: { name: 'logtap-reader' },
    rules: [{ apiGroups: [GROUP], resources: [PLURAL], verbs: ['get'] }],
  },
})

// A ServiceAccount allowed to get LogTaps in the namespace, and its token.
async function viewer(name: string): Promise<string> {
  const token = await c.serviceAccountToken(ns, name)
  await rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'logtap-reader' },
      subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
    },
  })
  return token
}

// The relay checks open streams again every second; the API's answers are cached for 500 ms.
const r = await startTestRelay({
  auth: k8sAuth(c.kc, { positiveTtlMs: 500, negativeTtlMs: 500 }),
  limits: { accessRecheckMs: 1000 },
})
t.teardown(() => r.close())
// SubjectAccessReview judges RBAC alone: the LogTap need not exist in the API server.
const tap = r.taps.add(ns, 'tap')

// k8stail's own stream client on the tap: resolves or rejects as `k8stail ns/flow` would end.
function k8stail(token: string, tapInfo: TapInfo = tap) {
  const messages: StreamMessage[] = []
  const controller = new AbortController()
  const ended = streamTap(
    { url: new URL(r.streamUrl(tapInfo)), token, reconnect: true, signal: controller.signal },
    {
      record: (seq, bytes) =>
        messages.push({ type: 'record', seq, record: JSON.parse(bytes.toString('utf8')) }),
      message: (m) => messages.push(m),
      notice: () => {},
    },
  )
  ended.catch(() => {})
  return { messages, ended, abort: () => controller.abort() }
}

// A record reaches both clients (once both are connected): the stream is open and working.
async function flowing(relay: TestRelay, clients: { messages: StreamMessage[] }[]): Promise<void> {
  await until('every stream connected', () =>
    clients.every((x) => x.messages.some((m) => m.type === 'hello')),
  )
  const chunk = encodeChunk(
    generateRecords([{ namespace: ns, name: 'web', labels: { 'rbac/policy': 'allow' } }], 1),
  )
  await relay.post(tap, chunk.body, chunk.headers)
  await until('a record on every stream', () =>
    clients.every((x) => x.messages.some((m) => m.type === 'record')),
  )
}

// A raw WebSocket client and k8stail's, both on the tap with `token`, a record through both.
async function streaming(t: Test, token: string) {
  const raw = await connect(r.streamUrl(tap), token)
  const tail = k8stail(token)
  t.teardown(() => {
    tail.abort()
    raw.ws.terminate()
  })
  await flowing(r, [raw, tail])
  return { raw, tail }
}

// What a stream ended with: its error, or undefined when it ended without one.
const failure = (ended: Promise<unknown>) =>
  ended.then(
    () => undefined,
    (e: unknown) => e,
  )

t.test('deleting the RoleBinding closes the open stream: 4003 and a reason k8stail prints', async (t) => {
  const token = await viewer('viewer-rb')
  const { raw, tail } = await streaming(t, token)
  const revoked = Date.now()
  await rbac.deleteNamespacedRoleBinding({ namespace: ns, name: 'viewer-rb' })
  const closed = await raw.closed
  t.equal(closed.code, CloseCodes.Forbidden)
  t.equal(
    closed.reason,
    `access revoked: system:serviceaccount:${ns}:viewer-rb may no longer get LogTap ${ns}/tap`,
  )
  const err = await failure(tail.ended)
  t.ok(err instanceof K8stailError, 'k8stail ends with an error, not a reconnect')
  t.equal((err as K8stailError).exitCode, 4, 'exit code 4 (forbidden)')
  t.equal((err as Error).message, `the relay closed the stream: ${closed.reason}`)
  t.ok(Date.now() - revoked < 8000, `closed ${Date.now() - revoked} ms after the RoleBinding went`)
  t.match(await r.registry.metrics(), /log_socket_streams_access_ended_total\{reason="forbidden"\} [1-9]/)
})

t.test('deleting the ServiceAccount closes the open stream: 4001', async (t) => {
  const token = await viewer('viewer-sa')
  const { raw, tail } = await streaming(t, token)
  await core.deleteNamespacedServiceAccount({ namespace: ns, name: 'viewer-sa' })
  const closed = await raw.closed
  t.same(closed, {
    code: CloseCodes.Unauthorized,
    reason: 'token no longer accepted (revoked, or its ServiceAccount was deleted)',
  })
  await t.rejects(tail.ended, { message: `the relay closed the stream: ${closed.reason}`, exitCode: 4 })
  t.match(
    await r.registry.metrics(),
    /log_socket_streams_access_ended_total\{reason="unauthenticated"\} [1-9]/,
  )
})

// A token like the API server's own for `name`, expiring at `exp` (s). TokenRequest will not issue
// one for less than 10 minutes, so it is signed here with the cluster's ServiceAccount key: the
// API server accepts it as it would its own (and, past its expiry, refuses it).
async function tokenExpiringAt(name: string, exp: number): Promise<string> {
  const issued = await c.serviceAccountToken(ns, name)
  const [head, payload] = issued.split('.') as [string, string]
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>
  const now = Math.floor(Date.now() / 1000)
  const body = Buffer.from(JSON.stringify({ ...claims, iat: now - 5, nbf: now - 5, exp })).toString(
    'base64url',
  )
  const key = readFileSync(path.join(path.dirname(c.kubeconfigPath), 'sa.key'))
  const signature = createSign('RSA-SHA256').update(`${head}.${body}`).sign(key).toString('base64url')
  return `${head}.${body}.${signature}`
}

t.test(
  'the token expiring closes the open stream at its expiry: 4011; a fixed token then ends k8stail',
  async (t) => {
    await viewer('viewer-exp')
    const exp = Math.floor(Date.now() / 1000) + 4
    const token = await tokenExpiringAt('viewer-exp', exp)
    const { raw, tail } = await streaming(t, token)
    const closed = await raw.closed
    const at = Date.now()
    t.same(closed, {
      code: CloseCodes.TokenExpired,
      reason: `token expired at ${new Date(exp * 1000).toISOString()}`,
    })
    t.ok(at >= exp * 1000 && at < exp * 1000 + 2000, `closed ${at - exp * 1000} ms after the expiry`)
    // k8stail tries again with the only token it has, which the relay refuses: it ends, saying why.
    const err = await failure(tail.ended)
    t.ok(err instanceof K8stailError)
    t.equal((err as K8stailError).exitCode, 4, 'exit code 4 (forbidden)')
    t.match((err as Error).message, /^the relay refused the stream: HTTP 401 .*token expired at/)
    t.match(
      await r.registry.metrics(),
      /log_socket_streams_access_ended_total\{reason="token-expired"\} [1-9]/,
    )

    // The API server still takes a token for a minute past its expiry (clock-skew leeway); the
    // relay does not.
    const late = await tokenExpiringAt('viewer-exp', Math.floor(Date.now() / 1000) - 5)
    const refused = await connect(r.streamUrl(tap), late).then(
      () => undefined,
      (e: { status?: number; body?: string }) => e,
    )
    t.equal(refused?.status, 401)
    t.match(JSON.parse(refused?.body ?? '{}'), { error: 'unauthenticated', reason: /^the token expired at / })
  },
)

t.test(
  'a token that expires and is refreshed (kubeconfig exec plugin, OIDC): the stream goes on, nothing lost',
  async (t) => {
    await viewer('viewer-refresh')
    const issued: number[] = []
    const messages: StreamMessage[] = []
    const notices: string[] = []
    const controller = new AbortController()
    t.teardown(() => controller.abort())
    const ended = streamTap(
      {
        url: new URL(r.streamUrl(tap)),
        token: 'unused: connectAuth gives each connection its token',
        // What handshakeAuth gives per connection: a token good for 3 more seconds each time.
        connectAuth: async () => {
          const exp = Math.floor(Date.now() / 1000) + 3
          issued.push(exp)
          return { wsOptions: {}, relayToken: await tokenExpiringAt('viewer-refresh', exp) }
        },
        reconnect: true,
        backoffInitialMs: 100,
        signal: controller.signal,
      },
      {
        record: (seq, bytes) =>
          messages.push({ type: 'record', seq, record: JSON.parse(bytes.toString('utf8')) }),
        message: (m) => messages.push(m),
        notice: (line) => notices.push(line),
      },
    )
    ended.catch(() => {})
    await until('connected', () => messages.some((m) => m.type === 'hello'))
    // Records posted before, across and after two expiries: every one arrives, once, in order.
    const posted: number[] = []
    let n = 0
    while (issued.length < 3) {
      const chunk = encodeChunk(
        generateRecords([{ namespace: ns, name: 'web', labels: { 'rbac/policy': 'allow' } }], 5, n),
      )
      n += 5
      await r.post(tap, chunk.body, chunk.headers)
      posted.push(n)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    const records = () => messages.filter((m) => m.type === 'record')
    await until('every record', () => records().length === n, 15_000)
    const seqs = records().map((m) => (m as { seq: number }).seq)
    t.same(
      seqs,
      [...new Set(seqs)].sort((a, b) => a - b),
      'in order, none twice',
    )
    t.equal(seqs.length, n, `${n} records of ${posted.length} chunks, across ${issued.length - 1} expiries`)
    t.notOk(
      messages.some((m) => m.type === 'dropped'),
      'nothing dropped',
    )
    t.match(notices.join('\n'), /the relay closed the stream: token expired at .*; reconnecting/)
    controller.abort()
    t.equal(await ended, 'aborted', 'still streaming when the user stops it')
  },
)
