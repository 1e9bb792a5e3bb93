// The stream client over real sockets: `k8stail --listen-addr ws://127.0.0.1:<port> --attach <tap>`
// run in-process through citty against a small relay speaking the protocol. Reconnect + resume
// without duplicates and with the gap reported, refused upgrades, a vanished relay, stream end.
import { setTimeout as sleep } from 'node:timers/promises'
import { runCommand } from 'citty'
import t from 'tap'
import { createTailCommand } from '../cli/commands/tail.ts'
import { ExitCodes } from '../cli/errors.ts'
import { afterHello, backoffMs } from '../cli/relay-client.ts'
import { type FakeRelay, startFakeRelay } from './support/fake-relay.ts'
import { until } from './support/until.ts'

const TAP = 'shop/shared'
const TOKEN = 'good-token'
const rec = (n: number) =>
  `{"log":"line ${n}","n":${n},"kubernetes":{"namespace_name":"shop","pod_name":"web-1"}}`

function sink() {
  const chunks: string[] = []
  return {
    isTTY: false,
    write: (c: string | Uint8Array) => chunks.push(Buffer.from(c).toString()),
    text: () => chunks.join(''),
    lines: () => chunks.join('').split('\n').filter(Boolean),
  }
}

// Starts k8stail; `stop()` is Ctrl-C. Fast pings and backoff keep the test short.
function k8stail(relay: FakeRelay, extra: string[], ping = 100) {
  const stdout = sink()
  const stderr = sink()
  const ctrlC = new AbortController()
  const cmd = createTailCommand({
    stdout,
    stderr,
    signal: ctrlC.signal,
    env: {},
    stream: { pingIntervalMs: ping, backoffInitialMs: 150, backoffMaxMs: 400, giveUpAfterMs: 3000 },
  })
  const rawArgs = ['shop/flow1', '--listen-addr', relay.url, '--attach', 'shared', '-t', TOKEN, ...extra]
  const done = runCommand(cmd, { rawArgs }).then((r) => r.result as number)
  return { stdout, stderr, done, stop: () => ctrlC.abort() }
}

t.test('reconnects after a cut, resumes after the last seq, reports the gap, no duplicates', async (t) => {
  const relay = await startFakeRelay({ token: TOKEN, taps: [TAP], replay: 2 })
  t.teardown(() => relay.close())
  const run = k8stail(relay, ['-o', 'raw'])
  await until('first connection', () => relay.listeners(TAP) === 1)
  for (const n of [1, 2, 3]) relay.post(TAP, rec(n))
  await until('3 records', () => run.stdout.lines().length === 3)

  relay.cut()
  for (const n of [4, 5, 6, 7]) relay.post(TAP, rec(n)) // 4 and 5 fall out of the 2-record replay buffer
  await until('reconnection', () => relay.connections.length === 2 && relay.listeners(TAP) === 1)
  t.equal(relay.connections[1]!.query.get('since'), '3', 'resumes after the last record shown')
  t.equal(relay.connections[1]!.query.get('epoch'), relay.epoch)
  t.equal(
    relay.connections[1]!.headers['x-log-socket-since'],
    '3',
    'also as headers, which survive the API server proxy',
  )
  t.equal(relay.connections[1]!.headers['x-log-socket-epoch'], relay.epoch)
  relay.post(TAP, rec(8))
  await until('8 records', () => run.stdout.text().includes('line 8'))

  run.stop()
  t.equal(await run.done, ExitCodes.Ok, 'Ctrl-C exits 0')
  t.equal(run.stdout.text(), `${[1, 2, 3, 6, 7, 8].map(rec).join('\n')}\n`, 'each record once, byte for byte')
  t.match(run.stderr.text(), /k8stail: connection lost \(code 1006\); reconnecting in \d/)
  t.match(run.stderr.text(), /k8stail: reconnected; 2 records may be missing\n/)
})

t.test('a relay that replays what we already have: shown once', async (t) => {
  const relay = await startFakeRelay({ token: TOKEN, taps: [TAP], overlap: 2 })
  t.teardown(() => relay.close())
  const run = k8stail(relay, ['-o', 'raw'])
  await until('connection', () => relay.listeners(TAP) === 1)
  for (const n of [1, 2, 3]) relay.post(TAP, rec(n))
  await until('3 records', () => run.stdout.lines().length === 3)
  relay.cut()
  relay.post(TAP, rec(4))
  // Sloppy relay: on reconnect, replay everything, also what the client confirmed having.
  const accept = relay.connections.length
  await until('reconnection', () => relay.connections.length === accept + 1 && relay.listeners(TAP) === 1)
  relay.cut() // and once more, to see a second resume
  await until(
    'second reconnection',
    () => relay.connections.length === accept + 2 && relay.listeners(TAP) === 1,
  )
  relay.post(TAP, rec(5))
  await until('5 records', () => run.stdout.text().includes('line 5'))
  run.stop()
  await run.done
  t.equal(run.stdout.text(), `${[1, 2, 3, 4, 5].map(rec).join('\n')}\n`)
  t.match(run.stderr.text(), /reconnected; nothing missed/)
})

