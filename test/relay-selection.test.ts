// A listener's selection applied by the relay, over real sockets: what a listener receives is
// exactly what the reference semantics (api/selection-eval.ts, on parsed records) select, RBAC is
// decided before any selection, sampling and rate caps are told in summarised `sampled` notices,
// a bad selection is refused before the upgrade, and a LogTap's own selection combines with it.
import fc from 'fast-check'
import t from 'tap'
import { parseSelection, type SelectionSpec } from '../api/selection.ts'
import { filterPasses, project } from '../api/selection-eval.ts'
import type { DeniedMessage, HelloMessage, SampledMessage } from '../api/stream-protocol.ts'
import { StreamParamHeaders } from '../api/stream-protocol.ts'
import { encodeChunk, type FakePod, generateRecords, samplePods } from '../local-cluster/sample-records.ts'
import { connect, type StreamClient, startTestRelay, tableAuth } from './support/relay.ts'

const auth = tableAuth({ 'tok-alice': 'alice' }, { alice: ['*'] })
const TOKEN = 'tok-alice'

const withSelection = (spec: SelectionSpec | unknown, query = '') =>
  `${query ? `${query}&` : ''}selection=${encodeURIComponent(JSON.stringify(spec))}`

const allowAll: FakePod[] = [
  { namespace: 'shop', name: 'web-1', labels: { app: 'web', 'rbac/policy': 'allow' } },
  {
    namespace: 'shop',
    name: 'api-1',
    labels: { app: 'api', 'app.kubernetes.io/name': 'api', 'rbac/policy': 'allow' },
  },
]

function received(c: StreamClient): unknown[] {
  return c.records().map((r) => JSON.parse(r.raw))
}
const ofType = <T>(c: StreamClient, type: string) => c.messages.filter((m) => m.type === type) as T[]

async function refusal(url: string): Promise<{ status: number; body: string }> {
  try {
    const c = await connect(url, TOKEN)
    c.ws.close()
    return { status: 101, body: '' }
  } catch (err) {
    const e = err as { status?: number; body?: string }
    return { status: e.status ?? 0, body: e.body ?? '' }
  }
}

t.test('where, grep, exclude and fields select what the reference selects', async (t) => {
  const r = await startTestRelay({ auth })
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'tap')
  const records = generateRecords(allowAll, 40).map((rec, i) => ({
    ...rec,
    level: ['info', 'warn', 'error', 'debug'][i % 4],
    status: i % 5 === 0 ? 500 : 200,
    ...(i % 3 === 0 ? { trace: { id: `t-${i % 7}`, 'span.id': i } } : {}),
  }))
  const chunk = encodeChunk(records)
  const specs: SelectionSpec[] = [
    { where: 'level == error' },
    { where: 'kubernetes.labels["app.kubernetes.io/name"] == api && status != 500' },
    { where: 'level in [warn, error] && trace.id' },
    { where: '!trace && status == 500' },
    { where: 'kubernetes.pod_name =~ "^web-" && level not in [debug]' },
    { grep: 'order_id\\\\":\\\\"A-1' },
    { exclude: '(?i)WARN' },
    { fields: ['message', 'kubernetes.pod_name', 'trace["span.id"]'] },
    { where: 'status == 200', fields: ['kubernetes.labels', 'level'] },
  ]
  const clients = await Promise.all(specs.map((s) => connect(r.streamUrl(tap, withSelection(s)), TOKEN)))
  await r.post(tap, chunk.body, chunk.headers)
  for (const [i, spec] of specs.entries()) {
    const sel = parseSelection(spec)
    const want = records
      .map((rec, j) => ({ rec, line: chunk.lines[j]! }))
      .filter(({ rec, line }) => filterPasses(sel, rec, line))
      .map(({ rec }) => (sel.fields ? project(rec, sel.fields) : rec))
    t.ok(
      want.length > 0 && (sel.fields !== undefined || want.length < records.length),
      `${JSON.stringify(spec)}: selects some`,
    )
    const c = clients[i]!
    await c.until(() => c.records().length >= want.length)
    // The last record always arrives: all selected ones before it did.
    t.same(received(c), want, JSON.stringify(spec))
    t.match(c.messages[0], { type: 'hello', selection: { percent: 100, tap: false } })
  }
  // Projected records keep their nesting; the original bytes otherwise.
  const proj = clients[7]!
  t.same(received(proj)[0], {
    message: (records[0] as Record<string, unknown>).message,
    kubernetes: { pod_name: 'web-1' },
    trace: { 'span.id': 0 },
  })
  t.equal(clients[0]!.records()[0]!.raw, chunk.lines[2], 'unprojected records are the bytes posted')
  for (const c of clients) c.ws.close()
})

