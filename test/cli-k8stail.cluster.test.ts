// k8stail as a child process against the real API server: the session tap is created, the stream
// goes through the API server's service proxy to a relay on a test host, records come out byte for
// byte, Ctrl-C cleans up, and each kind of failure is one line with its exit code.
// (The controller's part, making the tap Ready, is played by a stand-in; the lead's end-to-end test
// runs the real controller and relay.)
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { CoordinationV1Api, CustomObjectsApi } from '@kubernetes/client-node'
import t from 'tap'
import { GROUP, type LogTap, PLURAL, VERSION } from '../api/logtap.ts'
import { ExitCodes } from '../cli/errors.ts'
import { getCluster } from '../local-cluster/cluster.ts'
import { controllerStandIn, ensureLogTapCrd } from './support/cli-cluster.ts'
import { startFakeRelay } from './support/fake-relay.ts'
import { until } from './support/until.ts'

const ROOT = resolve(import.meta.dirname, '..')
const NODE = join(ROOT, 'node_modules/.bin/node')

const c = await getCluster()
await ensureLogTapCrd(c.kc)
const custom = c.kc.makeApiClient(CustomObjectsApi)
const leases = c.kc.makeApiClient(CoordinationV1Api)
const adminToken = c.kc.getCurrentUser()?.token
if (!adminToken) throw new Error('the test cluster admin kubeconfig has no token')

const ns = await c.newNamespace('k8stail-cli')
const relayNs = await c.newNamespace('k8stail-relay')
const relay = await startFakeRelay({ host: c.testHost.ip, token: adminToken, taps: [] })
await c.testHost.exposeService({
  namespace: relayNs,
  name: 'log-socket',
  port: 10001,
  targetPort: relay.port,
})
await custom.createNamespacedCustomObject({
  group: 'logging.banzaicloud.io',
  version: 'v1beta1',
  namespace: ns,
  plural: 'flows',
  body: { apiVersion: 'logging.banzaicloud.io/v1beta1', kind: 'Flow', metadata: { name: 'flow1' }, spec: {} },
})
const standIn = controllerStandIn(
  c.kc,
  ns,
  async (_kind, name) => name === 'flow1',
  (tap) => relay.addTap(`${ns}/${tap.metadata.name}`),
)
t.teardown(async () => {
  standIn.stop()
  await relay.close()
})

interface Run {
  child: ChildProcess
  stdout: () => Buffer
  stderr: () => string
  exit: Promise<number | null>
}

