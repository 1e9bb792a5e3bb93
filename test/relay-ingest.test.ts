// Ingest → stream over real sockets: what fluentd posts arrives byte for byte, in order, at every
// listener of that tap and nowhere else; bad input gets its documented answer.
import http from 'node:http'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { basicAuthorization } from '../api/credential.ts'
import type { SkippedMessage } from '../api/stream-protocol.ts'
import type { TapInfo } from '../controller/relay/tap-directory.ts'
import { encodeChunk, type FakePod, generateRecords } from '../local-cluster/sample-records.ts'
import { connect, startTestRelay, type TestRelay } from './support/relay.ts'

const open: FakePod[] = [
  { namespace: 'shop', name: 'web-1', labels: { 'rbac/policy': 'allow', app: 'web' } },
  {
    namespace: 'shop',
    name: 'wörker-2',
    labels: { 'rbac/policy': 'allow', note: 'quote " slash \\ tab \t ✓' },
  },
]

t.test(
  'NDJSON, JSON array and gzip arrive byte-identical, in order, at both listeners of the tap only',
  async (t) => {
    const r = await startTestRelay()
    t.teardown(() => r.close())
    const a = r.taps.add('shop', 'tap-a')
    const b = r.taps.add('shop', 'tap-b')
    const a1 = await connect(r.streamUrl(a), 'token-alice')
    const a2 = await connect(r.streamUrl(a), 'token-alice')
    const b1 = await connect(r.streamUrl(b), 'token-alice')
    const chunks = [
      encodeChunk(generateRecords(open, 50, 0)),
      encodeChunk(generateRecords(open, 50, 50), { jsonArray: true }),
      encodeChunk(generateRecords(open, 50, 100), { compress: 'gzip' }),
      encodeChunk(generateRecords(open, 50, 150), { jsonArray: true, compress: 'gzip' }),
    ]
    for (const c of chunks) {
      const res = await r.post(a, c.body, c.headers)
      t.equal(res.status, 200)
      t.same(await res.json(), { records: 50, skipped: 0 })
    }
    const want = chunks.flatMap((c) => c.lines)
    for (const c of [a1, a2]) {
      await c.until(() => c.records().length === want.length)
      t.same(
        c.records().map((x) => x.raw),
        want,
        'original bytes in posting order',
      )
      t.same(
        c.records().map((x) => x.seq),
        want.map((_, i) => i + 1),
        'sequence numbers 1..n',
      )
      t.match(c.messages[0], { type: 'hello', tap: 'shop/tap-a', user: 'alice', lastSeq: 0, resumed: false })
    }
    // tap-b saw its hello and nothing else, even after a record posted to tap-b afterwards arrives.
    const own = encodeChunk(generateRecords(open, 1, 999))
    t.equal((await r.post(b, own.body, own.headers)).status, 200)
    await b1.until((m) => m.length === 2)
    t.same(
      b1.records().map((x) => x.raw),
      own.lines,
    )
    for (const c of [a1, a2, b1]) c.ws.close()
  },
)

t.test(
  'a syslog-ng batch (JSON lines joined by newlines, none at the end) arrives byte-identical',
  async (t) => {
    const r = await startTestRelay()
    t.teardown(() => r.close())
    const tap = r.taps.add('shop', 'tap-sng')
    const c = await connect(r.streamUrl(tap), 'token-alice')
    // What the tap's SyslogNGOutput makes syslog-ng post: fluent-bit's lines (with its `ts`) as they
    // came, the default delimiter between them, the Content-Type the output sets.
    const lines = generateRecords(open, 5, 0).map((rec) =>
      JSON.stringify({ ts: '2026-11-30T12:00:00.000Z', ...rec }),
    )
    const res = await r.post(tap, lines.join('\n'), { 'content-type': 'application/x-ndjson' })
    t.equal(res.status, 200)
    t.same(await res.json(), { records: 5, skipped: 0 })
    await c.until(() => c.records().length === 5)
    t.same(
      c.records().map((x) => x.raw),
      lines,
      'each record as syslog-ng posted it, the last one too',
    )
  },
)

