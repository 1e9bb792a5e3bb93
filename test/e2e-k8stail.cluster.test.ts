// End to end, as a user sees it: the real controller+relay program, a Flow, the fluentd-faithful
// sender, and `k8stail ns/flow` as a child process streaming through the API server's service proxy.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { CoordinationV1Api, CustomObjectsApi } from '@kubernetes/client-node'
import t from 'tap'
import { KINDS, resourceOf } from '../api/kinds.ts'
import { GROUP, LABEL_TAP, PLURAL, VERSION } from '../api/logtap.ts'
import { getCluster } from '../local-cluster/cluster.ts'
import { samplePods } from '../local-cluster/sample-records.ts'
import { startStack, writeTokenKubeconfig } from '../local-cluster/stack.ts'
import { grantTapper, type K8stailRun, k8stail, until } from './support/k8stail-user.ts'

const c = await getCluster()
const custom = c.kc.makeApiClient(CustomObjectsApi)
const leases = c.kc.makeApiClient(CoordinationV1Api)

const ns = await c.newNamespace('e2e')
const stack = await startStack(c, { namespace: ns, pods: samplePods(ns) })
const dir = mkdtempSync(path.join(tmpdir(), 'e2e-k8stail-'))
t.teardown(async () => {
  await stack.stop()
  rmSync(dir, { recursive: true, force: true })
})

// The sample Flow with the Output it already had: the tap's ref must come and go around it.
await custom.createNamespacedCustomObject({
  ...resourceOf('Output'),
  namespace: ns,
  body: {
    apiVersion: KINDS.Output.apiVersion,
    kind: 'Output',
    metadata: { name: 'es' },
    spec: { http: { endpoint: 'http://elasticsearch.invalid:9200' } },
  },
})
await custom.createNamespacedCustomObject({
  ...resourceOf('Flow'),
  namespace: ns,
  body: {
    apiVersion: KINDS.Flow.apiVersion,
    kind: 'Flow',
    metadata: { name: 'flow1' },
    spec: { match: [{ select: { labels: { app: 'shop' } } }], localOutputRefs: ['es'] },
  },
})

// The user: a ServiceAccount with the tapper rules in this namespace (where the relay lives too).
const viewerKubeconfig = writeTokenKubeconfig(c, dir, await grantTapper(c, ns), 'viewer')
const user = `system:serviceaccount:${ns}:viewer`

type Run = K8stailRun
const tail = (args: string[], kubeconfig = viewerKubeconfig): Run => k8stail(kubeconfig, ns, args)

const lines = (s: string) => s.split('\n').filter((l) => l.length > 0)
const listTaps = async () =>
  (
    (await custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: PLURAL,
    })) as {
      items: unknown[]
    }
  ).items
const ourOutputs = async () =>
  (
    (await custom.listNamespacedCustomObject({
      ...resourceOf('Output'),
      namespace: ns,
      labelSelector: LABEL_TAP,
    })) as { items: unknown[] }
  ).items
const flowRefs = async () =>
  (
    (await custom.getNamespacedCustomObject({
      ...resourceOf('Flow'),
      namespace: ns,
      name: 'flow1',
    })) as {
      spec: { localOutputRefs?: string[] }
    }
  ).spec.localOutputRefs
const leaseNames = async () =>
  (await leases.listNamespacedLease({ namespace: ns })).items.map((l) => l.metadata?.name)

async function assertNothingLeft(t: { pass(m: string): void }, within: number) {
  await until('the tap, its Lease and Output gone and the flow back to its own refs', within, async () => {
    const [taps, outs, refs] = await Promise.all([listTaps(), ourOutputs(), flowRefs()])
    const sessionLeases = (await leaseNames()).filter((n) => n?.startsWith('k8stail-'))
    return (
      taps.length === 0 &&
      outs.length === 0 &&
      sessionLeases.length === 0 &&
      JSON.stringify(refs) === '["es"]'
    )
  })
  t.pass('no LogTap, Lease, Output or flow ref left behind')
}

// Every line posted to one of our tap Outputs, for byte-for-byte comparison.
const postedLines = () => new Set(stack.sender.posts.filter((p) => p.status === 200).flatMap((p) => p.lines))

