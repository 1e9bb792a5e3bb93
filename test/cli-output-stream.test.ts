// What each output mode prints, over real sockets: the relay in-process on 127.0.0.1, k8stail
// in-process (`--listen-addr --attach`) printing to a sink that keeps every byte. Raw mode moves a
// record's bytes from the frame to stdout without decoding them, so records with awkward bytes
// (escapes, non-ASCII, very long lines, frames split across TCP reads) must come out exactly as
// posted; json and pretty must print what parsing each frame would give.
import { runCommand } from 'citty'
import t, { type Test } from 'tap'
import { createTailCommand } from '../cli/commands/tail.ts'
import { ExitCodes } from '../cli/errors.ts'
import { prettyParts } from '../cli/output/pretty.ts'
import { type FakeRelay, startFakeRelay } from './support/fake-relay.ts'
import { startTestRelay, type TestRelay } from './support/relay.ts'
import { until } from './support/until.ts'

const K = '"kubernetes":{"namespace_name":"shop","pod_name":"web-1","labels":{"rbac/policy":"allow"}}'
const DENIED_K =
  '"kubernetes":{"namespace_name":"vault","pod_name":"vault-0","labels":{"rbac/policy":"deny"}}'
const LONG = 'x'.repeat(300_000)
const LONG_UNICODE = '€😀'.repeat(40_000) // 280 KB of multi-byte text: TCP reads cut characters

// Posted lines, each as fluentd might have written it.
const AWKWARD = [
  `{"log":"tab\\t quote\\" backslash\\\\ slash\\/ nl\\n cr\\r nul\\u0000 pair\\ud83d\\ude00 bmp\\u20ac",${K}}`,
  `{"log":"naïve café ✓ 日本語 😀 line\u2028sep\u2029end","stream":"stdout",${K}}`,
  `{ "log" : "odd spacing" , "big": 12345678901234567890, "one": 1.0, "neg": -0, "exp": 1E+2 ,${K} }`,
  `{"log":"looks like a frame: {\\"type\\":\\"record\\",\\"seq\\":1,\\"record\\":{}} and a brace }",${K}}`,
  `{"message":"${LONG}",${K}}`,
  `{"message":"${LONG_UNICODE}","time":"2026-11-27T05:00:01.5Z",${K}}`,
  `{"nested":{"a":[1,{"b":null}],"c":true},"log":"ends with a backslash \\\\",${K}}`,
  `{"log":"${'small record '.repeat(3)}",${K}}`,
]
const DENIED_LINE = `{"log":"secret",${DENIED_K}}`