function k8stail(args: string[], kubeconfig = c.kubeconfigPath): Run {
  const child = spawn(NODE, ['cli/main.ts', '--kubeconfig', kubeconfig, '-n', relayNs, ...args], {
    cwd: ROOT,
    env: { ...process.env, KUBECONFIG: '', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout!.on('data', (b: Buffer) => out.push(b))
  child.stderr!.on('data', (b: Buffer) => err.push(b))
  const exit = new Promise<number | null>((done) => child.on('exit', (code) => done(code)))
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  return { child, stdout: () => Buffer.concat(out), stderr: () => Buffer.concat(err).toString(), exit }
}

async function sessionTaps(): Promise<LogTap[]> {
  const list = (await custom.listNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace: ns,
    labelSelector: 'app.kubernetes.io/managed-by=k8stail',
  })) as { items: LogTap[] }
  return list.items
}

const lastLine = (s: string) => s.trimEnd().split('\n').at(-1)

const POSTED = [
  '{"log":"hello \\u00e9 ✓\\n","stream":"stdout","kubernetes":{"namespace_name":"shop","pod_name":"web-1"}}',
  '{ "message" : "spacing kept", "big": 12345678901234567890 }',
]

t.test('k8stail ns/flow prints the records through the service proxy; Ctrl-C leaves nothing', async (t) => {
  const run = k8stail([`${ns}/flow1`])
  let tapName = ''
  await until('the stream to open', () => {
    tapName = standIn.seen.at(-1)?.split('/')[1] ?? ''
    return tapName !== '' && relay.listeners(`${ns}/${tapName}`) === 1
  })
  const conn = relay.connections.at(-1)!
  t.equal(conn.headers['x-authorization'], adminToken, 'the kubeconfig token is the relay token')
  t.equal(conn.query.get('tail'), '100000', 'a session tap replays everything the relay kept')
  t.equal(
    conn.headers['x-log-socket-tail'],
    '100000',
    'also as a header: the API server proxy drops the query',
  )
  const lease = await leases.readNamespacedLease({ namespace: ns, name: tapName })
  t.equal(lease.spec?.leaseDurationSeconds, 30)

  for (const p of POSTED) relay.post(`${ns}/${tapName}`, p)
  await until('records on stdout', () => run.stdout().toString().split('\n').length > POSTED.length)
  run.child.kill('SIGINT')
  t.equal(await run.exit, ExitCodes.Ok)
  t.equal(run.stdout().toString(), `${POSTED.join('\n')}\n`, 'raw output (not a TTY) is byte-identical')
  t.match(run.stderr(), new RegExp(`created LogTap ${ns}/${tapName} for Flow ${ns}/flow1`))
  t.match(run.stderr(), /ready after \d+s; streaming/)
  t.same(await sessionTaps(), [], 'the LogTap is deleted')
  await t.rejects(
    leases.readNamespacedLease({ namespace: ns, name: tapName }),
    { code: 404 },
    'the Lease is deleted',
  )
})

t.test('SIGTERM: same clean exit as Ctrl-C', async (t) => {
  const before = relay.connections.length
  const run = k8stail([`${ns}/flow1`, '-o', 'json'])
  await until(
    'the stream to open',
    () => relay.connections.length > before && relay.listeners(relay.connections.at(-1)!.tap) === 1,
  )
  run.child.kill('SIGTERM')
  t.equal(await run.exit, ExitCodes.Ok)
  t.match(run.stdout().toString(), /^\{"type":"hello",/, 'json output starts with the hello envelope')
  t.same(await sessionTaps(), [], 'the LogTap is deleted')
})

t.test(
  'through the proxy: a dropped connection resumes, a relay restart is survived and reported',
  async (t) => {
    const before = relay.connections.length
    const run = k8stail([`${ns}/flow1`])
    await until(
      'the stream to open',
      () => relay.connections.length > before && relay.listeners(relay.connections.at(-1)!.tap) === 1,
    )
    const tap = relay.connections.at(-1)!.tap
    const rec = (n: number) => `{"n":${n}}`
    relay.post(tap, rec(1))
    await until('record 1', () => run.stdout().toString().includes(rec(1)))

    relay.cut()
    relay.post(tap, rec(2)) // kept by the relay while we are away
    await until(
      'the resumed stream',
      () => relay.connections.length > before + 1 && relay.listeners(tap) === 1,
    )
    const resumed = relay.connections.at(-1)!
    t.equal(resumed.headers['x-log-socket-since'], '1', 'resume point sent as a header through the proxy')
    t.equal(resumed.query.get('since'), '1')
    await until('record 2', () => run.stdout().toString().includes(rec(2)))

    await relay.bounce(1500) // the proxy answers 503 meanwhile
    await until('the stream after the restart', () => relay.listeners(tap) === 1, 60_000)
    relay.post(tap, rec(3))
    await until('record 3', () => run.stdout().toString().includes(rec(3)))
    run.child.kill('SIGINT')
    t.equal(await run.exit, ExitCodes.Ok)
    t.equal(run.stdout().toString(), `${rec(1)}\n${rec(2)}\n${rec(3)}\n`, 'every record once')
    t.match(run.stderr(), /reconnected; nothing missed/)
    t.match(run.stderr(), /reconnected to a restarted relay; 0 records may be missing/)
  },
)

t.test('wrong token: the relay refusal, one line, exit 4, cleaned up', async (t) => {
  const run = k8stail([`${ns}/flow1`, '-t', 'not-a-token'])
  t.equal(await run.exit, ExitCodes.Forbidden)
  t.equal(
    lastLine(run.stderr()),
    'k8stail: the relay refused the stream: HTTP 403 forbidden: token rejected by TokenReview',
  )
  t.equal(run.stdout().length, 0)
  t.same(await sessionTaps(), [])
})

t.test('unknown flow: one line, exit 3, cleaned up', async (t) => {
  const run = k8stail([`${ns}/nosuchflow`])
  t.equal(await run.exit, ExitCodes.NotFound)
  t.equal(
    lastLine(run.stderr()),
    `k8stail: flow not found: FlowNotFound: Flow ${ns}/nosuchflow does not exist`,
  )
  t.same(await sessionTaps(), [])
})

t.test('no permission to create LogTaps: one line, exit 4', async (t) => {
  const token = await c.serviceAccountToken(ns, 'nobody')
  const dir = mkdtempSync(join(tmpdir(), 'k8stail-'))
  const kubeconfig = join(dir, 'kubeconfig')
  writeFileSync(kubeconfig, c.kubeConfigForToken(token).exportConfig())
  const run = k8stail([`${ns}/flow1`], kubeconfig)
  t.equal(await run.exit, ExitCodes.Forbidden)
  const lines = run.stderr().trimEnd().split('\n')
  t.equal(lines.length, 1, 'exactly one line')
  t.match(
    lines[0],
    new RegExp(
      `^k8stail: creating LogTap ${ns}/k8stail-flow1-[a-z0-9]{5}: forbidden: .*cannot create resource "logtaps"`,
    ),
  )
})

t.test('relay not installed: the API server proxy 404, one line, exit 3', async (t) => {
  const run = k8stail([`${ns}/flow1`, '-s', 'not-installed'])
  t.equal(await run.exit, ExitCodes.NotFound)
  t.equal(
    lastLine(run.stderr()),
    'k8stail: relay not installed? the API server says HTTP 404 services "not-installed" not found (see -n/--namespace, -s/--service)',
  )
  t.same(await sessionTaps(), [])
})

t.test('a Ready persistent LogTap on the flow is attached to, nothing created', async (t) => {
  await custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: ns,
    plural: PLURAL,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'LogTap',
      metadata: { name: 'shared' },
      spec: { flow: { kind: 'Flow', name: 'flow1' }, lifetime: 'persistent', mode: 'inject', replay: 10 },
    },
  })
  await until(
    'the persistent tap to be Ready',
    () => standIn.seen.includes(`${ns}/shared`) && relay.listeners(`${ns}/shared`) === 0,
  )
  await sleep(300) // the stand-in writes status after it records the name
  const run = k8stail([`${ns}/flow1`, '--count', '1'])
  await until('the stream to open', () => relay.listeners(`${ns}/shared`) === 1)
  t.same(await sessionTaps(), [], 'no session tap')
  t.equal(relay.connections.at(-1)?.query.get('tail'), null, 'attaching replays nothing unless --tail')
  relay.post(`${ns}/shared`, POSTED[0]!)
  t.equal(await run.exit, ExitCodes.Ok, '--count 1 reached')
  t.equal(run.stdout().toString(), `${POSTED[0]}\n`)
  t.match(run.stderr(), new RegExp(`attaching to persistent LogTap ${ns}/shared`))
})
