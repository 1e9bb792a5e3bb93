// k8stail's fan-in over real relays on real sockets: three relays that each say they are one replica
// of three; the first stream goes to one of them (as through the Service), then every ready replica
// is read and the records are merged, each with the replica it came from; a replica that leaves the
// ready set and shuts down is named as gone while the others go on. (Through the API server's pod
// proxy, with real processes and SIGKILL: test/relay-replicas.cluster.test.ts.)
import t from 'tap'
import type { ReplicaRef } from '../api/stream-protocol.ts'
import { streamReplicas } from '../cli/fan-in.ts'
import type { ReplicaDirectory } from '../controller/relay/replicas.ts'
import { encodeChunk, type FakePod, generateRecords } from '../local-cluster/sample-records.ts'
import { startTestRelay, type TestRelay, tableAuth } from './support/relay.ts'

const pods: FakePod[] = [{ namespace: 'shop', name: 'web-1', labels: { 'rbac/policy': 'allow' } }]
const auth = tableAuth({ 'tok-alice': 'alice' }, { alice: ['*'] })
const refs: ReplicaRef[] = [0, 1, 2].map((i) => ({ name: `log-socket-${i}`, port: 10001 }))

t.test('records from every replica, merged; a replica that goes away is named', async (t) => {
  let ready: ReplicaRef[] = refs
  const changed: (() => void)[] = []
  const relays: TestRelay[] = []
  for (const self of refs) {
    const d: ReplicaDirectory = { self, ready: () => ready, onChange: (f) => void changed.push(f) }
    relays.push(await startTestRelay({ auth, replicas: d }))
  }
  t.teardown(async () => {
    await Promise.all(relays.map((r) => r.close()))
  })
  const taps = relays.map((r) => r.taps.add('shop', 'a'))
  const urlOf = (i: number) => new URL(relays[i]!.streamUrl(taps[i]!))

  const got: { replica: string | undefined; bytes: string }[] = []
  const notices: string[] = []
  const stop = new AbortController()
  t.teardown(() => stop.abort())
  const ended = streamReplicas(
    {
      url: urlOf(1), // the Service gave the first connection to replica 1
      replicaUrl: (r) => urlOf(refs.findIndex((x) => x.name === r.name)),
      token: 'tok-alice',
      tail: 0,
      reconnect: true,
      signal: stop.signal,
      backoffInitialMs: 50,
      backoffMaxMs: 200,
    },
    {
      record: (_seq, bytes, _frame, replica) => void got.push({ replica, bytes: bytes.toString() }),
      message: () => {},
      notice: (line) => void notices.push(line),
    },
  )
  const until = async (what: string, f: () => boolean) => {
    for (const end = Date.now() + 10_000; !f(); ) {
      if (Date.now() > end) throw new Error(`timed out: ${what}\n${notices.join('\n')}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  const post = async (i: number, n: number) => {
    const chunk = encodeChunk(generateRecords(pods, n))
    await relays[i]!.post(taps[i]!, chunk.body, chunk.headers)
  }
  // Each replica's stream opens once the first one's hello named it: post to every replica until
  // records of all three have arrived.
  for (const end = Date.now() + 10_000; !refs.every((r) => got.some((g) => g.replica === r.name)); ) {
    if (Date.now() > end) throw new Error(`no records from every replica\n${notices.join('\n')}`)
    for (const i of [0, 1, 2]) await post(i, 1)
    await new Promise((r) => setTimeout(r, 100))
  }
  t.same(
    [...new Set(got.map((g) => g.replica))].sort(),
    refs.map((r) => r.name),
    'each record names the replica it came from',
  )

  // Replica 2 goes: unready first (every replica tells its listeners), then it shuts down.
  ready = [refs[0]!, refs[1]!]
  for (const f of changed) f()
  await relays[2]!.close()
  await until('replica 2 named as gone', () => notices.some((n) => /replica log-socket-2 went away/.test(n)))
  t.notMatch(notices.join('\n'), /are lost/, 'a graceful shutdown loses nothing k8stail was told of')
  const before = got.length
  await post(0, 3)
  await post(1, 3)
  await until('records from the two others', () => got.length >= before + 6)
  t.same([...new Set(got.slice(before).map((g) => g.replica))].sort(), [refs[0]!.name, refs[1]!.name])
  stop.abort()
  t.equal(await ended, 'aborted')
})
