// Session taps against the real API server: the LogTap and its heartbeat Lease as k8stail creates
// them, renewal, cleanup, and what a user without the RBAC sees.
import { setTimeout as sleep } from 'node:timers/promises'
import { CoordinationV1Api, CustomObjectsApi, RbacAuthorizationV1Api } from '@kubernetes/client-node'
import t from 'tap'
import { ExitCodes, K8stailError } from '../cli/errors.ts'
import { createSession } from '../cli/session.ts'
import { API_VERSION, GROUP, KIND, type LogTap, PLURAL, VERSION } from '../controller/api/logtap.ts'
import { ensureLogTapCrd } from './support/cli-cluster.ts'
import { getCluster } from './support/cluster.ts'

const c = await getCluster()
await ensureLogTapCrd(c.kc)
const custom = c.kc.makeApiClient(CustomObjectsApi)
const leases = c.kc.makeApiClient(CoordinationV1Api)
const readTap = (namespace: string, name: string) =>
  custom.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace,
    name,
  }) as Promise<LogTap>

t.test('a session tap and its Lease: created, renewed, deleted', async (t) => {
  const ns = await c.newNamespace('k8stail-session')
  const s = await createSession(
    { namespace: ns, flowKind: 'Flow', flowName: 'flow1', leaseDurationSeconds: 10 },
    { kc: c.kc },
  )
  t.teardown(() => s.close())
  t.match(s.name, /^k8stail-flow1-[a-z0-9]{5}$/)

  const tap = await readTap(ns, s.name)
  t.match(tap, {
    metadata: {
      labels: { 'app.kubernetes.io/managed-by': 'k8stail', 'app.kubernetes.io/created-by': 'k8stail' },
      annotations: { 'logsocket.dev/session-user': String, 'logsocket.dev/session-host': String },
    },
    spec: { flow: { kind: 'Flow', name: 'flow1' }, lifetime: 'session', mode: 'inject' },
  })
  t.equal(tap.metadata.uid, s.uid)
  const managed = (tap.metadata as { managedFields?: { manager: string }[] }).managedFields
  t.equal(managed?.[0]?.manager, 'k8stail', 'written under the k8stail field manager')

  const lease = await leases.readNamespacedLease({ namespace: ns, name: s.name })
  t.same(lease.metadata?.ownerReferences, [{ apiVersion: API_VERSION, kind: KIND, name: s.name, uid: s.uid }])
  t.equal(lease.spec?.leaseDurationSeconds, 10)
  t.match(lease.spec?.holderIdentity, /^.+@.+\/\d+$/)
  const first = new Date(lease.spec!.renewTime!).getTime()

  await sleep(4000) // renewals every 10s/3
  const renewed = await leases.readNamespacedLease({ namespace: ns, name: s.name })
  t.ok(new Date(renewed.spec!.renewTime!).getTime() > first, 'renewTime moves forward')

  const started = Date.now()
  await s.close()
  t.ok(Date.now() - started < 5000, 'cleanup is bounded')
  await t.rejects(readTap(ns, s.name), { code: 404 }, 'LogTap deleted')
  await t.rejects(leases.readNamespacedLease({ namespace: ns, name: s.name }), { code: 404 }, 'Lease deleted')
})

t.test('not allowed to create LogTaps: one clear forbidden error, nothing created', async (t) => {
  const ns = await c.newNamespace('k8stail-nobody')
  const token = await c.serviceAccountToken(ns, 'nobody')
  const err = await createSession(
    { namespace: ns, flowKind: 'Flow', flowName: 'flow1', leaseDurationSeconds: 30 },
    { kc: c.kubeConfigForToken(token) },
  ).catch((e: unknown) => e)
  t.ok(err instanceof K8stailError)
  t.equal((err as K8stailError).exitCode, ExitCodes.Forbidden)
  t.match((err as K8stailError).message, /^creating LogTap .+: forbidden: .*cannot create resource "logtaps"/)
})

t.test('allowed to create LogTaps but not Leases: the tap is removed again', async (t) => {
  const ns = await c.newNamespace('k8stail-nolease')
  const rbac = c.kc.makeApiClient(RbacAuthorizationV1Api)
  await rbac.createNamespacedRole({
    namespace: ns,
    body: {
      metadata: { name: 'taps-only' },
      rules: [{ apiGroups: [GROUP], resources: [PLURAL], verbs: ['create', 'delete', 'get', 'list'] }],
    },
  })
  await rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: 'taps-only' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'taps-only' },
      subjects: [{ kind: 'ServiceAccount', name: 'tapper', namespace: ns }],
    },
  })
  const token = await c.serviceAccountToken(ns, 'tapper')
  const err = (await createSession(
    { namespace: ns, flowKind: 'Flow', flowName: 'flow1', leaseDurationSeconds: 30 },
    { kc: c.kubeConfigForToken(token) },
  ).catch((e: unknown) => e)) as K8stailError
  t.equal(err.exitCode, ExitCodes.Forbidden)
  t.match(err.message, /^creating heartbeat Lease .+: forbidden: .*leases/)
  const list = (await custom.listNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace: ns,
  })) as {
    items: LogTap[]
  }
  t.same(list.items, [], 'no LogTap left behind')
})