t.test('bad input gets the documented answer and the relay keeps serving', async (t) => {
  const r = await startTestRelay({ limits: { maxBodyBytes: 64 * 1024, maxDecompressedBytes: 256 * 1024 } })
  t.teardown(() => r.close())
  const a = r.taps.add('shop', 'tap-a')
  const c = await connect(r.streamUrl(a), 'token-alice')
  const good = encodeChunk(generateRecords(open, 2))

  // A malformed line is skipped and counted; the lines around it are delivered.
  const mixed = `${good.lines[0]}\n{"broken": \n[1,2]\n${good.lines[1]}\n`
  let res = await r.post(a, mixed)
  t.equal(res.status, 200)
  t.same(await res.json(), { records: 2, skipped: 2 })
  await c.until(() => c.records().length === 2 && c.messages.some((m) => m.type === 'skipped'))
  t.same(
    c.records().map((x) => x.raw),
    good.lines,
  )
  t.equal((c.messages.find((m) => m.type === 'skipped') as SkippedMessage).count, 2)

  // A record that is not UTF-8 is skipped; the rest of the body is checked record by record.
  const notUtf8 = Buffer.concat([
    Buffer.from(`${good.lines[0]}\n{"m":"`),
    Buffer.from([0xc3, 0x28]),
    Buffer.from(`"}\n${good.lines[1]}\n`),
  ])
  res = await r.post(a, notUtf8)
  t.same(await res.json(), { records: 2, skipped: 1 }, 'invalid UTF-8 in one record')
  await c.until(() => c.records().length === 4)

  res = await r.post(a, Buffer.alloc(65 * 1024, 0x20))
  t.equal(res.status, 413, 'oversize body')
  t.match(await res.json(), { error: 'too-large' })

  const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20))
  t.ok(bomb.length < 64 * 1024, 'the bomb itself is small')
  res = await r.post(a, bomb, { 'content-encoding': 'gzip' })
  t.equal(res.status, 413, 'gzip bomb')
  t.match(await res.json(), { error: 'too-large' })

  res = await r.post(a, good.body, { 'content-type': 'text/plain' })
  t.equal(res.status, 415, 'wrong content type')
  t.match(await res.json(), { error: 'unsupported-media-type' })

  res = await r.post(a, good.body, { 'content-encoding': 'br' })
  t.equal(res.status, 415, 'unknown content encoding')

  res = await r.post(a, Buffer.from('not gzip'), { 'content-encoding': 'gzip' })
  t.equal(res.status, 400, 'corrupt gzip')

  res = await r.post(a, good.body, { authorization: basicAuthorization(a.name, 'forged') })
  t.equal(res.status, 403, 'bad credential')
  t.match(await res.json(), { error: 'bad-credential' })

  res = await r.post({ ...a, name: 'nope' }, good.body)
  t.equal(res.status, 404, 'unknown tap')

  // Still serving: the next good chunk arrives.
  res = await r.post(a, good.body)
  t.equal(res.status, 200)
  await c.until(() => c.records().length === 6)
  const metrics = await r.registry.metrics()
  t.match(metrics, /log_socket_records_skipped_total\{namespace="shop",name="tap-a"\} 3/)
  t.match(metrics, /log_socket_records_received_total\{namespace="shop",name="tap-a"\} 6/)
  t.match(metrics, /log_socket_ingest_requests_total\{code="413"\} 2/)
  t.notMatch(metrics, /dropped_total\{[^}]*\} [1-9]/, 'nothing dropped')
  c.ws.close()
})

t.test('a malformed JSON array element is skipped and the elements after it are delivered', async (t) => {
  const r = await startTestRelay()
  t.teardown(() => r.close())
  const a = r.taps.add('shop', 'tap-a')
  const c = await connect(r.streamUrl(a), 'token-alice')
  const good = encodeChunk(generateRecords(open, 3)).lines
  // out_http's json_array shape with the second element cut short.
  const body = `[${good[0]}\n,{"broken":\n,${good[1]}\n,${good[2]}\n]`
  const res = await r.post(a, body, { 'content-type': 'application/json' })
  t.same(await res.json(), { records: 3, skipped: 1 })
  await c.until((m) => c.records().length === 3 && m.some((x) => x.type === 'skipped'))
  t.same(
    c.records().map((x) => x.raw),
    good,
    'the three good records, byte for byte, in order',
  )
  t.match(
    c.messages.find((m) => m.type === 'skipped'),
    { type: 'skipped', count: 1 },
  )
  // The same lines as NDJSON give the same answer.
  const ndjson = await r.post(a, `${good[0]}\n{"broken":\n${good[1]}\n${good[2]}\n`)
  t.same(await ndjson.json(), { records: 3, skipped: 1 })
  c.ws.close()
})

