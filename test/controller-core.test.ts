import t from 'tap'
import { verifyTapCredential } from '../api/credential.ts'
import { KINDS } from '../api/kinds.ts'
import {
  ANNOTATION_TAP_NAME,
  FINALIZER_OUTPUT,
  LABEL_TAP,
  LABEL_TAP_UID,
  type LogTap,
} from '../api/logtap.ts'
import type { KObject } from '../controller/kube/objects.ts'
import { setCondition } from '../controller/reconciler/desired/conditions.ts'
import { desiredCredentialSecret } from '../controller/reconciler/desired/credential-secret.ts'
import { attachPatch, detachPatch, mirrorFlowSpec } from '../controller/reconciler/desired/flows.ts'
import { tapLabelValue, tapObjectName } from '../controller/reconciler/desired/naming.ts'
import { desiredOutput } from '../controller/reconciler/desired/output.ts'
import { owningTap } from '../controller/reconciler/desired/ownership.ts'
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

t.test(
  'the Output cannot hurt the tapped flow, never backs a chunk up to disk, and only names its credential',
  async (t) => {
    const o = desiredOutput(tap(), 'infra', { ingestBaseUrl: 'http://relay.ls.svc:10000/', ingestKey: key })
    t.equal(o.kind, 'Output')
    t.equal(o.metadata.name, 'logtap-checkout')
    t.same(o.metadata.finalizers, [FINALIZER_OUTPUT])
    t.equal(o.metadata.labels?.[LABEL_TAP], 'checkout')
    t.equal(o.metadata.labels?.[LABEL_TAP_UID], 'uid-1')
    t.equal(o.metadata.annotations?.[ANNOTATION_TAP_NAME], 'checkout')
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
      http: Record<string, unknown> & { buffer: Record<string, unknown> }
    }
    t.equal(spec.loggingRef, 'infra', 'same logging domain as the flow')
    t.equal(spec.http['endpoint'], 'http://relay.ls.svc:10000/ingest/shop/checkout')
    t.same(spec.http['auth'], {
      username: { valueFrom: { secretKeyRef: { name: 'logtap-checkout', key: 'username' } } },
      password: { valueFrom: { secretKeyRef: { name: 'logtap-checkout', key: 'password' } } },
    })
    t.notOk('headers' in spec.http, 'no credential in the Output')
    t.notMatch(JSON.stringify(o), tapCredentialOf('checkout', 'uid-1'), 'the credential is nowhere in it')
    t.same(spec.http['retryable_response_codes'], [503])
    t.equal(spec.http['error_response_as_unrecoverable'], false, 'a refusal drops the chunk, no backup')
    t.match(spec.http.buffer, {
      type: 'memory',
      tags: '[]',
      flush_interval: '1s',
      overflow_action: 'drop_oldest_chunk',
      retry_forever: false,
      disable_chunk_backup: true,
    })
    t.equal(spec.http['json_array'], false)
    const cluster = desiredOutput(tap({ flow: { kind: 'ClusterFlow', name: 'all' } }), undefined, {
      ingestBaseUrl: 'http://r',
      ingestKey: key,
    })
    t.equal(cluster.kind, 'ClusterOutput')
    t.notOk('loggingRef' in (cluster.spec ?? {}), 'no loggingRef when the flow has none')
  },
)

const tapCredentialOf = (name: string, uid: string) => {
  const s = desiredCredentialSecret(
    tap(),
    undefined,
    { kind: 'Output', name: 'logtap-checkout', uid: 'o' },
    key,
  )
  const password = Buffer.from(s.data?.['password'] ?? '', 'base64').toString()
  if (!verifyTapCredential(key, 'shop', name, uid, password)) throw new Error('not the credential')
  return password
}

t.test(
  'the credential Secret: the tap credential, owned by tap and Output, watched by the operator',
  async (t) => {
    const s = desiredCredentialSecret(
      tap(),
      'infra',
      { kind: 'Output', name: 'logtap-checkout', uid: 'out-1' },
      key,
    )
    t.equal(s.kind, 'Secret')
    t.equal(s.metadata.name, 'logtap-checkout')
    const data = Object.fromEntries(
      Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
    )
    t.equal(data['username'], 'checkout')
    t.ok(verifyTapCredential(key, 'shop', 'checkout', 'uid-1', data['password']))
    t.equal(
      s.metadata.annotations?.['logging.banzaicloud.io/infra'],
      'watched',
      'a change makes the operator re-render',
    )
    t.equal(
      desiredCredentialSecret(tap(), undefined, { kind: 'Output', name: 'x', uid: 'o' }, key).metadata
        .annotations?.['logging.banzaicloud.io/default'],
      'watched',
      'the empty loggingRef is spelled default',
    )
    t.same(owningTap(s), { name: 'checkout', uid: 'uid-1' })
  },
)

t.test('ownership is read from the labels, whatever happened to the owner references', async (t) => {
  const long = 'x'.repeat(120)
  const o = desiredOutput({ ...tap(), metadata: { ...tap().metadata, name: long } }, undefined, {
    ingestBaseUrl: 'http://r',
    ingestKey: key,
  })
  t.same(owningTap({ metadata: { ...o.metadata, ownerReferences: [] } }), { name: long, uid: 'uid-1' })
  t.equal(
    owningTap({
      metadata: { ...o.metadata, annotations: { [ANNOTATION_TAP_NAME]: 'other' }, ownerReferences: [] },
    }),
    undefined,
    'a name that does not match the tap label is not trusted',
  )
  t.same(
    owningTap({
      metadata: {
        name: 'old',
        ownerReferences: [
          { apiVersion: 'logsocket.dev/v1alpha1', kind: 'LogTap', name: 'a', uid: 'u', controller: true },
        ],
      },
    }),
    { name: 'a', uid: 'u' },
    'objects of earlier versions: the controlling owner reference',
  )
  t.equal(owningTap({ metadata: { name: 'theirs', labels: { [LABEL_TAP]: 'a' } } }), undefined)
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
    filters: [{ stdout: {} }, { grep: { regexp: [] } }],
    loggingRef: 'l',
    selectors: { a: 'b' },
    localOutputRefs: ['es'],
    globalOutputRefs: ['g'],
  })
  t.same(mirrorFlowSpec(src, 'Output', 'logtap-x'), {
    match: [{ select: { labels: { app: 'a' } } }],
    filters: [{ grep: { regexp: [] } }],
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
