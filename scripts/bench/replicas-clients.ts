// The listeners of the replica scenario (scripts/bench/replicas.ts): for every tap, one WebSocket
// to every relay replica, as k8stail reads a tap from all of them, counting the record frames
// whose send time lies in the measurement window.
import WebSocket from 'ws'
import { CLIENT_TOKEN_HEADER } from '../../api/logtap.ts'
import { BENCH_TOKEN, type ClientsWindow, cpuMs, guard, params, send } from './protocol.ts'
import { nowMicros, stampOf } from './records.ts'

export interface ReplicasClientsParams {
  streams: string[][] // per tap, its stream URL on each replica
}

export interface ReplicasClientsStop {
  type: 'stop'
  expect: number // records the listeners should get in the window, all taps together
}

export interface ReplicasClientsResult {
  type: 'result'
  perTap: number[]
  dropped: number // records the relays told the listeners they dropped (a listener too slow)
  cpuMs: number
}

const p = params<ReplicasClientsParams>()
guard(15 * 60 * 1000)

const RECORD_PREFIX = Buffer.from('{"type":"record"')
let from = Number.POSITIVE_INFINITY
let to = Number.POSITIVE_INFINITY
let lastFrame = 0
const perTap = p.streams.map(() => 0)
const sockets: WebSocket[] = []
let dropped = 0

function open(url: string, tap: number): Promise<void> {
  const ws = new WebSocket(url, {
    headers: { [CLIENT_TOKEN_HEADER]: `Bearer ${BENCH_TOKEN}` },
    perMessageDeflate: false,
  })
  sockets.push(ws)
  ws.on('message', (data: Buffer) => {
    lastFrame = nowMicros()
    if (!data.subarray(0, RECORD_PREFIX.length).equals(RECORD_PREFIX)) {
      const m = JSON.parse(data.toString()) as { type: string; count?: number }
      if (m.type === 'dropped') dropped += m.count ?? 0
      return
    }
    const ts = stampOf(data)
    if (ts >= from && ts < to) perTap[tap]!++
  })
  return new Promise((resolve, reject) => {
    ws.once('message', () => resolve())
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)))
    ws.once('error', reject)
  })
}

for (const [tap, urls] of p.streams.entries()) for (const url of urls) await open(url, tap)

process.on('message', async (m: ClientsWindow | ReplicasClientsStop) => {
  if (m.type === 'window') {
    from = m.fromMicros
    to = m.toMicros
    return
  }
  if (m.type !== 'stop') return
  // What the relays still have in flight: until all arrived, or nothing came for 3 s (at most 30 s).
  const giveUp = nowMicros() + 30e6
  const total = () => perTap.reduce((a, b) => a + b, 0)
  while (total() < m.expect && nowMicros() - lastFrame < 3e6 && nowMicros() < giveUp)
    await new Promise((r) => setTimeout(r, 50))
  await send({ type: 'result', perTap, dropped, cpuMs: cpuMs() } satisfies ReplicasClientsResult)
  for (const ws of sockets) ws.terminate()
  process.exit(0)
})
await send({ type: 'ready' })
