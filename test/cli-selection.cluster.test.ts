// k8stail's selection through the API server's service proxy to a real relay on a test host:
// the selection travels in its header (the proxy drops the query of upgrades), the relay filters,
// projects and samples before anything crosses the proxy, and refusals come back as one line.
import { type ChildProcess, spawn } from 'node:child_process'
import { join, resolve } from 'node:path'
import t from 'tap'
import { ExitCodes } from '../cli/errors.ts'
import { handshakeAuth } from '../cli/kubeconfig.ts'
import { proxyStreamUrl } from '../cli/proxy-url.ts'
import { streamTap } from '../cli/relay-client.ts'
import { getCluster } from '../local-cluster/cluster.ts'
import { encodeChunk, type FakePod, generateRecords } from '../local-cluster/sample-records.ts'
import { ensureLogTapCrd } from './support/cli-cluster.ts'
import { startTestRelay, tableAuth } from './support/relay.ts'
import { until } from './support/until.ts'

const ROOT = resolve(import.meta.dirname, '..')
const NODE = join(ROOT, 'node_modules/.bin/node')

const c = await getCluster()
const adminToken = c.kc.getCurrentUser()?.token
if (!adminToken) throw new Error('the test cluster admin kubeconfig has no token')
const ns = await c.newNamespace('selection')
const relayNs = await c.newNamespace('selection-relay')
const r = await startTestRelay({
  host: c.testHost.ip,
  auth: tableAuth({ [adminToken]: 'admin' }, { admin: ['*'] }),
})
t.teardown(() => r.close())
await c.testHost.exposeService({
  namespace: relayNs,
  name: 'log-socket',
  port: 10001,
  targetPort: Number(new URL(r.relay.addresses.stream).port),
})

const pods: FakePod[] = [
  { namespace: ns, name: 'web-1', labels: { app: 'web', 'rbac/policy': 'allow' } },
  { namespace: ns, name: 'api-1', labels: { app: 'api', 'rbac/policy': 'allow' } },
  { namespace: ns, name: 'vault-0', labels: { app: 'api', 'rbac/policy': 'deny' } },
]

