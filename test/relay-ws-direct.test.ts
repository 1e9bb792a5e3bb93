// The listener's fast path writes pre-built frames straight to the socket under ws
// (controller/relay/ws-direct.ts). Over real sockets: the installed ws still has the internals that
// path relies on (this test fails after a ws upgrade that changes them, instead of the relay
// silently slowing down or corrupting frames), and the ws.send fallback delivers the same bytes.
import t from 'tap'
import wsPackage from 'ws/package.json' with { type: 'json' }
import { wsDirect } from '../controller/relay/ws-direct.ts'
import { encodeChunk, type FakePod, generateRecords } from '../local-cluster/sample-records.ts'
import rootPackage from '../package.json' with { type: 'json' }
import { connect, startTestRelay } from './support/relay.ts'

const pods: FakePod[] = [
  { namespace: 'shop', name: 'web-1', labels: { 'rbac/policy': 'allow' } },
  { namespace: 'shop', name: 'db-0', labels: { 'rbac/policy': 'deny' } },
]

// Streams 300 records (a third denied) to one listener; returns its frames.
async function frames(): Promise<string[]> {
  const r = await startTestRelay()
  try {
    const tap = r.taps.add('shop', 'tap')
    const c = await connect(r.streamUrl(tap), 'token-alice')
    const chunk = encodeChunk(generateRecords(pods, 300))
    await (await r.post(tap, chunk.body, chunk.headers)).json()
    await c.until(
      (m) => m.reduce((n, x) => n + (x.type === 'record' ? 1 : x.type === 'denied' ? x.count : 0), 0) === 300,
    )
    c.ws.close()
    return c.frames.slice(1) // after hello (its epoch differs per relay)
  } finally {
    await r.close()
  }
}

t.test('ws is pinned to the exact version installed', async (t) => {
  t.equal(rootPackage.dependencies.ws, wsPackage.version)
})

t.test('the installed ws has the internals direct writes rely on, and they are used', async (t) => {
  t.equal(wsDirect.mode, undefined, 'nothing decided before the first listener')
  const direct = await frames()
  t.equal(
    wsDirect.mode,
    'direct',
    `ws ${wsPackage.version}: a server-side WebSocket exposes _socket (a net.Socket) and an idle _sender (_queue, _state) writing to it`,
  )
  wsDirect.mode = 'ws-send'
  t.teardown(() => {
    wsDirect.mode = undefined
  })
  const fallback = await frames()
  t.same(fallback, direct, 'the ws.send fallback sends the same messages')
  t.ok(
    direct.some((f) => f.startsWith('{"type":"denied"')),
    'denied notices among the records',
  )
})
