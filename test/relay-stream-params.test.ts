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
  t.equal(parseQuery({ tail: '-1' }), 'tail must be a non-negative integer')
  t.equal(parseQuery({}, { [StreamParamHeaders.since]: 'abc' }), 'since must be a non-negative integer')
})
