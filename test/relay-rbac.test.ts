// Per-record RBAC: the original's rules (label table), a property that nothing denied is ever
// delivered, and what a listener actually sees over a socket (denied notices, summarised).
import fc from 'fast-check'
import t from 'tap'
import type { DeniedMessage } from '../api/stream-protocol.ts'
import { allowed, ruleKey, rulesFromLabels } from '../controller/relay/rbac.ts'
import { recordMeta } from '../controller/relay/records.ts'
import { encodeChunk } from '../local-cluster/sample-records.ts'
import { connect, startTestRelay, tableAuth } from './support/relay.ts'

const SA = 'system:serviceaccount:shop:viewer'

t.test('rule keys: service accounts and other identities', async (t) => {
  const cases: [string, string][] = [
    [SA, 'shop_viewer'],
    ['alice', 'alice'],
    ['oidc:alice', 'alice'],
    ['oidc:corp:alice', 'alice'],
    ['a:b:c:d', 'c_d'],
    ['system:admin', 'admin'],
    ['', ''],
  ]
  for (const [user, key] of cases) t.equal(ruleKey(user), key, user)
})

t.test('decision table', async (t) => {
  const decide = (record: unknown, user: string): boolean => {
    const body = Buffer.from(JSON.stringify(record))
    const meta = recordMeta(body, 0, body.length)
    if (!meta) throw new Error('not a record')
    return allowed(meta.rules, ruleKey(user))
  }
  const withLabels = (labels: unknown) => ({
    message: 'x',
    kubernetes: { pod_name: 'p', namespace_name: 'shop', labels },
  })
  const table: [string, unknown, string, boolean][] = [
    ['allow label for the SA', withLabels({ 'rbac/shop_viewer': 'allow' }), SA, true],
    ['deny label for the SA', withLabels({ 'rbac/shop_viewer': 'deny', 'rbac/policy': 'allow' }), SA, false],
    [
      'own allow beats policy deny',
      withLabels({ 'rbac/shop_viewer': 'allow', 'rbac/policy': 'deny' }),
      SA,
      true,
    ],
    ['policy allow', withLabels({ 'rbac/policy': 'allow' }), SA, true],
    ['policy deny', withLabels({ 'rbac/policy': 'deny' }), SA, false],
    ['rule for someone else only', withLabels({ 'rbac/shop_other': 'allow' }), SA, false],
    ['no labels', withLabels({}), SA, false],
    ['labels missing', { message: 'x', kubernetes: { pod_name: 'p' } }, SA, false],
    ['no kubernetes metadata', { message: 'x' }, SA, false],
    ['labels not an object', withLabels('rbac/policy=allow'), SA, false],
    ['value not exactly allow', withLabels({ 'rbac/policy': 'Allow' }), SA, false],
    ['non-string value ignored', withLabels({ 'rbac/policy': true }), SA, false],
    ['non-SA user named by its key', withLabels({ 'rbac/alice': 'allow' }), 'alice', true],
    ['non-SA prefixed user', withLabels({ 'rbac/alice': 'allow' }), 'oidc:alice', true],
    ['non-SA user falls back to policy', withLabels({ 'rbac/policy': 'allow' }), 'bob', true],
    ['non-SA user denied by default', withLabels({ 'rbac/shop_viewer': 'allow' }), 'bob', false],
  ]
  for (const [name, record, user, want] of table) t.equal(decide(record, user), want, name)
})

// The rules written as a plain reference implementation straight from the spec, to compare with.
function reference(labels: Record<string, unknown> | undefined, user: string): boolean {
  if (!labels) return false
  const parts = user.split(':')
  const key = (parts.length > 2 ? parts.slice(2) : parts.length === 2 ? parts.slice(1) : parts).join('_')
  const own = labels[`rbac/${key}`]
  if (own === 'allow' || own === 'deny') return own === 'allow'
  return labels['rbac/policy'] === 'allow'
}

