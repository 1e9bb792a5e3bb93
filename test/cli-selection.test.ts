// k8stail's selection flags, end to end over real sockets: the relay in-process on 127.0.0.1,
// k8stail in-process (`--listen-addr --attach`). What it prints is what the relay selected; the
// sampling ratio and what was left out are shown; a bad expression never reaches the relay.
import { runCommand } from 'citty'
import t from 'tap'
import { createTailCommand } from '../cli/commands/tail.ts'
import { ExitCodes } from '../cli/errors.ts'
import { encodeChunk, type FakePod, generateRecords } from '../local-cluster/sample-records.ts'
import { startTestRelay } from './support/relay.ts'
import { until } from './support/until.ts'

const pods: FakePod[] = [
  { namespace: 'shop', name: 'web-1', labels: { app: 'web', 'rbac/policy': 'allow' } },
  { namespace: 'shop', name: 'api-1', labels: { app: 'api', 'rbac/policy': 'allow' } },
]

function sink() {
  const chunks: Buffer[] = []
  return {
    isTTY: false,
    write: (c: string | Uint8Array) => chunks.push(Buffer.from(c)),
    text: () => Buffer.concat(chunks).toString(),
  }
}

function k8stail(url: string, extra: string[]) {
  const stdout = sink()
  const stderr = sink()
  const ctrlC = new AbortController()
  const cmd = createTailCommand({ stdout, stderr, signal: ctrlC.signal, env: {} })
  const rawArgs = ['shop/flow1', '--listen-addr', url, '--attach', 'tap', '-t', 'token-alice', ...extra]
  const done = runCommand(cmd, { rawArgs }).then((r) => r.result as number)
  return { stdout, stderr, done, stop: () => ctrlC.abort() }
}

t.test('--where and --fields: only the selected records, projected by the relay', async (t) => {
  const r = await startTestRelay()
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'tap')
  const url = r.relay.addresses.stream.replace(/^http/, 'ws')
  const run = k8stail(url, [
    '-o',
    'raw',
    '--where',
    'kubernetes.labels.app == api',
    '--fields',
    'message,kubernetes.pod_name',
  ])
  await until('k8stail connected', () => r.relay.context.hub.listeners().length === 1)
  const records = generateRecords(pods, 20)
  const chunk = encodeChunk(records)
  await r.post(tap, chunk.body, chunk.headers)
  await until('ten records', () => run.stdout.text().split('\n').length === 11)
  run.stop()
  t.equal(await run.done, ExitCodes.Ok)
  const want = records
    .filter((_, i) => i % 2 === 1)
    .map((rec) => JSON.stringify({ message: rec.message, kubernetes: { pod_name: 'api-1' } }))
  t.same(run.stdout.text().trimEnd().split('\n'), want)
  t.equal(run.stderr.text(), '', 'a filter of your own is not announced')
})

t.test('--sample: the ratio and what was sampled out are shown on stderr', async (t) => {
  const r = await startTestRelay()
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'tap', 10_000)
  const url = r.relay.addresses.stream.replace(/^http/, 'ws')
  const run = k8stail(url, ['-o', 'raw', '--sample', '20%', '--sample-by', 'kubernetes.pod_name'])
  await until('k8stail connected', () => r.relay.context.hub.listeners().length === 1)
  const many = Array.from({ length: 10 }, (_, i) => ({ ...pods[0]!, name: `web-${i}` }))
  const chunk = encodeChunk(generateRecords(many, 2000))
  await r.post(tap, chunk.body, chunk.headers)
  const printed = () => (run.stdout.text() === '' ? 0 : run.stdout.text().trimEnd().split('\n').length)
  const told = () =>
    [...run.stderr.text().matchAll(/(\d+) records sampled out \(keeping 20%\), seq \d+-\d+/g)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    )
  // Every record is printed or told as sampled out (notices summarise, at most one a second).
  await until('every record accounted for', () => printed() + told() === 2000, 5000)
  run.stop()
  t.equal(await run.done, ExitCodes.Ok)
  t.match(run.stderr.text(), /^k8stail: the relay applies: sample 20% by kubernetes\.pod_name$/m)
  t.ok(run.stderr.text().split('\n').length <= 5, 'a few summary lines, not one per record')
  // By pod: each of the ten pods is kept whole or left out whole.
  t.equal(printed() % 200, 0, `whole pods printed (${printed()})`)
  t.ok(told() > 0, 'some pods sampled out')
})
t.test('a bad expression: one line, exit 1, no connection', async (t) => {
  const r = await startTestRelay()
  t.teardown(() => r.close())
  r.taps.add('shop', 'tap')
  const url = r.relay.addresses.stream.replace(/^http/, 'ws')
  const run = k8stail(url, ['--where', 'kubernetes.labels.app == api &&'])
  t.equal(await run.done, ExitCodes.Usage)
  t.equal(run.stderr.text(), 'k8stail: --where: expected a predicate after && at column 32 (the end)\n')
  t.equal(r.relay.context.hub.listeners().length, 0)
})

t.test("a LogTap's invalid selection: the relay's refusal, in one line", async (t) => {
  const r = await startTestRelay()
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'tap')
  tap.selection = {
    key: 'bad',
    error: 'spec.selection.where: expected a value after == at column 9 (the end)',
  }
  const url = r.relay.addresses.stream.replace(/^http/, 'ws')
  const run = k8stail(url, ['--no-reconnect'])
  t.not(await run.done, ExitCodes.Ok)
  t.equal(
    run.stderr.text(),
    'k8stail: the relay refused the stream: HTTP 409 bad-tap-selection: LogTap shop/tap has an invalid spec.selection: spec.selection.where: expected a value after == at column 9 (the end)\n',
  )
})
