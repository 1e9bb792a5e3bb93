// Ingest under failing and hostile senders, over real sockets: stalled posters lose their slot
// and never take the capacity other taps (or other senders) need, and every record the relay
// drops at ingest is told to the tap's listeners with a count.
import http from 'node:http'
import t from 'tap'
import { basicAuthorization } from '../api/credential.ts'
import type { DeniedMessage, DroppedMessage, StreamMessage } from '../api/stream-protocol.ts'
import type { TapInfo } from '../controller/relay/tap-directory.ts'
import { encodeChunk, type FakePod, generateRecords } from '../local-cluster/sample-records.ts'
import { connect, startTestRelay, type TestRelay } from './support/relay.ts'

const pods: FakePod[] = [
  { namespace: 'shop', name: 'web-1', labels: { 'rbac/policy': 'allow' } },
  { namespace: 'shop', name: 'db-0', labels: { 'rbac/policy': 'deny' } },
]

// A poster that sends its headers and ten bytes of a 100 kB body, then nothing: a half-open
// connection, or a sender stuck behind a partition. `ended` says how the relay let it go.
function stalledPoster(r: TestRelay, tap: TapInfo, localAddress = '127.0.0.1') {
  const req = http.request(r.ingestUrl(tap), {
    method: 'POST',
    agent: false,
    localAddress,
    headers: {
      'content-type': 'application/x-ndjson',
      'content-length': 100_000,
      authorization: basicAuthorization(tap.name, r.credential(tap)),
    },
  })
  const ended = new Promise<string>((resolve) => {
    req.on('response', (res) => {
      res.resume()
      resolve(`answered ${res.statusCode}`)
    })
    req.on('error', () => resolve('connection closed'))
    req.on('close', () => resolve('connection closed'))
  })
  req.write('{"message":')
  return { ended, destroy: () => req.destroy() }
}

// out_http's way: one keep-alive connection per flush thread, NDJSON with a Content-Length.
function fluentdPoster(r: TestRelay, tap: TapInfo, localAddress = '127.0.0.1') {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress })
  return {
    post(body: Buffer): Promise<{ status: number; body: unknown }> {
      return new Promise((resolve, reject) => {
        const req = http.request(r.ingestUrl(tap), {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/x-ndjson',
            'content-length': body.length,
            authorization: basicAuthorization(tap.name, r.credential(tap)),
          },
        })
        req.on('response', (res) => {
          const parts: Buffer[] = []
          res.on('data', (d: Buffer) => parts.push(d))
          res.on('end', () =>
            resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(parts).toString()) }),
          )
        })
        req.on('error', reject)
        req.end(body)
      })
    },
    close: () => agent.destroy(),
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// What a listener was given, by kind of message.
function tally(messages: StreamMessage[]): { records: number; denied: number; dropped: DroppedMessage[] } {
  let records = 0
  let denied = 0
  const dropped: DroppedMessage[] = []
  for (const m of messages) {
    if (m.type === 'record') records++
    else if (m.type === 'denied') denied += (m as DeniedMessage).count
    else if (m.type === 'dropped') dropped.push(m)
  }
  return { records, denied, dropped }
}