t.test(
  'k8stail prints the records byte-identical, denied ones as a notice, and Ctrl-C leaves nothing',
  async (t) => {
    const run = tail(['-o', 'raw', `${ns}/flow1`])
    await until('12 lines on stdout', 90_000, () => lines(run.out()).length >= 12 || undefined).catch(
      (err) => {
        run.child.kill('SIGKILL')
        throw new Error(`${(err as Error).message}\nstderr:\n${run.err()}`)
      },
    )
    run.child.kill('SIGINT')
    t.equal(await run.exit, 0, 'Ctrl-C exits 0')
    const posted = postedLines()
    const out = lines(run.out())
    const records = out.filter((l) => !l.startsWith('{"error"'))
    const denied = out.filter((l) => l.startsWith('{"error"'))
    t.ok(records.length > 0, 'records were printed')
    t.ok(denied.length > 0, 'denied notices were printed')
    t.same(
      records.filter((l) => !posted.has(l)),
      [],
      'every printed record is byte-identical to a line fluentd posted',
    )
    t.notOk(
      records.some((l) => l.includes('ledger-') || l.includes('"cache-0"')),
      'no record of a pod whose labels deny this user',
    )
    for (const d of denied) {
      const m = JSON.parse(d).error as string
      t.match(
        m,
        new RegExp(`^Permission denied to access ${ns}/(ledger-[a-z0-9-]+|cache-0) logs for ${user}$`),
      )
    }
    await assertNothingLeft(t, 20_000)
  },
)

t.test('a k8stail killed with SIGKILL is cleaned up by Lease expiry', async (t) => {
  const run = tail(['-o', 'raw', '--lease-duration', '10s', `${ns}/flow1`])
  await until('a first record', 90_000, () => lines(run.out()).length >= 1 || undefined).catch((err) => {
    run.child.kill('SIGKILL')
    throw new Error(`${(err as Error).message}\nstderr:\n${run.err()}`)
  })
  t.equal((await listTaps()).length, 1, 'the session tap exists while k8stail runs')
  run.child.kill('SIGKILL')
  await run.exit
  const killed = Date.now()
  await assertNothingLeft(t, 10_000 + 10_000 + 5_000)
  t.ok(Date.now() - killed < 25_000, `cleaned up ${Date.now() - killed} ms after the kill`)
})

t.test('a relay restart mid-stream is survived with no duplicate and the gap reported', async (t) => {
  const run = tail(['-o', 'raw', `${ns}/flow1`])
  await until('first records', 90_000, () => lines(run.out()).length >= 6 || undefined).catch((err) => {
    run.child.kill('SIGKILL')
    throw new Error(`${(err as Error).message}\nstderr:\n${run.err()}`)
  })
  const before = lines(run.out()).length
  await stack.restartProgram()
  await until(
    'records after the restart',
    60_000,
    () => lines(run.out()).length >= before + 6 || undefined,
  ).catch((err) => {
    throw new Error(`${(err as Error).message}\nstderr:\n${run.err()}`)
  })
  run.child.kill('SIGINT')
  t.equal(await run.exit, 0)
  const records = lines(run.out()).filter((l) => !l.startsWith('{"error"'))
  t.equal(new Set(records).size, records.length, 'no record printed twice')
  t.match(run.err(), /restart|missing|lost|gap/i, 'the user is told records may be missing')
  await assertNothingLeft(t, 20_000)
})

t.test('wrong token, unknown flow and missing permission: one line and a non-zero exit', async (t) => {
  const wrong = tail(['-t', 'not-a-valid-token', `${ns}/flow1`])
  const wrongCode = await wrong.exit
  t.not(wrongCode, 0, 'wrong token fails')
  t.match(lines(wrong.err()).at(-1), /^k8stail: .*(token|unauthenticated|401)/i, wrong.err())

  const unknown = tail([`${ns}/no-such-flow`])
  t.equal(await unknown.exit, 3, 'unknown flow exits 3')
  t.match(lines(unknown.err()).at(-1), /^k8stail: .*not found/i, unknown.err())

  const nobody = writeTokenKubeconfig(c, dir, await c.serviceAccountToken(ns, 'nobody'), 'nobody')
  const denied = tail([`${ns}/flow1`], nobody)
  t.equal(await denied.exit, 4, 'missing permission exits 4')
  t.match(lines(denied.err()).at(-1), /^k8stail: .*(forbidden|not allowed|cannot)/i, denied.err())
  await assertNothingLeft(t, 20_000)
})
