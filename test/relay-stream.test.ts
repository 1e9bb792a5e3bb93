// Streams over real sockets: refusals before the upgrade, resume/tail, slow and dead clients,
// tap deletion and graceful shutdown.
import t from 'tap'
import type { DroppedMessage } from '../api/stream-protocol.ts'
import type { TapCounters } from '../controller/relay/tap-status.ts'
import { encodeChunk, type FakePod, generateRecords } from '../local-cluster/sample-records.ts'
import { connect, startTestRelay, tableAuth } from './support/relay.ts'

const pods: FakePod[] = [{ namespace: 'shop', name: 'web-1', labels: { 'rbac/policy': 'allow' } }]
const auth = tableAuth(
  { 'tok-alice': 'alice', 'tok-eve': 'eve', 'tok-carol': 'carol' },
  { alice: ['*'], carol: ['shop/other'] },
)

async function refusal(url: string, token?: string): Promise<{ status: number; body: string }> {
  try {
    const c = await connect(url, token)
    c.ws.close()
    return { status: 101, body: '' }
  } catch (err) {
    const e = err as { status?: number; body?: string }
    return { status: e.status ?? 0, body: e.body ?? '' }
  }
}

t.test('refused before the upgrade with a status and a one-line JSON reason', async (t) => {
  const r = await startTestRelay({ auth })
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'tap')
  const cases: [string, string, string | undefined, number, string][] = [
    ['no token', r.streamUrl(tap), undefined, 401, 'unauthenticated'],
    ['unknown token', r.streamUrl(tap), 'tok-nobody', 401, 'unauthenticated'],
    ['no get on the LogTap', r.streamUrl(tap), 'tok-eve', 403, 'forbidden'],
    ['get on another LogTap only', r.streamUrl(tap), 'tok-carol', 403, 'forbidden'],
    ['unknown tap', r.streamUrl({ ...tap, name: 'nope' }), 'tok-alice', 404, 'unknown-tap'],
    [
      'unknown tap, no permission: 403 (existence not revealed)',
      r.streamUrl({ ...tap, name: 'x' }),
      'tok-eve',
      403,
      'forbidden',
    ],
    ['bad since', r.streamUrl(tap, 'since=-1'), 'tok-alice', 400, 'bad-query'],
  ]
  for (const [name, url, token, status, error] of cases) {
    const got = await refusal(url, token)
    t.equal(got.status, status, name)
    t.notOk(got.body.trim().includes('\n'), `${name}: one line`)
    t.match(JSON.parse(got.body), { error, reason: String }, `${name}: body`)
  }
  const raw = await refusal(r.streamUrl(tap), 'tok-alice')
  t.equal(raw.status, 101, 'an allowed user is upgraded')
})

t.test('tail, since/epoch resume, replay exhausted, other epoch', async (t) => {
  const r = await startTestRelay({ auth })
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'tap', 5)
  const chunk = encodeChunk(generateRecords(pods, 10))
  await r.post(tap, chunk.body, chunk.headers)
  const epoch = r.relay.context.hub.epoch
  const seqs = (c: { records(): { seq: number }[] }) => c.records().map((x) => x.seq)

  const tail = await connect(r.streamUrl(tap, 'tail=3'), 'tok-alice')
  await tail.until(() => tail.records().length === 3)
  t.match(tail.messages[0], { type: 'hello', lastSeq: 10, replayFrom: 8, resumed: false, epoch })
  t.same(seqs(tail), [8, 9, 10])
  t.same(
    tail.records().map((x) => x.raw),
    chunk.lines.slice(7),
  )

  const big = await connect(r.streamUrl(tap, 'tail=100'), 'tok-alice')
  await big.until(() => big.records().length === 5)
  t.same(seqs(big), [6, 7, 8, 9, 10], 'tail is capped by spec.replay')

  const resume = await connect(r.streamUrl(tap, `since=7&epoch=${epoch}`), 'tok-alice')
  await resume.until(() => resume.records().length === 3)
  t.match(resume.messages[0], { type: 'hello', replayFrom: 8, resumed: true })
  t.same(seqs(resume), [8, 9, 10])

  const lost = await connect(r.streamUrl(tap, `since=2&epoch=${epoch}`), 'tok-alice')
  await lost.until(() => lost.records().length === 5)
  t.match(lost.messages[0], { type: 'hello', replayFrom: 6, resumed: false })
  t.same(lost.messages[1], { type: 'dropped', count: 3, fromSeq: 3, toSeq: 5, reason: 'replay-exhausted' })

  const other = await connect(r.streamUrl(tap, 'since=500&epoch=previous'), 'tok-alice')
  await other.until(() => other.records().length === 5)
  t.match(other.messages[0], { type: 'hello', replayFrom: 6, resumed: false })

  const live = await connect(r.streamUrl(tap), 'tok-alice')
  await live.until((m) => m.length > 0)
  t.match(live.messages[0], { type: 'hello', replayFrom: 0 })
  const more = encodeChunk(generateRecords(pods, 1, 10))
  await r.post(tap, more.body, more.headers)
  for (const c of [tail, big, resume, lost, other, live]) await c.until(() => c.records().at(-1)?.seq === 11)
  t.same(seqs(live), [11], 'a plain connect gets only new records')
  for (const c of [tail, big, resume, lost, other, live]) c.ws.close()
})