t.test(
  '64 stalled posters on one tap: another tap keeps being served, and they lose their slots',
  async (t) => {
    const r = await startTestRelay({ limits: { bodyIdleMs: 5000 } })
    t.teardown(() => r.close())
    const stuck = r.taps.add('shop', 'stuck')
    const busy = r.taps.add('shop', 'busy')
    const watcher = await connect(r.streamUrl(stuck), 'token-alice')
    const listener = await connect(r.streamUrl(busy), 'token-alice')

    const started = Date.now()
    const stalled = Array.from({ length: 64 }, () => stalledPoster(r, stuck))
    t.teardown(() => {
      for (const s of stalled) s.destroy()
    })
    let cut = 0
    for (const s of stalled) void s.ended.then(() => cut++)
    await sleep(200)

    // Meanwhile the other tap's fluentd posts chunk after chunk: every one is taken.
    const fluentd = fluentdPoster(r, busy)
    t.teardown(() => fluentd.close())
    const lines: string[] = []
    for (let i = 0; i < 10; i++) {
      const c = encodeChunk(generateRecords(pods.slice(0, 1), 100, i * 100))
      t.same(await fluentd.post(c.body), { status: 200, body: { records: 100, skipped: 0 } }, `chunk ${i}`)
      lines.push(...c.lines)
    }
    t.equal(cut, 0, 'all of it while the stalled posters still held on')
    await listener.until(() => listener.records().length === 1000)
    t.same(
      listener.records().map((x) => x.raw),
      lines,
      'the other tap listener got every record',
    )

    // A chunk for the stalled tap itself finds its share taken: dropped, counted, and told.
    const own = encodeChunk(generateRecords(pods.slice(0, 1), 7))
    t.same(await fluentdPoster(r, stuck).post(own.body), { status: 200, body: { dropped: 7 } })
    await watcher.until((m) => m.some((x) => x.type === 'dropped'))
    t.match(tally(watcher.messages).dropped, [{ count: 7, reason: 'relay-overloaded' }])
    // (The stalled chunks themselves are never answered, so never counted as dropped: cut off,
    // fluentd would send them again.)

    // The stalled posters are cut off a moment after they stop sending.
    const endings = await Promise.all(stalled.map((s) => s.ended))
    const took = Date.now() - started
    t.same(new Set(endings), new Set(['connection closed']), 'each stalled poster lost its connection')
    t.ok(took >= 5000 && took < 15_000, `after the body deadline (${took} ms)`)
    const metrics = await r.registry.metrics()
    t.match(metrics, /log_socket_ingest_body_timeouts_total\{namespace="shop",name="stuck"\} 64/)
    t.match(
      metrics,
      /log_socket_ingest_chunks_dropped_total\{namespace="shop",name="stuck",cause="tap-slots"\} 1/,
    )
    t.notMatch(metrics, /log_socket_ingest_chunks_dropped_total\{namespace="shop",name="busy"/)

    // And the tap is served again.
    const again = encodeChunk(generateRecords(pods.slice(0, 1), 3))
    t.same(await fluentdPoster(r, stuck).post(again.body), { status: 200, body: { records: 3, skipped: 0 } })
    watcher.ws.close()
    listener.ws.close()
  },
)

t.test('one sender stalled on many taps leaves room for another sender', async (t) => {
  const r = await startTestRelay({ limits: { bodyIdleMs: 1500 } })
  t.teardown(() => r.close())
  // 8 taps × 5 stalled posters from one address: more than its share (32 of 64 slots).
  const stalled = Array.from({ length: 8 }, (_, i) => r.taps.add('shop', `t${i}`)).flatMap((tap) =>
    Array.from({ length: 5 }, () => stalledPoster(r, tap)),
  )
  t.teardown(() => {
    for (const s of stalled) s.destroy()
  })
  await sleep(500)
  const other = r.taps.add('shop', 'other')
  const chunk = encodeChunk(generateRecords(pods.slice(0, 1), 10))
  t.same(
    await fluentdPoster(r, other, '127.0.0.2').post(chunk.body),
    { status: 200, body: { records: 10, skipped: 0 } },
    'another sender (127.0.0.2) is served',
  )
  t.same(
    await fluentdPoster(r, other).post(chunk.body),
    { status: 200, body: { dropped: 10 } },
    'the stalled sender itself gets no more than its share',
  )
  t.match(
    await r.registry.metrics(),
    /log_socket_ingest_chunks_dropped_total\{namespace="shop",name="other",cause="sender-slots"\} 1/,
  )
})

t.test('a burst beyond capacity: the listener is told exactly what it lost', async (t) => {
  const r = await startTestRelay({ limits: { maxInflightChunks: 4 } })
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'burst', 100)
  const c = await connect(r.streamUrl(tap), 'token-alice')
  const chunks = Array.from({ length: 40 }, (_, i) => encodeChunk(generateRecords(pods, 100, i * 100)))
  // All 40 in flight at once: each body arrives in two halves, the second 300 ms after connecting.
  const answers = await Promise.all(
    chunks.map(
      (chunk) =>
        new Promise<{ records?: number; dropped?: number }>((resolve, reject) => {
          const req = http.request(r.ingestUrl(tap), {
            method: 'POST',
            agent: false,
            headers: {
              'content-type': 'application/x-ndjson',
              'content-length': chunk.body.length,
              authorization: basicAuthorization(tap.name, r.credential(tap)),
            },
          })
          req.on('response', (res) => {
            t.equal(res.statusCode, 200, 'never refused', { diagnostic: false })
            const parts: Buffer[] = []
            res.on('data', (d: Buffer) => parts.push(d))
            res.on('end', () => resolve(JSON.parse(Buffer.concat(parts).toString())))
          })
          req.on('error', reject)
          const half = chunk.body.length >> 1
          req.write(chunk.body.subarray(0, half))
          // The rest once every poster has had time to connect and send its first half.
          req.on('socket', (socket) =>
            socket.once('connect', () => setTimeout(() => req.end(chunk.body.subarray(half)), 300)),
          )
        }),
    ),
  )
  const taken = answers.reduce((n, a) => n + (a.records ?? 0), 0)
  const dropped = answers.reduce((n, a) => n + (a.dropped ?? 0), 0)
  t.equal(taken + dropped, 4000, 'every record is either taken or counted as dropped')
  t.ok(dropped > 0, `the burst was more than the relay takes at once (${dropped} dropped)`)
  await c.until((m) => {
    const x = tally(m)
    return x.records + x.denied + x.dropped.reduce((n, d) => n + d.count, 0) === 4000
  }, 10_000)
  const got = tally(c.messages)
  t.equal(
    got.dropped.reduce((n, d) => n + d.count, 0),
    dropped,
    'the listener was told of every dropped record',
  )
  t.ok(
    got.dropped.every((d) => d.reason === 'relay-overloaded' && d.count === d.toSeq - d.fromSeq + 1),
    'as relay-overloaded, with the sequence numbers they took',
  )
  t.equal(got.records + got.denied, taken, 'and given every record that was taken')
  t.match(
    await r.registry.metrics(),
    new RegExp(
      `log_socket_records_dropped_total\\{namespace="shop",name="burst",reason="relay-overloaded"\\} ${dropped}\\n`,
    ),
  )
  c.ws.close()
})