function k8stail(args: string[]) {
  const child: ChildProcess = spawn(
    NODE,
    ['cli/main.ts', '--kubeconfig', c.kubeconfigPath, '-n', relayNs, `${ns}/flow1`, ...args],
    { cwd: ROOT, env: { ...process.env, KUBECONFIG: '', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout!.on('data', (b: Buffer) => out.push(b))
  child.stderr!.on('data', (b: Buffer) => err.push(b))
  const exit = new Promise<number | null>((done) => child.on('exit', (code) => done(code)))
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  return {
    child,
    stdout: () => Buffer.concat(out).toString(),
    stderr: () => Buffer.concat(err).toString(),
    exit,
  }
}

const listeners = () => r.relay.context.hub.listeners().length

t.test(
  '--where and --fields through the proxy: only the selected records, projected, RBAC first',
  async (t) => {
    const tap = r.taps.add(ns, 'tap1')
    const run = k8stail([
      '--attach',
      'tap1',
      '-o',
      'raw',
      '--where',
      'kubernetes.labels.app == api',
      '--fields',
      'message',
    ])
    await until('the stream to open', () => listeners() === 1)
    const records = generateRecords(pods, 30)
    const chunk = encodeChunk(records)
    t.equal((await r.post(tap, chunk.body, chunk.headers)).status, 200)
    // api-1 is allowed (10 records), vault-0 is denied (10 notices, summarised by the relay).
    await until('the api records and the denials', () => {
      const lines = run.stdout().trimEnd().split('\n')
      return (
        lines.filter((l) => l.startsWith('{"message"')).length === 10 &&
        lines.some((l) => l.includes('vault-0'))
      )
    })
    run.child.kill('SIGINT')
    t.equal(await run.exit, ExitCodes.Ok)
    const lines = run.stdout().trimEnd().split('\n')
    t.same(
      lines.filter((l) => l.startsWith('{"message"')),
      records.filter((_, i) => i % 3 === 1).map((rec) => JSON.stringify({ message: rec.message })),
      'the projected records of the selected pod, in order',
    )
    t.ok(
      lines
        .filter((l) => !l.startsWith('{"message"'))
        .every((l) => l === `{"error":"Permission denied to access ${ns}/vault-0 logs for admin"}`),
      'a denied record is told as denied, never projected',
    )
    t.equal(run.stderr(), '', 'nothing else on stderr')
    await until('k8stail gone', () => listeners() === 0)
  },
)

t.test('--sample through the proxy: the ratio and the sampled-out records on stderr', async (t) => {
  const tap = r.taps.add(ns, 'tap2', 10_000)
  const run = k8stail(['--attach', 'tap2', '-o', 'raw', '--sample', '10%'])
  await until('the stream to open', () => listeners() === 1)
  const chunk = encodeChunk(generateRecords(pods.slice(0, 2), 3000))
  t.equal((await r.post(tap, chunk.body, chunk.headers)).status, 200)
  const printed = () => (run.stdout() === '' ? 0 : run.stdout().trimEnd().split('\n').length)
  const told = () =>
    [...run.stderr().matchAll(/(\d+) records sampled out \(keeping 10%\)/g)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    )
  await until('every record printed or told', () => printed() + told() === 3000)
  run.child.kill('SIGINT')
  t.equal(await run.exit, ExitCodes.Ok)
  t.match(run.stderr(), /^k8stail: the relay applies: sample 10%$/m)
  t.ok(printed() > 200 && printed() < 400, `about 10% printed (${printed()})`)
  await until('k8stail gone', () => listeners() === 0)
})

t.test('refusals through the proxy: a bad selection, a LogTap with a bad selection', async (t) => {
  r.taps.add(ns, 'tap3')
  // What k8stail itself would never send: the relay checks it again, before the upgrade.
  const url = proxyStreamUrl({
    server: c.server,
    serviceNamespace: relayNs,
    service: 'log-socket',
    port: '10001',
    serviceScheme: 'http',
    tapNamespace: ns,
    tapName: 'tap3',
  })
  const err = await streamTap(
    {
      url,
      token: adminToken,
      connectAuth: async () => ({ wsOptions: (await handshakeAuth(c.kc)).wsOptions }),
      selection: { where: "level =~ '(a)\\1'" },
      reconnect: false,
      signal: new AbortController().signal,
    },
    { record: () => {}, message: () => {}, notice: () => {} },
  ).catch((e: Error) => e)
  t.match(err, {
    message:
      "the relay refused the stream: HTTP 400 bad-selection: selection.where: regular expression needs backtracking: backreferences, lookahead/lookbehind and counted repetitions above {16} are not allowed at column 10, near ''(a)\\1''",
  })

  const bad = r.taps.add(ns, 'tap4')
  bad.selection = {
    key: 'k',
    error: 'spec.selection.podRate: a whole number of records per second, 1 to 1000000, expected',
  }
  const run = k8stail(['--attach', 'tap4', '--no-reconnect'])
  t.not(await run.exit, ExitCodes.Ok)
  t.equal(
    run.stderr(),
    `k8stail: the relay refused the stream: HTTP 409 bad-tap-selection: LogTap ${ns}/tap4 has an invalid spec.selection: spec.selection.podRate: a whole number of records per second, 1 to 1000000, expected\n`,
  )
})

t.test("a LogTap's spec.selection: the CRD checks its shape, kubectl -o wide shows it", async (t) => {
  await ensureLogTapCrd(c.kc)
  const tapYaml = (name: string, selection: string) =>
    `apiVersion: logsocket.dev/v1alpha1\nkind: LogTap\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n  flow: {name: flow1}\n  selection: ${selection}\n`
  const refused = await c.kubectl(['apply', '-f', '-'], {
    input: tapYaml('bad', '{podRate: 0, sample: {percent: 500}}'),
  })
  t.not(refused.code, 0)
  t.match(
    refused.stderr,
    /spec\.selection\.podRate: Invalid value: 0: spec\.selection\.podRate in body should be greater than or equal to 1/,
  )
  t.match(refused.stderr, /spec\.selection\.sample\.percent: Invalid value: 500/)
  const ok = await c.kubectl(['apply', '-f', '-'], {
    input: tapYaml('good', '{where: "level == error", fields: [message]}'),
  })
  t.equal(ok.code, 0, ok.stderr)
  const wide = await c.kubectl(['get', 'logtaps', '-n', ns, '-o', 'wide'])
  t.match(wide.stdout.split('\n')[0], /\bSELECTION\b/)
})