t.test('RBAC is decided on the whole record before the selection and the projection', async (t) => {
  const r = await startTestRelay({ auth })
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'tap')
  const pods = samplePods('shop') // checkout: allowed; payments, ledger: denied; cache: no rules
  const chunk = encodeChunk(generateRecords(pods, 40))
  // The projection leaves out the labels RBAC reads; the filter selects denied pods only.
  const projected = await connect(r.streamUrl(tap, withSelection({ fields: ['message'] })), TOKEN)
  const deniedOnly = await connect(
    r.streamUrl(tap, withSelection({ where: 'kubernetes.pod_name =~ "^(payments|ledger)"' })),
    TOKEN,
  )
  await r.post(tap, chunk.body, chunk.headers)
  await projected.until(() => projected.records().length === 10)
  const count = (c: StreamClient) => ofType<DeniedMessage>(c, 'denied').reduce((n, d) => n + d.count, 0)
  await projected.until(() => count(projected) === 30, 4000)
  t.same(
    received(projected),
    chunk.lines.filter((_, i) => i % 4 === 0).map((l) => ({ message: JSON.parse(l).message })),
    'only the allowed pod, projected',
  )
  await deniedOnly.until(() => count(deniedOnly) === 30, 4000)
  t.equal(deniedOnly.records().length, 0, 'a filter never lets a denied record through')
  const pods2 = new Set(ofType<DeniedMessage>(deniedOnly, 'denied').map((d) => d.pod))
  t.same([...pods2].sort(), ['shop/cache-0', 'shop/ledger-6f7b9c8d5-z9k1m', 'shop/payments-5c8d7f9b6-q7w2e'])
  t.ok(ofType(deniedOnly, 'denied').length <= 6, 'denials are summarised per pod, not one per record')
  projected.ws.close()
  deniedOnly.ws.close()
})

t.test('sampling: the share kept, key-consistent by a field, told in summarised notices', async (t) => {
  const r = await startTestRelay({ auth })
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'tap', 100_000)
  const n = 4000
  const records = generateRecords(allowAll, n).map((rec, i) => ({ ...rec, trace_id: `tr-${i % 200}` }))
  const chunk = encodeChunk(records)
  const uniform = await connect(r.streamUrl(tap, withSelection({ sample: { percent: 10 } })), TOKEN)
  const byTrace = await connect(
    r.streamUrl(tap, withSelection({ sample: { percent: 25, by: 'trace_id' } })),
    TOKEN,
  )
  await r.post(tap, chunk.body, chunk.headers)
  const told = (c: StreamClient) => ofType<SampledMessage>(c, 'sampled').reduce((s, m) => s + m.sampled, 0)
  for (const c of [uniform, byTrace]) await c.until(() => c.records().length + told(c) === n, 5000)
  t.match(uniform.messages[0], { type: 'hello', selection: { percent: 10, text: 'sample 10%' } })
  const kept = uniform.records().length
  t.ok(kept > n * 0.07 && kept < n * 0.13, `about 10% kept (${kept} of ${n})`)
  const notices = ofType<SampledMessage>(uniform, 'sampled')
  t.ok(notices.length >= 1 && notices.length <= 3, `summarised: ${notices.length} notices`)
  t.match(notices[0], { type: 'sampled', capped: 0, percent: 10 })
  const traces = new Map<string, number>()
  for (const rec of received(byTrace) as { trace_id: string }[])
    traces.set(rec.trace_id, (traces.get(rec.trace_id) ?? 0) + 1)
  t.ok(
    [...traces.values()].every((v) => v === n / 200),
    'a trace is kept whole or not at all',
  )
  t.ok(traces.size > 20 && traces.size < 80, `about a quarter of the traces (${traces.size} of 200)`)
  uniform.ws.close()
  byTrace.ws.close()
})

