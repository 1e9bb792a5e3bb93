import t from 'tap'
import { verifyTapCredential } from '../api/credential.ts'
import { KINDS } from '../api/kinds.ts'
import { FINALIZER_OUTPUT, INGEST_TOKEN_HEADER, LABEL_TAP, type LogTap } from '../api/logtap.ts'
import type { KObject } from '../controller/kube/objects.ts'
import { setCondition } from '../controller/reconciler/desired/conditions.ts'
import { attachPatch, detachPatch, mirrorFlowSpec } from '../controller/reconciler/desired/flows.ts'
import { tapLabelValue, tapObjectName } from '../controller/reconciler/desired/naming.ts'
import { desiredOutput } from '../controller/reconciler/desired/output.ts'
import { sessionVerdict } from '../controller/reconciler/desired/session.ts'

const key = new Uint8Array(32).fill(7)
const tap = (over: Partial<LogTap['spec']> = {}): LogTap => ({
  apiVersion: KINDS.LogTap.apiVersion,
  kind: 'LogTap',
  metadata: {
    name: 'checkout',
    namespace: 'shop',
    uid: 'uid-1',
    generation: 1,
    creationTimestamp: '2026-01-01T00:00:00Z',
  },
  spec: {
    flow: { kind: 'Flow', name: 'checkout' },
    mode: 'inject',
    lifetime: 'persistent',
    replay: 10,
    ...over,
  },
})
const flow = (spec: Record<string, unknown> | undefined, rv = '5'): KObject => ({
  apiVersion: KINDS.Flow.apiVersion,
  kind: 'Flow',
  metadata: { name: 'checkout', namespace: 'shop', resourceVersion: rv },
  spec,
})

t.test('names are stable, prefixed, and short names are readable while long ones stay unique', async (t) => {
  t.equal(tapObjectName('checkout'), 'logtap-checkout')
  const a = tapObjectName('x'.repeat(100))
  const b = tapObjectName(`${'x'.repeat(99)}y`)
  t.ok(a.length <= 63 && b.length <= 63)
  t.not(a, b, 'names that share a long prefix still differ')
  t.match(a, /^logtap-x+-[0-9a-f]{10}$/)
  t.equal(tapObjectName('a.b'), 'logtap-a.b', 'dots kept: a.b and a-b must not collide')
  t.not(tapObjectName('a.b'), tapObjectName('a-b'))
  t.ok(tapLabelValue('y'.repeat(200)).length <= 63)
})

t.test('setCondition moves lastTransitionTime only when the status flips', async (t) => {
  const t0 = new Date('2026-01-01T00:00:00Z')
  const t1 = new Date('2026-01-01T00:01:00Z')
  let c = setCondition([], { type: 'Ready', status: 'False', reason: 'A', message: 'a' }, t0, 1)
  c = setCondition(c, { type: 'Ready', status: 'False', reason: 'B', message: 'b' }, t1, 2)
  t.same(c, [
    {
      type: 'Ready',
      status: 'False',
      reason: 'B',
      message: 'b',
      lastTransitionTime: t0.toISOString(),
      observedGeneration: 2,
    },
  ])
  c = setCondition(c, { type: 'Ready', status: 'True', reason: 'Ready', message: '' }, t1, 2)
  t.equal(c[0]?.lastTransitionTime, t1.toISOString())
  c = setCondition(c, { type: 'Other', status: 'True', reason: 'X', message: '' }, t1, 2)
  t.same(
    c.map((x) => x.type),
    ['Ready', 'Other'],
    'new types are appended, order kept',
  )
})

t.test('the Output cannot hurt the tapped flow and carries the tap credential', async (t) => {
  const o = desiredOutput(tap(), 'infra', { ingestBaseUrl: 'http://relay.ls.svc:10000/', ingestKey: key })
  t.equal(o.kind, 'Output')
  t.equal(o.metadata.name, 'logtap-checkout')
  t.same(o.metadata.finalizers, [FINALIZER_OUTPUT])
  t.equal(o.metadata.labels?.[LABEL_TAP], 'checkout')
  t.same(o.metadata.ownerReferences, [
    {
      apiVersion: 'logsocket.dev/v1alpha1',
      kind: 'LogTap',
      name: 'checkout',
      uid: 'uid-1',
      controller: true,
      blockOwnerDeletion: true,
    },
  ])
  const spec = o.spec as {
    loggingRef: string
    http: Record<string, unknown> & { buffer: Record<string, unknown>; headers: Record<string, string> }
  }
  t.equal(spec.loggingRef, 'infra', 'same logging domain as the flow')
  t.equal(spec.http['endpoint'], 'http://relay.ls.svc:10000/ingest/shop/checkout')
  t.ok(verifyTapCredential(key, 'shop', 'checkout', 'uid-1', spec.http.headers[INGEST_TOKEN_HEADER]))
  t.match(spec.http.buffer, {
    type: 'memory',
    tags: '[]',
    flush_interval: '1s',
    overflow_action: 'drop_oldest_chunk',
    retry_forever: false,
  })
  t.equal(spec.http['json_array'], false)
  const cluster = desiredOutput(tap({ flow: { kind: 'ClusterFlow', name: 'all' } }), undefined, {
    ingestBaseUrl: 'http://r',
    ingestKey: key,
  })
  t.equal(cluster.kind, 'ClusterOutput')
  t.notOk('loggingRef' in (cluster.spec ?? {}), 'no loggingRef when the flow has none')
})