t.test('property: no generated record/identity combination delivers a denied record', async (t) => {
  const segment = fc.constantFrom(
    'system',
    'serviceaccount',
    'shop',
    'viewer',
    'oidc',
    'alice',
    'policy',
    'a_b',
  )
  const user = fc.array(segment, { minLength: 1, maxLength: 5 }).map((p) => p.join(':'))
  const verdict = fc.constantFrom('allow', 'deny', 'Allow', '', 'yes', true, 1, null)
  const labelKey = fc.oneof(
    fc.constantFrom('rbac/policy', 'rbac/shop_viewer', 'rbac/alice', 'rbac/viewer', 'rbac/a_b', 'app'),
    fc.string().map((s) => `rbac/${s}`),
  )
  const labels = fc.option(fc.dictionary(labelKey, verdict), { nil: undefined })
  await fc.assert(
    fc.asyncProperty(labels, user, async (lbls, u) => {
      const record = lbls === undefined ? { message: 'm' } : { kubernetes: { pod_name: 'p', labels: lbls } }
      const body = Buffer.from(JSON.stringify(record))
      const meta = recordMeta(body, 0, body.length)!
      const got = allowed(meta.rules, ruleKey(u))
      // Never more permissive than the spec (and, here, exactly the spec).
      if (got && !reference(lbls, u)) return false
      return got === reference(lbls, u)
    }),
    { numRuns: 2000 },
  )
  t.pass('2000 generated combinations agree with the reference and never over-deliver')
  t.same(rulesFromLabels(['rbac/policy']), null, 'an array of labels carries no rules')
})

t.test('over a socket: records are shown or replaced per listener, denials summarised per pod', async (t) => {
  const auth = tableAuth({ 'tok-viewer': SA, 'tok-bob': 'bob' }, { [SA]: ['*'], bob: ['*'] })
  const r = await startTestRelay({ auth })
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'tap')
  const viewer = await connect(r.streamUrl(tap), 'tok-viewer')
  const bob = await connect(r.streamUrl(tap), 'tok-bob')
  const rec = (pod: string, labels: Record<string, string>, i: number) => ({
    message: `line ${i} "quoted" </script>`,
    kubernetes: { pod_name: pod, namespace_name: 'shop', labels },
  })
  const open = { 'rbac/policy': 'allow' }
  const forViewer = { 'rbac/shop_viewer': 'allow' }
  const records = [
    rec('open-1', open, 1),
    rec('sécret-"1"', forViewer, 2),
    rec('sécret-"1"', forViewer, 3),
    rec('sécret-"1"', forViewer, 4),
    rec('open-1', open, 5),
    { message: 'no metadata' },
  ]
  const chunk = encodeChunk(records)
  t.equal((await r.post(tap, chunk.body, chunk.headers)).status, 200)
  // 5 records and 1 notice for the viewer; 2 records and 2 notices for bob.
  await viewer.until((m) => m.filter((x) => x.type !== 'hello').length === 6)
  await bob.until((m) => m.filter((x) => x.type !== 'hello').length === 4)
  t.same(
    viewer.records().map((x) => x.raw),
    chunk.lines.slice(0, 5),
    'the viewer SA sees the open and its own records',
  )
  t.same(
    viewer.messages.filter((m) => m.type === 'denied'),
    [
      {
        type: 'denied',
        seq: 6,
        pod: '',
        count: 1,
        message: `Permission denied to access  logs for ${SA}`,
      },
    ],
    'a record without kubernetes metadata is denied',
  )
  t.same(
    bob.records().map((x) => x.seq),
    [1, 5],
  )
  const denied = bob.messages.filter((m): m is DeniedMessage => m.type === 'denied')
  t.same(denied, [
    {
      type: 'denied',
      seq: 4,
      pod: 'shop/sécret-"1"',
      count: 3,
      message: 'Permission denied to access shop/sécret-"1" logs for bob',
    },
    { type: 'denied', seq: 6, pod: '', count: 1, message: 'Permission denied to access  logs for bob' },
  ])
  const noticeFrames = [...viewer.frames, ...bob.frames].filter((f) => f.startsWith('{"type":"denied"'))
  t.same(
    noticeFrames,
    noticeFrames.map((f) => JSON.stringify(JSON.parse(f))),
    'notices are written exactly as JSON.stringify writes them',
  )
  viewer.ws.close()
  bob.ws.close()
})
