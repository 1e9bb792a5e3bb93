// A relay that is one of several replicas, over real sockets: its streams say which replica they
// come from and which replicas are ready, and tell listeners when that set changes; a graceful
// shutdown fails readiness first and keeps taking posts (closing their connections) for the
// shutdown delay, then closes its listeners with 1001. The pure parts beside it: which pods an
// EndpointSlice list names, and the LogTap's relay totals.
import t from 'tap'
import type { LogTap } from '../api/logtap.ts'
import type { ReplicaRef } from '../api/stream-protocol.ts'
import { serviceEndpoints } from '../controller/kube/endpoints.ts'
import { pruneRelays, relayTotals, totalsCurrent } from '../controller/reconciler/desired/relay-totals.ts'
import type { ReplicaDirectory } from '../controller/relay/replicas.ts'
import { encodeChunk, type FakePod, generateRecords } from '../local-cluster/sample-records.ts'
import { connect, startTestRelay, tableAuth } from './support/relay.ts'

const pods: FakePod[] = [{ namespace: 'shop', name: 'web-1', labels: { 'rbac/policy': 'allow' } }]
const auth = tableAuth({ 'tok-alice': 'alice' }, { alice: ['*'] })

// The directory as the program builds it from the EndpointSlices, steered by the test.
function directory(self: ReplicaRef, ready: ReplicaRef[] | undefined) {
  const listeners: (() => void)[] = []
  let current = ready
  const d: ReplicaDirectory = {
    self,
    ready: () => current,
    onChange: (f) => {
      listeners.push(f)
    },
  }
  return {
    d,
    set(next: ReplicaRef[] | undefined) {
      current = next
      for (const f of listeners) f()
    },
  }
}

const r0 = { name: 'log-socket-0', port: 10001 }
const r1 = { name: 'log-socket-1', port: 10001 }
const r2 = { name: 'log-socket-2', port: 10001 }

t.test('hello names this replica and the ready ones; a change reaches every listener once', async (t) => {
  const dir = directory(r1, [r0, r1])
  const r = await startTestRelay({ auth, replicas: dir.d })
  t.teardown(() => r.close())
  const a = r.taps.add('shop', 'a')
  const b = r.taps.add('shop', 'b')
  const ca = await connect(r.streamUrl(a), 'tok-alice')
  const cb = await connect(r.streamUrl(b), 'tok-alice')
  await ca.until((m) => m.length >= 1)
  await cb.until((m) => m.length >= 1)
  t.match(ca.messages[0], { type: 'hello', replica: r1, replicas: [r0, r1] })

  dir.set([r0, r1, r2])
  dir.set([r0, r1, r2]) // the same set again: nothing to tell
  for (const c of [ca, cb]) await c.until((m) => m.some((x) => x.type === 'replicas'))
  const chunk = encodeChunk(generateRecords(pods, 2))
  await r.post(a, chunk.body, chunk.headers)
  await ca.until(() => ca.records().length === 2)
  dir.set([r0, r2]) // this replica went unready
  await ca.until((m) => m.filter((x) => x.type === 'replicas').length === 2)
  t.same(
    ca.messages.filter((m) => m.type !== 'hello').map((m) => (m.type === 'replicas' ? m.replicas : m.type)),
    [[r0, r1, r2], 'record', 'record', [r0, r2]],
    'in order with the records, once per change',
  )
  await cb.until((m) => m.filter((x) => x.type === 'replicas').length === 2)
  dir.set(undefined) // unknown (the watch restarts): nothing is said
  await new Promise((f) => setTimeout(f, 100))
  t.equal(ca.messages.filter((m) => m.type === 'replicas').length, 2)
})

t.test('before the replicas are known, hello names only this replica; alone, neither', async (t) => {
  const r = await startTestRelay({ auth, replicas: directory(r0, undefined).d })
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'a')
  const c = await connect(r.streamUrl(tap), 'tok-alice')
  await c.until((m) => m.length >= 1)
  t.match(c.messages[0], { type: 'hello', replica: r0 })
  t.notOk('replicas' in c.messages[0]!)

  const alone = await startTestRelay({ auth })
  t.teardown(() => alone.close())
  const tap2 = alone.taps.add('shop', 'a')
  const c2 = await connect(alone.streamUrl(tap2), 'tok-alice')
  await c2.until((m) => m.length >= 1)
  t.notOk('replica' in c2.messages[0]! || 'replicas' in c2.messages[0]!)
})