t.test('a per-pod rate cap keeps a quiet pod whole while a noisy one is capped', async (t) => {
  const r = await startTestRelay({ auth })
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'tap', 100_000)
  const noisy = generateRecords([allowAll[0]!], 500)
  const quiet = generateRecords([allowAll[1]!], 5)
  const chunk = encodeChunk([...noisy, ...quiet])
  const c = await connect(r.streamUrl(tap, withSelection({ podRate: 20 })), TOKEN)
  await r.post(tap, chunk.body, chunk.headers)
  const capped = () => ofType<SampledMessage>(c, 'sampled').reduce((s, m) => s + m.capped, 0)
  await c.until(() => c.records().length + capped() === 505, 5000)
  const pods = (received(c) as { kubernetes: { pod_name: string } }[]).map((x) => x.kubernetes.pod_name)
  t.equal(pods.filter((p) => p === 'api-1').length, 5, 'the quiet pod is whole')
  t.equal(pods.filter((p) => p === 'web-1').length, 20, "the noisy pod gets one second's worth")
  t.match(ofType<SampledMessage>(c, 'sampled')[0], { pods: 1, sampled: 0 })
  t.match(c.messages[0], { selection: { podRate: 20 } })
  c.ws.close()
})

t.test('a bad selection is refused before the upgrade, in one line', async (t) => {
  const r = await startTestRelay({ auth })
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'tap')
  const cases: [unknown, RegExp][] = [
    [{ where: 'level = error' }, /^selection\.where: expected an operator.* at column 7, near '= error'$/],
    [{ where: 'a == 1 || b == 2' }, /^selection\.where: there is no \|\|/],
    [{ grep: '(a+)\\1' }, /^selection\.grep: regular expression needs backtracking/],
    [{ fields: ['a..b'] }, /^selection\.fields: expected a key after "\."/],
    [{ sample: { percent: 150 } }, /^selection\.sample\.percent: a percentage between/],
    [{ podRate: 0 }, /^selection\.podRate: /],
    ['level == error', /^selection: an object expected$/],
  ]
  for (const [spec, reason] of cases) {
    const got = await refusal(r.streamUrl(tap, withSelection(spec)))
    t.equal(got.status, 400, JSON.stringify(spec))
    t.notOk(got.body.trim().includes('\n'), 'one line')
    t.match(JSON.parse(got.body), { error: 'bad-selection', reason }, JSON.stringify(spec))
  }
  // The header (what k8stail sends through the API server's proxy) is checked the same way.
  await t.rejects(
    new Promise((resolve, reject) => {
      import('ws').then(({ default: WebSocket }) => {
        const ws = new WebSocket(r.streamUrl(tap), {
          headers: {
            'X-Authorization': `Bearer ${TOKEN}`,
            [StreamParamHeaders.selection]: encodeURIComponent('{"where":"!"}'),
          },
        })
        ws.once('open', () => resolve(ws.close()))
        ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)))
        ws.once('error', reject)
      })
    }),
    { message: 'HTTP 400' },
  )
})

t.test("a LogTap's own selection combines with the listener's", async (t) => {
  const r = await startTestRelay({ auth })
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'tap')
  tap.selection = {
    key: 'k1',
    selection: parseSelection({ where: 'kubernetes.labels.app == web', fields: ['message', 'kubernetes'] }),
  }
  const records = generateRecords(allowAll, 20)
  const chunk = encodeChunk(records)
  const mine = await connect(r.streamUrl(tap, withSelection({ fields: ['kubernetes.pod_name'] })), TOKEN)
  const plain = await connect(r.streamUrl(tap), TOKEN)
  await r.post(tap, chunk.body, chunk.headers)
  await mine.until(() => mine.records().length === 10)
  await plain.until(() => plain.records().length === 10)
  t.match(mine.messages[0] as HelloMessage, {
    selection: { tap: true, text: 'where kubernetes.labels.app == "web"; fields kubernetes.pod_name' },
  })
  t.same(received(mine)[0], { kubernetes: { pod_name: 'web-1' } }, 'the narrower projection')
  t.same(received(plain)[0], { message: records[0]!.message, kubernetes: records[0]!.kubernetes })
  // A bad spec.selection refuses streams with the reason.
  r.taps.taps.set('shop/bad', {
    ...r.taps.add('shop', 'bad'),
    selection: { key: 'x', error: 'spec.selection.where: …' },
  })
  const bad = await refusal(r.streamUrl({ ...tap, name: 'bad' }))
  t.equal(bad.status, 409)
  t.match(JSON.parse(bad.body), { error: 'bad-tap-selection' })
  // A changed spec.selection: the tap's listeners are told to reconnect.
  r.taps.taps.set('shop/tap', { ...tap, selection: { key: 'k2', selection: parseSelection({ grep: 'x' }) } })
  await r.post(tap, chunk.body, chunk.headers)
  t.match(await plain.closed, { code: 4012 })
})