// A POST whose body the test writes piece by piece, as a slow or large upload arrives.
function slowPost(
  r: TestRelay,
  tap: TapInfo,
  headers: Record<string, string | number>,
): {
  write(piece: string): void
  end(): Promise<{ status: number; body: unknown }>
  answer: Promise<{ status: number; body: unknown }> // without ending the body
  destroy(): void // the poster goes away mid-body
} {
  const req = http.request(r.ingestUrl(tap), {
    method: 'POST',
    headers: {
      'content-type': 'application/x-ndjson',
      authorization: basicAuthorization(tap.name, r.credential(tap)),
      ...headers,
    },
  })
  const answer = new Promise<{ status: number; body: unknown }>((resolve, reject) => {
    req.on('response', (res) => {
      const parts: Buffer[] = []
      res.on('data', (d: Buffer) => parts.push(d))
      res.on('end', () =>
        resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(parts).toString()) }),
      )
    })
    req.on('error', reject)
  })
  req.flushHeaders()
  return {
    write: (piece) => req.write(piece),
    end: () => {
      req.end()
      return answer
    },
    answer,
    destroy: () => req.destroy(),
  }
}

t.test('NDJSON is forwarded while the chunk is still arriving', async (t) => {
  const r = await startTestRelay()
  t.teardown(() => r.close())
  const a = r.taps.add('shop', 'tap-a')
  const c = await connect(r.streamUrl(a), 'token-alice')
  const lines = generateRecords(open, 4, 0).map((x) => JSON.stringify(x))
  const body = `${lines.join('\n')}\n`
  const cut = lines[0]!.length + 1 + Math.floor(lines[1]!.length / 2) // in the middle of the second line
  const post = slowPost(r, a, { 'content-length': Buffer.byteLength(body) })
  post.write(body.slice(0, cut))
  await c.until(() => c.records().length === 1)
  t.same(
    c.records().map((x) => x.raw),
    [lines[0]],
    'the first record is out before the chunk is complete',
  )
  post.write(body.slice(cut, -10))
  await c.until(() => c.records().length === 3)
  post.write(body.slice(-10))
  t.same(await post.end(), { status: 200, body: { records: 4, skipped: 0 } })
  await c.until(() => c.records().length === 4)
  t.same(
    c.records().map((x) => x.raw),
    lines,
    'lines cut by pieces arrive whole, in order',
  )

  // A last line without a newline is a record too.
  const tail = slowPost(r, a, { 'content-length': Buffer.byteLength(lines[0]!) })
  tail.write(lines[0]!)
  t.same(await tail.end(), { status: 200, body: { records: 1, skipped: 0 } })
  await c.until(() => c.records().length === 5)
  c.ws.close()
})

t.test('a streamed chunk whose tap goes away mid-body stops being forwarded and gets 404', async (t) => {
  const r = await startTestRelay()
  t.teardown(() => r.close())
  const a = r.taps.add('shop', 'tap-a')
  const c = await connect(r.streamUrl(a), 'token-alice')
  const lines = generateRecords(open, 2, 0).map((x) => JSON.stringify(x))
  const body = `${lines.join('\n')}\n`
  const post = slowPost(r, a, { 'content-length': Buffer.byteLength(body) })
  post.write(`${lines[0]}\n`)
  await c.until(() => c.records().length === 1)
  r.taps.remove('shop', 'tap-a')
  r.taps.add('shop', 'tap-a') // recreated under the same name: a different tap
  post.write(`${lines[1]}\n`)
  const answer = await post.end()
  t.equal(answer.status, 404)
  t.match(answer.body, { error: 'unknown-tap' })
  t.equal(c.records().length, 1, 'nothing after the deletion reached the old listener')
})