t.test('attach appends last and tests the exact list it changes', async (t) => {
  t.same(attachPatch(flow({ localOutputRefs: ['es', 'loki'] }), 'localOutputRefs', 'logtap-x'), [
    { op: 'test', path: '/spec/localOutputRefs', value: ['es', 'loki'] },
    { op: 'add', path: '/spec/localOutputRefs/-', value: 'logtap-x' },
  ])
  t.equal(
    attachPatch(flow({ localOutputRefs: ['logtap-x', 'es'] }), 'localOutputRefs', 'logtap-x'),
    null,
    'present anywhere: no change',
  )
  t.same(attachPatch(flow({ match: [] }), 'localOutputRefs', 'logtap-x'), [
    { op: 'test', path: '/metadata/resourceVersion', value: '5' },
    { op: 'add', path: '/spec/localOutputRefs', value: ['logtap-x'] },
  ])
  t.same(attachPatch(flow(undefined), 'globalOutputRefs', 'logtap-x')?.[1], {
    op: 'add',
    path: '/spec',
    value: { globalOutputRefs: ['logtap-x'] },
  })
})

t.test('detach removes only our entries, highest index first', async (t) => {
  t.same(
    detachPatch(
      flow({ localOutputRefs: ['logtap-x', 'es', 'logtap-x', 'logtap-y'] }),
      ['localOutputRefs'],
      'logtap-x',
    ),
    [
      { op: 'test', path: '/spec/localOutputRefs', value: ['logtap-x', 'es', 'logtap-x', 'logtap-y'] },
      { op: 'remove', path: '/spec/localOutputRefs/2' },
      { op: 'remove', path: '/spec/localOutputRefs/0' },
    ],
  )
  t.equal(detachPatch(flow({ localOutputRefs: ['es'] }), ['localOutputRefs'], 'logtap-x'), null)
})

t.test('a mirror copies everything but the output lists and feeds only the tap', async (t) => {
  const src = flow({
    match: [{ select: { labels: { app: 'a' } } }],
    filters: [{ stdout: {} }],
    loggingRef: 'l',
    selectors: { a: 'b' },
    localOutputRefs: ['es'],
    globalOutputRefs: ['g'],
  })
  t.same(mirrorFlowSpec(src, 'Output', 'logtap-x'), {
    match: [{ select: { labels: { app: 'a' } } }],
    filters: [{ stdout: {} }],
    loggingRef: 'l',
    selectors: { a: 'b' },
    localOutputRefs: ['logtap-x'],
  })
})

t.test('session taps end when the Lease stops being renewed or never appears', async (t) => {
  const timings = { leaseGraceMs: 3000, startGraceMs: 30_000, defaultLeaseDurationSeconds: 30 }
  const created = Date.parse('2026-01-01T00:00:00Z')
  const s = tap({ lifetime: 'session' })
  t.same(sessionVerdict(s, undefined, created + 10_000, timings), { expired: false, recheckInMs: 20_000 })
  t.match(sessionVerdict(s, undefined, created + 30_000, timings), {
    expired: true,
    reason: 'SessionNeverStarted',
  })
  const lease = { renewTime: '2026-01-01T00:01:00.000000Z', leaseDurationSeconds: 10, ownerUids: ['uid-1'] }
  const renewed = Date.parse('2026-01-01T00:01:00Z')
  t.same(sessionVerdict(s, lease, renewed + 5000, timings), { expired: false, recheckInMs: 8000 })
  t.match(sessionVerdict(s, lease, renewed + 13_000, timings), { expired: true, reason: 'SessionExpired' })
  const foreign = { ...lease, ownerUids: ['someone-else'] }
  t.match(
    sessionVerdict(s, foreign, created + 31_000, timings),
    { expired: true, reason: 'SessionNeverStarted' },
    'a Lease owned by another object is not a heartbeat',
  )
})