t.test('relay restart: new epoch, new numbering, the gap reported', async (t) => {
  const relay = await startFakeRelay({ token: TOKEN, taps: [TAP] })
  t.teardown(() => relay.close())
  const run = k8stail(relay, ['-o', 'json'])
  await until('connection', () => relay.listeners(TAP) === 1)
  for (const n of [1, 2, 3]) relay.post(TAP, rec(n))
  await until('3 records', () => run.stdout.text().split('"type":"record"').length === 4)
  relay.restart()
  relay.post(TAP, rec(100)) // seq 1 of the new epoch, before we are back: replayed
  await until('reconnection', () => relay.listeners(TAP) === 1)
  relay.post(TAP, rec(101))
  await until('record 101', () => run.stdout.text().includes('line 101'))
  run.stop()
  await run.done
  const records = run.stdout
    .lines()
    .map((l) => JSON.parse(l))
    .filter((m) => m.type === 'record')
  t.same(
    records.map((m) => [m.seq, m.record.n]),
    [
      [1, 1],
      [2, 2],
      [3, 3],
      [1, 100],
      [2, 101],
    ],
    'seq 1 of the new epoch is not mistaken for a duplicate',
  )
  t.match(run.stderr.text(), /reconnected to a restarted relay; 0 records may be missing/)
})

t.test('refused upgrade: HTTP status and reason on one line, no retry', async (t) => {
  const relay = await startFakeRelay({ token: TOKEN, taps: [TAP] })
  t.teardown(() => relay.close())
  const wrong = k8stail(relay, ['-t', 'wrong-token'])
  t.equal(await wrong.done, ExitCodes.Forbidden)
  t.equal(
    wrong.stderr.text(),
    'k8stail: the relay refused the stream: HTTP 403 forbidden: token rejected by TokenReview\n',
  )
  const unknown = k8stail(relay, ['--attach', 'nope'])
  t.equal(await unknown.done, ExitCodes.NotFound)
  t.equal(
    unknown.stderr.text(),
    'k8stail: the relay refused the stream: HTTP 404 not-found: no LogTap shop/nope\n',
  )
  t.equal(relay.connections.length, 0)
})

t.test('a tap the relay does not know yet: retried within the grace period, then refused', async (t) => {
  const relay = await startFakeRelay({ token: TOKEN, taps: [] })
  t.teardown(() => relay.close())
  const stdout = sink()
  const stderr = sink()
  const cmd = createTailCommand({
    stdout,
    stderr,
    signal: new AbortController().signal,
    env: {},
    stream: { backoffInitialMs: 100, backoffMaxMs: 200, notFoundGraceMs: 1000 },
  })
  const rawArgs = [
    'shop/flow1',
    '--listen-addr',
    relay.url,
    '--attach',
    'shared',
    '-t',
    TOKEN,
    '--count',
    '1',
  ]
  const done = runCommand(cmd, { rawArgs }).then((r) => r.result as number)
  await sleep(300)
  relay.addTap(TAP) // the relay's informer catches up
  await until('connection', () => relay.listeners(TAP) === 1)
  relay.post(TAP, rec(1))
  t.equal(await done, ExitCodes.Ok)
  t.equal(stdout.text(), `${rec(1)}\n`)
  t.match(stderr.text(), /HTTP 404 not-found: no LogTap shop\/shared; reconnecting in/)

  const started = Date.now()
  const { result } = await runCommand(cmd, { rawArgs: [...rawArgs.slice(0, 4), 'never', '-t', TOKEN] })
  t.equal(result, ExitCodes.NotFound, 'still unknown after the grace period')
  t.ok(Date.now() - started >= 1000)
})

t.test('a relay that vanished is detected, not waited for forever', async (t) => {
  const relay = await startFakeRelay({ token: TOKEN, taps: [TAP], autoPong: false })
  t.teardown(() => relay.close())
  const started = Date.now()
  const once = k8stail(relay, ['--no-reconnect'])
  t.equal(await once.done, ExitCodes.Connection)
  t.ok(Date.now() - started < 2000, 'noticed within a few ping intervals')
  t.match(
    once.stderr.text(),
    /^k8stail: cannot stream from ws:\/\/127\.0\.0\.1:\d+\/taps\/shop\/shared: no response from the relay for 0\.2s\n$/,
  )

  const retrying = k8stail(relay, [])
  await until('a reconnect', () => relay.connections.length >= 3)
  retrying.stop()
  t.equal(await retrying.done, ExitCodes.Ok)
  t.match(retrying.stderr.text(), /connection lost: no response from the relay for 0\.2s; reconnecting in/)
})