t.test(
  'a stalled listener neither slows the healthy one nor grows memory, and learns what it lost',
  async (t) => {
    const limits = {
      queueRecords: 4000,
      queueBytes: 4 << 20,
      replayBytes: 1 << 20,
      socketHighWater: 256 << 10,
    }
    const r = await startTestRelay({ auth, limits })
    t.teardown(() => r.close())
    const tap = r.taps.add('shop', 'tap', 100)
    const healthy = await connect(r.streamUrl(tap), 'tok-alice')
    const stalled = await connect(r.streamUrl(tap), 'tok-alice')
    await stalled.until((m) => m.length === 1)
    stalled.ws.pause() // never reads from now on

    const chunks = 40
    const per = 500
    let maxBuffered = 0
    const started = Date.now()
    for (let i = 0; i < chunks; i++) {
      const c = encodeChunk(generateRecords(pods, per, i * per))
      const res = await r.post(tap, c.body, c.headers)
      t.equal(res.status, 200, `chunk ${i}`, { diagnostic: false })
      maxBuffered = Math.max(maxBuffered, r.relay.context.hub.stats().bufferedBytes)
      // Let the healthy client keep up the way fluentd's pacing would.
      if (i % 4 === 3) await healthy.until(() => healthy.records().length >= (i - 3) * per)
    }
    const total = chunks * per
    await healthy.until(() => healthy.records().length === total, 20_000)
    t.comment(`${total} records to the healthy listener in ${Date.now() - started} ms`)
    t.same(
      healthy.messages.filter((m) => m.type === 'dropped'),
      [],
      'the healthy listener lost nothing',
    )
    t.ok(
      healthy.records().every((x, i) => x.seq === i + 1),
      'healthy: every record in order',
    )
    t.ok(maxBuffered <= (4 << 20) + 600 * 1024, `relay buffer stayed bounded (max ${maxBuffered} bytes)`)

    stalled.ws.resume()
    await stalled.until((m) => {
      const recs = m.filter((x) => x.type === 'record').length
      const lost = m.filter((x): x is DroppedMessage => x.type === 'dropped').reduce((n, d) => n + d.count, 0)
      return recs + lost === total
    }, 20_000)
    const dropped = stalled.messages.filter((m): m is DroppedMessage => m.type === 'dropped')
    t.ok(dropped.length >= 1, 'the stalled listener was told it lost records')
    t.match(dropped[0], { reason: 'slow-consumer' })
    t.ok(dropped[0]!.count > 0 && dropped[0]!.count < total)
    const seqs = stalled.records().map((x) => x.seq)
    t.ok(
      seqs.every((s, i) => i === 0 || s > seqs[i - 1]!),
      'what it did get is in order',
    )
    t.equal(seqs.at(-1), total, 'and ends with the newest record')
    const metrics = await r.registry.metrics()
    t.match(
      metrics,
      /log_socket_records_dropped_total\{namespace="shop",name="tap",reason="slow-consumer"\} [1-9]/,
    )
    healthy.ws.close()
    stalled.ws.close()
  },
)

t.test('dead clients are removed by the keepalive', async (t) => {
  const r = await startTestRelay({ auth, limits: { pingIntervalMs: 100 } })
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'tap')
  const dead = await connect(r.streamUrl(tap), 'tok-alice')
  const live = await connect(r.streamUrl(tap), 'tok-alice')
  dead.ws.pause() // stops reading, so it answers no pings
  const deadline = Date.now() + 3000
  while (r.relay.context.hub.stats().listeners > 1 && Date.now() < deadline)
    await new Promise((f) => setTimeout(f, 20))
  t.equal(
    r.relay.context.hub.stats().listeners,
    1,
    'the unresponsive client was removed, the responsive one stays',
  )
  dead.ws.resume()
  t.equal((await dead.closed).code, 1006, 'the unresponsive client was cut off, not closed politely')
  live.ws.close()
})

t.test('a deleted tap closes its streams with 4004; listener counts reach the status sink', async (t) => {
  const updates: TapCounters[] = []
  const r = await startTestRelay({ auth, onStatus: (_tap, c) => updates.push(c) })
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'tap')
  const c = await connect(r.streamUrl(tap), 'tok-alice')
  const chunk = encodeChunk(generateRecords(pods, 3))
  await r.post(tap, chunk.body, chunk.headers)
  await c.until(() => c.records().length === 3)
  t.match(updates.at(-1), { listeners: 1, recordsReceived: 3, lastRecordTime: String })
  r.taps.remove('shop', 'tap')
  t.same(await c.closed, { code: 4004, reason: 'tap deleted' })
  t.match(c.messages.at(-1), { type: 'status', phase: 'deleted' })
  t.equal((await r.post(tap, chunk.body, chunk.headers)).status, 404, 'its ingest route is gone too')
})

t.test(
  'graceful shutdown: clients are told 1001, stalled ones are cut off after the grace period',
  async (t) => {
    const r = await startTestRelay({ auth, limits: { shutdownGraceMs: 300 } })
    const tap = r.taps.add('shop', 'tap')
    const a = await connect(r.streamUrl(tap), 'tok-alice')
    const stalled = await connect(r.streamUrl(tap), 'tok-alice')
    stalled.ws.pause()
    const chunk = encodeChunk(generateRecords(pods, 2))
    await r.post(tap, chunk.body, chunk.headers)
    const started = Date.now()
    await r.close()
    t.ok(Date.now() - started < 3000, 'close() returns promptly')
    t.same(await a.closed, { code: 1001, reason: 'relay shutting down' })
    t.same(
      a.records().map((x) => x.raw),
      chunk.lines,
      'records posted before shutdown were delivered first',
    )
    stalled.ws.resume()
    const s = await stalled.closed
    t.ok(s.code === 1001 || s.code === 1006, `stalled client closed (${s.code})`)
    const refused = await fetch(`${r.relay.addresses.ingest}/ingest/shop/tap`, { method: 'POST' }).catch(
      (e) => e,
    )
    t.type(refused, Error, 'ingest no longer listens')
  },
)
