// k8stail against the real relay (in-process on 127.0.0.1, in-memory taps, table auth): the
// protocol as both sides implement it. Records byte-identical, denied notices, refusals, tap end.
import { runCommand } from 'citty'
import t from 'tap'
import { createTailCommand } from '../cli/commands/tail.ts'
import { ExitCodes } from '../cli/errors.ts'
import { startTestRelay, tableAuth } from './support/relay.ts'
import { until } from './support/until.ts'

const relay = await startTestRelay({
  auth: tableAuth({ 'token-alice': 'alice', 'token-bob': 'bob' }, { alice: ['*'] }),
})
t.teardown(() => relay.close())
const tap = relay.taps.add('shop', 'shared')
const streamBase = relay.streamUrl(tap).replace(/\/taps\/.*$/, '')

// Posted exactly like this; odd spacing and escapes must survive.
const allowed = (n: number) =>
  `{"log":"line ${n} caf\\u00e9","n":${n},  "kubernetes":{"namespace_name":"shop","pod_name":"web-1","labels":{"rbac/alice":"allow"}}}`
const hidden =
  '{"log":"secret","kubernetes":{"namespace_name":"shop","pod_name":"vault-0","labels":{"app":"vault"}}}'

function k8stail(args: string[]) {
  const out: string[] = []
  const err: string[] = []
  const ctrlC = new AbortController()
  const cmd = createTailCommand({
    stdout: { isTTY: false, write: (c) => out.push(Buffer.from(c).toString()) },
    stderr: { isTTY: false, write: (c) => err.push(Buffer.from(c).toString()) },
    signal: ctrlC.signal,
    env: {},
  })
  const done = runCommand(cmd, {
    rawArgs: ['shop/flow1', '--listen-addr', streamBase, '--attach', 'shared', ...args],
  }).then((r) => r.result as number)
  return { done, stop: () => ctrlC.abort(), stdout: () => out.join(''), stderr: () => err.join('') }
}

t.test('records byte for byte, denied records as notices', async (t) => {
  const run = k8stail(['-t', 'token-alice', '-o', 'raw', '-v', '1'])
  await until('the stream to open', () => run.stderr().includes('k8stail: connected to'))
  const res = await relay.post(tap, `${allowed(1)}\n${hidden}\n${allowed(2)}\n`)
  t.equal(res.status, 200)
  await until('2 records', () => run.stdout().includes('line 2'))
  run.stop()
  t.equal(await run.done, ExitCodes.Ok)
  t.equal(
    run.stdout(),
    `${allowed(1)}\n{"error":"Permission denied to access shop/vault-0 logs for alice"}\n${allowed(2)}\n`,
  )
})

t.test('--tail replays what the relay kept; pretty output', async (t) => {
  const run = k8stail(['-t', 'token-alice', '-o', 'pretty', '--tail', '1', '--count', '1'])
  t.equal(await run.done, ExitCodes.Ok)
  t.match(run.stdout(), /^\d\d:\d\d:\d\d\.\d{3} shop\/web-1 line 2 café\n$/, 'arrival time, source, message')
})

t.test('refusals: unknown token, no access, unknown tap', async (t) => {
  const unknown = k8stail(['-t', 'token-mallory'])
  t.equal(await unknown.done, ExitCodes.Forbidden)
  t.equal(
    unknown.stderr(),
    'k8stail: the relay refused the stream: HTTP 401 unauthenticated: the token was not accepted\n',
  )
  const bob = k8stail(['-t', 'token-bob'])
  t.equal(await bob.done, ExitCodes.Forbidden)
  t.equal(
    bob.stderr(),
    'k8stail: the relay refused the stream: HTTP 403 forbidden: bob may not get logtaps.logsocket.dev shop/shared\n',
  )
  const nope = k8stail(['-t', 'token-alice', '--attach', 'nope'])
  t.equal(await nope.done, ExitCodes.NotFound)
  t.match(nope.stderr(), /^k8stail: the relay refused the stream: HTTP 404 [^\n]+\n$/)
})

t.test('the tap is deleted while streaming: exit 5', async (t) => {
  const run = k8stail(['-t', 'token-alice', '-v', '1'])
  await until('the stream to open', () => run.stderr().includes('k8stail: connected to'))
  relay.taps.remove('shop', 'shared')
  t.equal(await run.done, ExitCodes.TapFailed)
  t.equal(run.stderr().split('\n').at(-2), 'k8stail: LogTap shop/shared was deleted; stream ended')
  t.notMatch(run.stderr(), /relay: .*deleted/, 'said once')
})