t.test('graceful shutdown: readiness fails first, posts are still taken during the delay', async (t) => {
  const r = await startTestRelay({ auth, limits: { shutdownDelayMs: 600, shutdownGraceMs: 300 } })
  const tap = r.taps.add('shop', 'tap')
  const c = await connect(r.streamUrl(tap), 'tok-alice')
  const ops = r.relay.addresses.ops
  t.equal((await fetch(`${ops}/readyz`)).status, 200)
  const closing = r.close()
  await new Promise((f) => setTimeout(f, 100))
  const ready = await fetch(`${ops}/readyz`)
  t.equal(ready.status, 503, 'readiness fails at once')
  t.match(await ready.text(), /shutting down/)
  const chunk = encodeChunk(generateRecords(pods, 3))
  const res = await r.post(tap, chunk.body, chunk.headers)
  t.equal(res.status, 200, 'a post during the delay is taken')
  t.equal(res.headers.get('connection'), 'close', '…and its connection closed, so the next goes elsewhere')
  await c.until(() => c.records().length === 3)
  t.same(
    c.records().map((x) => x.raw),
    chunk.lines,
    'and streamed',
  )
  await closing
  t.same(await c.closed, { code: 1001, reason: 'relay shutting down' })
})

t.test('serviceEndpoints: pods of the slices carrying the port, readiness as the API means it', async (t) => {
  const pod = (name: string, conditions?: object) => ({
    addresses: ['10.0.0.1'],
    ...(conditions ? { conditions } : {}),
    targetRef: { kind: 'Pod', name },
  })
  const slices = [
    {
      ports: [
        { name: 'http-ingest', port: 10000 },
        { name: 'http-stream', port: 10001 },
      ],
      endpoints: [
        pod('relay-1', { ready: true }),
        pod('relay-0', { ready: false, serving: true, terminating: true }),
        pod('relay-2'), // ready unset: ready
        { addresses: ['10.0.0.9'], conditions: { ready: true } }, // no targetRef: not a pod
        { addresses: ['10.0.0.8'], targetRef: { kind: 'Node', name: 'n' } },
      ],
    },
    // The same pod in a second slice while the controller moves it: ready wins.
    { ports: [{ name: 'http-stream', port: 10001 }], endpoints: [pod('relay-0', { ready: true })] },
    // A pod whose stream port differs (its own slice).
    { ports: [{ name: 'http-stream', port: 20001 }], endpoints: [pod('relay-3', { ready: true })] },
    // A slice without the stream port is not ours to read.
    { ports: [{ name: 'metrics', port: 9090 }], endpoints: [pod('other', { ready: true })] },
    { endpoints: [pod('portless', { ready: true })] },
  ]
  t.same(serviceEndpoints(slices, 'http-stream'), [
    { name: 'relay-0', port: 10001, ready: true, terminating: false },
    { name: 'relay-1', port: 10001, ready: true, terminating: false },
    { name: 'relay-2', port: 10001, ready: true, terminating: false },
    { name: 'relay-3', port: 20001, ready: true, terminating: false },
  ])
  t.same(serviceEndpoints([slices[0]!], 'http-stream')[0], {
    name: 'relay-0',
    port: 10001,
    ready: false,
    terminating: true,
  })
  t.same(serviceEndpoints([], 'http-stream'), [])
})

t.test('relay totals: sums of the live entries, pruning guarded by name', async (t) => {
  const status: LogTap['status'] = {
    listeners: 9,
    recordsReceived: 1,
    relays: [
      { name: 'a', listeners: 2, recordsReceived: 100, lastRecordTime: '2026-11-30T10:00:00Z' },
      { name: 'b', listeners: 1, recordsReceived: 50, lastRecordTime: '2026-11-30T10:00:05Z' },
      { name: 'gone', listeners: 4, recordsReceived: 7 },
    ],
  }
  const all = relayTotals(status, undefined)
  t.same(all, { listeners: 7, recordsReceived: 157, lastRecordTime: '2026-11-30T10:00:05Z' })
  const live = relayTotals(status, new Set(['a', 'b']))
  t.same(live, { listeners: 3, recordsReceived: 157, lastRecordTime: '2026-11-30T10:00:05Z' })
  t.notOk(totalsCurrent(status, live))
  t.ok(totalsCurrent({ ...status, ...live }, live))
  t.ok(totalsCurrent({}, { listeners: 0, recordsReceived: 0 }), 'no entries: nothing to write')
  t.same(pruneRelays(status, new Set(['a', 'gone'])), [
    { op: 'test', path: '/status/relays/2/name', value: 'gone' },
    { op: 'remove', path: '/status/relays/2' },
    { op: 'test', path: '/status/relays/0/name', value: 'a' },
    { op: 'remove', path: '/status/relays/0' },
  ])
  t.equal(pruneRelays(status, new Set(['nobody'])), null)
  t.equal(pruneRelays(undefined, new Set(['a'])), null)
})
