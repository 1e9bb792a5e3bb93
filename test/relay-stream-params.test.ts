// Resume parameters reach the relay even through the API server proxy, which drops the query of
// WebSocket upgrades: the X-Log-Socket-* headers carry the same values.
import t from 'tap'
import { StreamParamHeaders } from '../api/stream-protocol.ts'
import { parseQuery } from '../controller/relay/stream-routes.ts'

t.test('query parameters win; headers are the fallback', async (t) => {
  t.same(parseQuery({ since: '7', epoch: 'e1' }), { since: 7, epoch: 'e1' })
  t.same(parseQuery({}, { [StreamParamHeaders.since]: '9', [StreamParamHeaders.epoch]: 'e2' }), {
    since: 9,
    epoch: 'e2',
  })
  t.same(parseQuery({}, { [StreamParamHeaders.tail]: '100' }), { tail: 100 })
  t.same(parseQuery({ since: '3' }, { [StreamParamHeaders.since]: '9' }), { since: 3 })
  t.same(parseQuery({}, {}), {})
})

t.test('bad values are refused with a reason, from either place', async (t) => {
  t.same(parseQuery({ tail: '-1' }), { error: 'bad-query', reason: 'tail must be a non-negative integer' })
  t.same(parseQuery({}, { [StreamParamHeaders.since]: 'abc' }), {
    error: 'bad-query',
    reason: 'since must be a non-negative integer',
  })
})

t.test('a selection comes percent-encoded in its header, or decoded in the query', async (t) => {
  const spec = { where: 'level == error && kubernetes.labels["app.kubernetes.io/name"] == shop' }
  const fromHeader = parseQuery(
    {},
    { [StreamParamHeaders.selection]: encodeURIComponent(JSON.stringify(spec)) },
  )
  t.notOk('error' in fromHeader)
  t.equal((fromHeader as unknown as { selection: { where: unknown[] } }).selection.where.length, 2)
  const fromQuery = parseQuery({ selection: JSON.stringify({ fields: ['message'] }) })
  t.same(
    (fromQuery as unknown as { selection: { fields: { text: string }[] } }).selection.fields.map(
      (f) => f.text,
    ),
    ['message'],
  )
})

t.test('a bad selection is refused with a one-line reason naming the part', async (t) => {
  const h = (spec: unknown) => ({ [StreamParamHeaders.selection]: encodeURIComponent(JSON.stringify(spec)) })
  t.same(parseQuery({}, h({ where: 'level = error' })), {
    error: 'bad-selection',
    reason:
      "selection.where: expected an operator: ==, !=, =~, !~, in or not in (or && after a bare field, meaning it exists) at column 7, near '= error'",
  })
  t.match(parseQuery({}, h({ grep: '(a)\\1' })), {
    error: 'bad-selection',
    reason: /^selection\.grep: regular expression needs backtracking/,
  })
  t.match(parseQuery({}, h({ sample: { percent: 0 } })), {
    error: 'bad-selection',
    reason: /^selection\.sample\.percent: /,
  })
  t.match(parseQuery({}, h({ colour: 'red' })), {
    error: 'bad-selection',
    reason: 'selection: unknown field "colour"',
  })
  t.match(parseQuery({}, { [StreamParamHeaders.selection]: '%7Bnot' }), {
    error: 'bad-selection',
    reason: 'selection: not valid JSON',
  })
  t.match(parseQuery({}, { [StreamParamHeaders.selection]: '%E0%A4%A' }), {
    error: 'bad-selection',
    reason: 'selection: not percent-encoded JSON',
  })
})
