// How the relay authenticates what fluentd posts: HTTP Basic auth with the tap's credential (which
// the tap's Output takes from its Secret), and, only for a while after the relay starts, the header
// Outputs carried before (so an upgrade loses nothing while fluentd still runs the old Outputs).
import t from 'tap'
import { basicAuthorization, legacyTapCredential } from '../api/credential.ts'
import { LEGACY_INGEST_TOKEN_HEADER } from '../api/logtap.ts'
import { encodeChunk, generateRecords } from '../local-cluster/sample-records.ts'
import { startTestRelay } from './support/relay.ts'

const pods = [{ namespace: 'shop', name: 'web-1', labels: { 'rbac/policy': 'allow' } }]
const chunk = encodeChunk(generateRecords(pods, 2, 0))
// Posts `chunk` with exactly these credential headers (none of the test relay's own).
const post = (url: string, headers: Record<string, string>) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', ...headers },
    body: new Uint8Array(chunk.body),
  })

t.test('Basic auth with the tap credential is accepted; anything else is refused', async (t) => {
  const r = await startTestRelay()
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'a')
  const other = r.taps.add('shop', 'b')
  const url = r.ingestUrl(tap)
  const status = async (headers: Record<string, string>) => (await post(url, headers)).status
  t.equal(await status({ authorization: basicAuthorization('a', r.credential(tap)) }), 200)
  t.equal(
    await status({ authorization: basicAuthorization('anyone', r.credential(tap)) }),
    200,
    'any user name',
  )
  t.equal(await status({ authorization: basicAuthorization('a', r.credential(other)) }), 403, "another tap's")
  t.equal(await status({ authorization: basicAuthorization('a', 'forged') }), 403)
  t.equal(await status({ authorization: `Bearer ${r.credential(tap)}` }), 403, 'not Basic')
  t.equal(await status({}), 403, 'none')
  const legacy = legacyTapCredential(r.key, 'shop', 'a', tap.uid)
  t.equal(
    await status({ authorization: basicAuthorization('a', legacy) }),
    403,
    'the value Outputs used to carry is not the Basic password',
  )
  const refused = await post(url, {})
  t.match(await refused.json(), { error: 'bad-credential' })
})

t.test('the legacy header works only during the first minutes after the relay starts', async (t) => {
  const fresh = await startTestRelay()
  t.teardown(() => fresh.close())
  const tap = fresh.taps.add('shop', 'a')
  const legacy = { [LEGACY_INGEST_TOKEN_HEADER]: legacyTapCredential(fresh.key, 'shop', 'a', tap.uid) }
  t.equal((await post(fresh.ingestUrl(tap), legacy)).status, 200, 'just after a start (an upgrade)')
  t.equal(
    (await post(fresh.ingestUrl(tap), { [LEGACY_INGEST_TOKEN_HEADER]: 'forged' })).status,
    403,
    'and only with the right value',
  )

  // A relay that started 11 minutes ago.
  const realNow = Date.now
  Date.now = () => realNow() - 11 * 60_000
  const old = await startTestRelay().finally(() => {
    Date.now = realNow
  })
  t.teardown(() => old.close())
  const oldTap = old.taps.add('shop', 'a')
  const oldLegacy = { [LEGACY_INGEST_TOKEN_HEADER]: legacyTapCredential(old.key, 'shop', 'a', oldTap.uid) }
  t.equal((await post(old.ingestUrl(oldTap), oldLegacy)).status, 403, 'refused once the grace is over')
  t.equal(
    (await post(old.ingestUrl(oldTap), { authorization: basicAuthorization('a', old.credential(oldTap)) }))
      .status,
    200,
  )
})