// The relay reads records' bytes without parsing them; whatever the record's shape (escapes,
// duplicate keys, nesting, numbers spelt differently), it must select what JSON.parse would.
t.test('property: byte-level evaluation equals the reference on parsed records', async (t) => {
  const r = await startTestRelay({ auth })
  t.teardown(() => r.close())
  const key = fc.constantFrom('a', 'b', 'level', 'x.y', 'é')
  const scalar = fc.oneof(
    fc.constantFrom('error', 'warn', 'a"b', 'é', 'x\\y', '', 'A-1'),
    fc.constantFrom(0, 1, 200, -1.5, 1e21, true, false, null),
  )
  const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    v: fc.oneof(
      { depthSize: 'small' },
      scalar,
      fc.dictionary(key, tie('v'), { maxKeys: 3 }),
      fc.array(scalar, { maxLength: 2 }),
    ),
  })).v
  const record = fc.dictionary(key, value, { maxKeys: 4 })
  // Records as fluentd might spell them: escaped unicode, spaces, a duplicate member.
  const spelling = fc.constantFrom('plain', 'escaped', 'spaced', 'duplicate')
  const spell = (rec: Record<string, unknown>, how: string): string => {
    const text = JSON.stringify({ kubernetes: { pod_name: 'p', labels: { 'rbac/policy': 'allow' } }, ...rec })
    if (how === 'escaped') return text.replace(/é/g, '\\u00e9').replace(/"error"/g, '"\\u0065rror"')
    if (how === 'spaced') return text.replace(/":/g, '" : ').replace(/,"/g, ' , "')
    if (how === 'duplicate') return `${text.slice(0, -1)},"level":"warn"}`
    return text
  }
  const predicate = fc.oneof(
    fc.constantFrom(
      'level',
      '!level',
      'level == error',
      'level != error',
      'level in [error, warn, 200, true, null]',
      'level not in ["a\\"b", é]',
      'a.b == 200',
      'a["x.y"] == error',
      'a.b =~ "^A"',
      'b !~ rr',
      '["é"] == é',
      'x.y == 1',
      '["x.y"] == ""',
      'a == 1e21',
      'b == -1.5',
    ),
  )
  const spec = fc.record(
    {
      where: fc.array(predicate, { minLength: 1, maxLength: 3 }).map((ps) => ps.join(' && ')),
      fields: fc.subarray(['a', 'a.b', 'level', '["x.y"]', 'b.a.b', 'kubernetes.pod_name'], { minLength: 1 }),
      grep: fc.constantFrom('error', 'A-1', '\\\\u00e9'),
    },
    { requiredKeys: [] },
  )
  let n = 0
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(record, spelling), { minLength: 1, maxLength: 12 }),
      spec,
      async (recs, s) => {
        const tap = r.taps.add('shop', `p${n++}`)
        const lines = recs.map(([rec, how]) => spell(rec, how))
        const sel = parseSelection(s)
        const want = lines
          .map((line) => ({ line, rec: JSON.parse(line) }))
          .filter(({ rec, line }) => filterPasses(sel, rec, line))
          .map(({ rec }) => (sel.fields ? project(rec, sel.fields) : rec))
        const c = await connect(r.streamUrl(tap, withSelection(s)), TOKEN)
        // A last record every selection passes... is not guaranteed; a plain listener marks the end.
        const end = await connect(r.streamUrl(tap), TOKEN)
        await r.post(tap, `${lines.join('\n')}\n`)
        await end.until(() => end.records().length === lines.length)
        await new Promise((resolve) => setTimeout(resolve, 20))
        c.ws.close()
        end.ws.close()
        t.same(received(c), want, `${JSON.stringify(s)} over ${lines.join(' | ')}`)
        return true
      },
    ),
    { numRuns: 60 },
  )
})
