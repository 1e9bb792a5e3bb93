// Session taps against the real API server: the LogTap and its heartbeat Lease as k8stail creates
// them, renewal, cleanup, and what a user without the RBAC sees.
import { setTimeout as sleep } from 'node:timers/promises'
import { CoordinationV1Api, CustomObjectsApi, RbacAuthorizationV1Api } from '@kubernetes/client-node'
import t from 'tap'
import { API_VERSION, GROUP, KIND, type LogTap, PLURAL, VERSION } from '../api/logtap.ts'
import { ExitCodes, K8stailError } from '../cli/errors.ts'
import { createSession } from '../cli/session.ts'
import { waitForReady } from '../cli/status.ts'
import { getCluster } from '../local-cluster/cluster.ts'
import { controllerStandIn, ensureLogTapCrd } from './support/cli-cluster.ts'

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

t.test(
  'waiting for Ready: a spinner on a terminal, plain lines otherwise, the reason on failure',
  async (t) => {
    const ns = await c.newNamespace('k8stail-wait')
    const spec = { namespace: ns, flowKind: 'Flow' as const, leaseDurationSeconds: 30 }
    const good = await createSession({ ...spec, flowName: 'flow1' }, { kc: c.kc })
    const bad = await createSession({ ...spec, flowName: 'missing' }, { kc: c.kc })
    t.teardown(() => Promise.all([good.close(), bad.close()]))

    const tty: string[] = []
    const plain: string[] = []
    const wait = (name: string, out: string[], isTTY: boolean) =>
      waitForReady(ns, name, {
        kc: c.kc,
        stderr: { write: (s: string) => out.push(s) },
        isTTY,
        signal: new AbortController().signal,
        pollMs: 100,
      })
    const ttyWait = wait(good.name, tty, true)
    const plainWait = wait(good.name, plain, false)
    const badWait = wait(bad.name, [], false).catch((e: unknown) => e)
    await sleep(1200) // no controller yet: the user is told so
    const standIn = controllerStandIn(
      c.kc,
      ns,
      async (_k, name) => name === 'flow1',
      () => {},
    )
    t.teardown(() => standIn.stop())
    t.equal(await ttyWait, true)
    t.equal(await plainWait, true)

    const ESC = String.fromCharCode(27)
    t.ok(
      tty.some((s) => s.startsWith(`\r${ESC}[2K⠋ ${ns}/${good.name}: waiting for the log-socket controller`)),
      'spinner line',
    )
    t.match(tty.at(-1), new RegExp(`^k8stail: ${ns}/${good.name} ready after \\d+s; streaming\\n$`))
    t.equal(
      plain[0],
      `k8stail: ${ns}/${good.name}: waiting for the log-socket controller to pick up the tap (0s)\n`,
    )
    t.notOk(
      plain.some((s) => s.includes(ESC)),
      'no escape codes without a terminal',
    )
    t.match(plain.at(-1), /ready after \d+s; streaming/)

    const err = (await badWait) as K8stailError
    t.equal(err.exitCode, ExitCodes.NotFound)
    t.equal(err.message, `flow not found: FlowNotFound: Flow ${ns}/missing does not exist`)

    // Deleted while waiting (e.g. by someone else): a tap failure.
    standIn.stop()
    await sleep(400) // its last round is over
    const gone = await createSession({ ...spec, flowName: 'flow2' }, { kc: c.kc })
    const goneWait = wait(gone.name, [], false).catch((e: unknown) => e)
    await custom.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: ns,
      name: gone.name,
    })
    const goneErr = (await goneWait) as K8stailError
    t.equal(goneErr.exitCode, ExitCodes.TapFailed)
    t.match(goneErr.message, /was deleted while waiting for it|is being deleted/)
    await gone.close()
  },
)