function sink() {
  const chunks: Buffer[] = []
  return {
    isTTY: false,
    write: (c: string | Uint8Array) => chunks.push(Buffer.from(c)),
    bytes: () => Buffer.concat(chunks),
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

// Starts k8stail on a fresh tap of `r`, posts `lines` (in one chunk, and again one line per
// chunk) and returns what it printed once the last record arrived.
async function streamed(t: Test, r: TestRelay, mode: string, lines: string[], extra: string[] = []) {
  const tap = r.taps.add('shop', 'tap')
  const url = r.relay.addresses.stream.replace(/^http/, 'ws')
  const run = k8stail(url, ['-o', mode, ...extra])
  await until('k8stail connected', () => r.relay.context.hub.listeners().length === 1)
  const end = `{"log":"END",${K}}`
  const chunk = async (body: string) => t.equal((await r.post(tap, body)).status, 200)
  await chunk(`${lines.join('\n')}\n`)
  for (const l of lines) await chunk(`${l}\n`)
  await chunk(`${end}\n`)
  await until('the last record', () => run.stdout.text().includes('END'))
  run.stop()
  t.equal(await run.done, ExitCodes.Ok)
  t.equal(run.stderr.text(), '', 'nothing on stderr')
  await until('k8stail gone', () => r.relay.context.hub.listeners().length === 0)
  r.taps.remove('shop', 'tap')
  return { out: run.stdout.bytes(), posted: [...lines, ...lines, end] }
}

t.test('raw: every record byte-identical to the posted line, denied as the error object', async (t) => {
  const r = await startTestRelay()
  t.teardown(() => r.close())
  const lines = [...AWKWARD.slice(0, 3), DENIED_LINE, ...AWKWARD.slice(3)]
  const { out, posted } = await streamed(t, r, 'raw', lines)
  const denied = '{"error":"Permission denied to access vault/vault-0 logs for alice"}'
  const expected = posted.map((l) => (l === DENIED_LINE ? denied : l))
  t.ok(out.equals(Buffer.from(`${expected.join('\n')}\n`)), 'stdout is exactly the posted bytes')
  t.equal(out.toString().split('\n').length, expected.length + 1, 'one line per record')
})

t.test('json: the envelopes as received; --fields parses and projects', async (t) => {
  const r = await startTestRelay()
  t.teardown(() => r.close())
  const { out, posted } = await streamed(t, r, 'json', AWKWARD)
  const [hello, ...lines] = out.toString().trimEnd().split('\n')
  t.match(JSON.parse(hello!), { type: 'hello', tap: 'shop/tap', user: 'alice' })
  t.same(
    lines,
    posted.map((p, i) => `{"type":"record","seq":${i + 1},"record":${p}}`),
    'each frame as the relay sent it, record bytes untouched',
  )
  const fields = ['--fields', 'kubernetes.pod_name,big,log']
  const projected = await streamed(t, r, 'json', AWKWARD.slice(2, 4), fields)
  t.same(
    projected.out
      .toString()
      .trimEnd()
      .split('\n')
      .slice(1, 3)
      .map((l) => JSON.parse(l)),
    [
      {
        type: 'record',
        seq: 1,
        record: { kubernetes: { pod_name: 'web-1' }, big: 12345678901234567000, log: 'odd spacing' },
      },
      {
        type: 'record',
        seq: 2,
        record: { kubernetes: { pod_name: 'web-1' }, log: JSON.parse(AWKWARD[3]!).log },
      },
    ],
  )
})

t.test('pretty: one line per record, as the parsed record says', async (t) => {
  const r = await startTestRelay()
  t.teardown(() => r.close())
  const { out, posted } = await streamed(t, r, 'pretty', AWKWARD)
  // A record without a time of its own shows when it arrived: not comparable, so normalised.
  const arrival = (text: string) =>
    text.replace(/^(\d\d:\d\d:\d\d\.\d\d\d|--:--:--\.---) (?=shop\/web-1)/gm, (m, time) =>
      time === '05:00:01.500' ? m : 'ARRIVED ',
    )
  const expected = posted.map((p) => {
    const w = prettyParts(JSON.parse(p))
    return `${w.time} ${w.source} ${w.message}\n`
  })
  t.equal(arrival(out.toString()), arrival(expected.join('')), 'what the parsed record says, in order')
  t.match(
    out.toString(),
    /^\d\d:\d\d:\d\d\.\d\d\d shop\/web-1 naïve café ✓ 日本語 😀 line\u2028sep\u2029end$/m,
  )
  t.match(out.toString(), /^05:00:01\.500 shop\/web-1 (€😀){40000}$/m)
})

t.test('raw and --grep: the filter sees the decoded record text', async (t) => {
  const r = await startTestRelay()
  t.teardown(() => r.close())
  const { out } = await streamed(t, r, 'raw', AWKWARD, ['--grep', '日本語|END'])
  t.equal(out.toString(), `${AWKWARD[1]}\n${AWKWARD[1]}\n{"log":"END",${K}}\n`)
})

// The relay writes many frames per TCP write; here every frame is cut into pieces that arrive
// in separate reads, cutting the header, the envelope and multi-byte characters.
t.test('frames split across TCP reads come out whole and unchanged', async (t) => {
  const relay: FakeRelay = await startFakeRelay({ token: 'token-alice', taps: ['shop/tap'] })
  t.teardown(() => relay.close())
  const run = k8stail(relay.url, ['-o', 'raw'])
  await until('connection', () => relay.listeners('shop/tap') === 1)
  const lines = [AWKWARD[0]!, AWKWARD[1]!, AWKWARD[5]!, AWKWARD[3]!]
  for (const l of lines) await relay.postInPieces('shop/tap', l, [1, 2, 7, 25, 26, 40, 1000, 70_000])
  await until('all records', () => run.stdout.text().split('\n').length === lines.length + 1)
  run.stop()
  t.equal(await run.done, ExitCodes.Ok)
  t.ok(run.stdout.bytes().equals(Buffer.from(`${lines.join('\n')}\n`)), 'byte-identical')
})