t.test(
  'a dropped chunk of more records than the ring holds: all are told, the ring stays bounded',
  async (t) => {
    const r = await startTestRelay({ limits: { maxInflightChunks: 0, queueRecords: 1000 } })
    t.teardown(() => r.close())
    const tap = r.taps.add('shop', 'big', 100)
    const c = await connect(r.streamUrl(tap), 'token-alice')
    const lines = 30_000
    const res = await r.post(tap, '{}\n'.repeat(lines))
    t.same(await res.json(), { dropped: lines })
    await c.until((m) => tally(m).dropped.reduce((n, d) => n + d.count, 0) === lines)
    t.same(
      tally(c.messages).dropped.map((d) => [d.fromSeq, d.toSeq]),
      [
        [1, 29_000],
        [29_001, 30_000],
      ],
      'every sequence number told once, in order',
    )
    // A client replaying the tap's last 100 records finds them dropped too, and the tap serves on.
    const late = await connect(r.streamUrl(tap, 'tail=100'), 'token-alice')
    await late.until((m) => m.some((x) => x.type === 'dropped'))
    t.match(late.messages, [
      { type: 'hello', lastSeq: lines, replayFrom: lines - 99 },
      { type: 'dropped', fromSeq: lines - 99, toSeq: lines, count: 100, reason: 'relay-overloaded' },
    ])
    c.ws.close()
    late.ws.close()
  },
)