t.test('a poster that goes away mid-body leaves the relay serving, with what had arrived', async (t) => {
  const r = await startTestRelay({ limits: { maxInflightChunks: 1 } })
  t.teardown(() => r.close())
  const a = r.taps.add('shop', 'tap-a')
  const c = await connect(r.streamUrl(a), 'token-alice')
  const lines = generateRecords(open, 2, 0).map((x) => JSON.stringify(x))
  const gone = slowPost(r, a, { 'content-length': 100_000 })
  gone.answer.catch(() => {}) // the socket is destroyed below: no answer comes
  gone.write(`${lines[0]}\n${lines[1]!.slice(0, 20)}`)
  await c.until(() => c.records().length === 1)
  gone.destroy()
  // The only in-flight slot is freed once the relay sees the abort: the next chunk is taken.
  let answer: { status: number; body: unknown } = { status: 0, body: null }
  for (let i = 0; i < 40; i++) {
    const next = slowPost(r, a, { 'content-length': Buffer.byteLength(lines[1]!) })
    next.write(lines[1]!)
    answer = await next.end()
    if (!(answer.body as { dropped?: boolean }).dropped) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.same(answer, { status: 200, body: { records: 1, skipped: 0 } })
  await c.until(() => c.records().length === 2)
  t.same(
    c.records().map((x) => x.raw),
    lines,
    'the complete line of the aborted body was forwarded, its cut line was not',
  )
  c.ws.close()
})

t.test('size limits: refused from the header when declared, after reading when chunked', async (t) => {
  const r = await startTestRelay({ limits: { maxBodyBytes: 4096 } })
  t.teardown(() => r.close())
  const a = r.taps.add('shop', 'tap-a')
  const c = await connect(r.streamUrl(a), 'token-alice')
  const line = JSON.stringify(generateRecords(open, 1, 0)[0])
  // Declared too large: answered before the body is sent at all.
  const early = await slowPost(r, a, { 'content-length': 5000 }).answer
  t.equal(early.status, 413, 'a declared size over the limit is refused without reading the body')
  // Chunked (no Content-Length): read whole first, so an oversize body forwards nothing.
  const chunked = slowPost(r, a, { 'transfer-encoding': 'chunked' })
  for (let n = 0; n < 4096; n += line.length + 1) chunked.write(`${line}\n`)
  const answer = await chunked.end()
  t.equal(answer.status, 413)
  t.match(answer.body, { error: 'too-large' })
  // A small chunked body is taken whole.
  const small = slowPost(r, a, { 'transfer-encoding': 'chunked' })
  small.write(`${line}\n`)
  t.same(await small.end(), { status: 200, body: { records: 1, skipped: 0 } })
  await c.until(() => c.records().length === 1)
  t.equal(c.records().length, 1, 'only the accepted chunk was forwarded')
  c.ws.close()
})

t.test(
  'overloaded: chunks are answered 200 and dropped, never refused or blocked, and the loss is told',
  async (t) => {
    const r = await startTestRelay({ limits: { maxInflightChunks: 0 } })
    t.teardown(() => r.close())
    const a = r.taps.add('shop', 'tap-a')
    const c = await connect(r.streamUrl(a), 'token-alice')
    const good = encodeChunk(generateRecords(open, 3))
    const res = await r.post(a, good.body, good.headers)
    t.equal(res.status, 200)
    t.same(await res.json(), { dropped: 3 })
    await c.until((m) => m.some((x) => x.type === 'dropped'))
    t.same(c.messages.slice(1), [
      { type: 'dropped', count: 3, fromSeq: 1, toSeq: 3, reason: 'relay-overloaded' },
    ])
    const metrics = await r.registry.metrics()
    t.match(
      metrics,
      /log_socket_ingest_chunks_dropped_total\{namespace="shop",name="tap-a",cause="tap-slots"\} 1/,
    )
    t.match(
      metrics,
      /log_socket_records_dropped_total\{namespace="shop",name="tap-a",reason="relay-overloaded"\} 3/,
    )
    c.ws.close()
  },
)

t.test('ops: healthz, readyz follows the tap directory, metrics in Prometheus text', async (t) => {
  const r = await startTestRelay()
  t.teardown(() => r.close())
  const ops = r.relay.addresses.ops
  t.equal((await fetch(`${ops}/healthz`)).status, 200)
  t.equal((await fetch(`${ops}/readyz`)).status, 200)
  r.taps.isSynced = false
  const notReady = await fetch(`${ops}/readyz`)
  t.equal(notReady.status, 503)
  t.match(await notReady.text(), /not synced/)
  const a = r.taps.add('shop', 'tap-a')
  const c = await connect(r.streamUrl(a), 'token-alice')
  const m = await fetch(`${ops}/metrics`)
  t.match(m.headers.get('content-type'), /text\/plain/)
  const text = await m.text()
  t.match(text, /log_socket_listeners\{namespace="shop",name="tap-a"\} 1/)
  t.notMatch(text, /alice/, 'no user names in metrics')
  c.ws.close()
})