t.test('server gone: first connection fails at once; later, give up after the limit', async (t) => {
  const relay = await startFakeRelay({ token: TOKEN, taps: [TAP] })
  const url = relay.url
  const run = k8stail(relay, [])
  await until('connection', () => relay.listeners(TAP) === 1)
  await relay.close()
  const started = Date.now()
  t.equal(await run.done, ExitCodes.Connection, 'reconnecting stops after giveUpAfterMs')
  t.ok(Date.now() - started < 6000)
  t.match(run.stderr.text(), /ECONNREFUSED/)
  const stdout = sink()
  const stderr = sink()
  const cmd = createTailCommand({ stdout, stderr, signal: new AbortController().signal, env: {} })
  const { result } = await runCommand(cmd, {
    rawArgs: ['shop/flow1', '--listen-addr', url, '--attach', 'shared', '-t', TOKEN],
  })
  t.equal(result, ExitCodes.Connection)
  t.match(
    stderr.text(),
    /^k8stail: cannot stream from ws:\/\/127\.0\.0\.1:\d+\/taps\/shop\/shared: connect ECONNREFUSED/,
  )
})

t.test('stream end: tap deleted (4004) exits 5; --count and --for stop cleanly', async (t) => {
  const relay = await startFakeRelay({ token: TOKEN, taps: [TAP] })
  t.teardown(() => relay.close())
  const deleted = k8stail(relay, [])
  await until('connection', () => relay.listeners(TAP) === 1)
  relay.closeTap(TAP, 4004, 'LogTap deleted')
  t.equal(await deleted.done, ExitCodes.TapFailed)
  t.equal(deleted.stderr.text(), 'k8stail: LogTap shop/shared was deleted; stream ended\n')

  await until('the deleted stream is gone', () => relay.listeners(TAP) === 0)
  const counted = k8stail(relay, ['--count', '2', '-o', 'raw'])
  await until('connection', () => relay.listeners(TAP) === 1)
  for (const n of [1, 2, 3]) relay.post(TAP, rec(n))
  t.equal(await counted.done, ExitCodes.Ok)
  t.equal(counted.stdout.text(), `${rec(1)}\n${rec(2)}\n`)
  await until('the client left', () => relay.listeners(TAP) === 0)

  const started = Date.now()
  const timed = k8stail(relay, ['--for', '300ms'])
  t.equal(await timed.done, ExitCodes.Ok)
  t.ok(Date.now() - started >= 290)
})

t.test('denied records and --tail replay', async (t) => {
  const relay = await startFakeRelay({ token: TOKEN, taps: [TAP] })
  t.teardown(() => relay.close())
  for (const n of [1, 2, 3]) relay.post(TAP, rec(n))
  const run = k8stail(relay, ['--tail', '2', '-o', 'raw'])
  await until('connection', () => relay.listeners(TAP) === 1)
  t.equal(relay.connections[0]!.query.get('tail'), '2')
  relay.deny(TAP, 'secret/db-0', 'Permission denied to access db-0 logs for test-user')
  await until('denied', () => run.stdout.text().includes('denied'))
  run.stop()
  await run.done
  t.equal(
    run.stdout.text(),
    `${rec(2)}\n${rec(3)}\n{"error":"Permission denied to access db-0 logs for test-user"}\n`,
  )
})

t.test('pure parts: resume decisions and backoff', async (t) => {
  const h = {
    type: 'hello' as const,
    tap: 'a/b',
    epoch: 'e1',
    user: 'u',
    lastSeq: 10,
    replayFrom: 0,
    resumed: true,
  }
  t.same(afterHello({ epoch: undefined, lastSeq: 0 }, h), {
    missing: undefined,
    state: { epoch: 'e1', lastSeq: 0 },
  })
  t.same(afterHello({ epoch: 'e1', lastSeq: 7 }, h), {
    missing: undefined,
    state: { epoch: 'e1', lastSeq: 7 },
  })
  t.equal(afterHello({ epoch: 'e1', lastSeq: 7 }, { ...h, resumed: false, replayFrom: 9 }).missing, 1)
  t.equal(afterHello({ epoch: 'e1', lastSeq: 7 }, { ...h, resumed: false, replayFrom: 0 }).missing, 3)
  t.same(afterHello({ epoch: 'e0', lastSeq: 7 }, { ...h, resumed: false, replayFrom: 4 }), {
    missing: 3,
    state: { epoch: 'e1', lastSeq: 0 },
  })
  t.equal(backoffMs(0, 500, 15_000, 0), 250)
  t.equal(backoffMs(0, 500, 15_000, 1), 500)
  t.equal(backoffMs(3, 500, 15_000, 1), 4000)
  t.equal(backoffMs(30, 500, 15_000, 1), 15_000, 'capped')
})
