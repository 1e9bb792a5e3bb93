// Stream clients of the bench tap, real `ws` WebSockets in their own process. Healthy clients
// read every frame and measure post → arrival latency from the send time embedded in each record;
// stalled clients stop reading at the TCP level right after their hello (the socket is paused, so
// the kernel buffers fill and the relay sees a consumer that never drains).
import WebSocket from 'ws'
import { CLIENT_TOKEN_HEADER } from '../../api/logtap.ts'
import { StreamParamHeaders } from '../../api/stream-protocol.ts'
import { Histogram } from './histogram.ts'
import {
  BENCH_TOKEN,
  type ClientsParams,
  type ClientsResult,
  type ClientsStop,
  type ClientsWindow,
  cpuMs,
  guard,
  type ListenerResult,
  params,
  send,
} from './protocol.ts'
import { nowMicros, stampOf } from './records.ts'

const p = params<ClientsParams>()
guard(15 * 60 * 1000)

const RECORD_PREFIX = Buffer.from('{"type":"record"')
let windowFrom = Number.POSITIVE_INFINITY
let windowTo = Number.POSITIVE_INFINITY
let lastFrame = 0

interface Healthy {
  ws: WebSocket
  latency: Histogram
  r: Omit<ListenerResult, 'latency'>
}

function open(): Promise<WebSocket> {
  const ws = new WebSocket(p.streamUrl, {
    headers: {
      [CLIENT_TOKEN_HEADER]: `Bearer ${BENCH_TOKEN}`,
      ...(p.selection
        ? { [StreamParamHeaders.selection]: encodeURIComponent(JSON.stringify(p.selection)) }
        : {}),
    },
    perMessageDeflate: false,
  })
  return new Promise((resolve, reject) => {
    ws.once('message', (data: Buffer) => {
      if (!data.toString().startsWith('{"type":"hello"')) reject(new Error(`expected hello, got ${data}`))
      else resolve(ws)
    })
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)))
    ws.once('error', reject)
  })
}

function healthy(ws: WebSocket): Healthy {
  const h: Healthy = {
    ws,
    latency: new Histogram(),
    r: { records: 0, denied: 0, dropped: 0, lastArrivalMicros: 0, bytes: 0 },
  }
  ws.on('message', (data: Buffer) => {
    const now = nowMicros()
    lastFrame = now
    h.r.bytes += data.length
    if (data.subarray(0, RECORD_PREFIX.length).equals(RECORD_PREFIX)) {
      const ts = stampOf(data)
      if (ts >= windowFrom && ts < windowTo) {
        h.r.records++
        h.r.lastArrivalMicros = now
        h.latency.record(now - ts)
      }
      return
    }
    const m = JSON.parse(data.toString()) as { type: string; count?: number }
    if (m.type === 'denied') h.r.denied += m.count ?? 0
    else if (m.type === 'dropped') h.r.dropped += m.count ?? 0
  })
  return h
}

const hs: Healthy[] = []
const stalled: { ws: WebSocket; framesRead: number }[] = []
for (let i = 0; i < p.healthy; i++) hs.push(healthy(await open()))
for (let i = 0; i < p.stalled; i++) {
  const ws = await open()
  const s = { ws, framesRead: 0 }
  ws.on('message', () => s.framesRead++)
  ws.pause() // stops reading the TCP socket; nothing more is consumed
  stalled.push(s)
}

process.on('message', async (m: ClientsWindow | ClientsStop) => {
  if (m.type === 'window') {
    windowFrom = m.fromMicros
    windowTo = m.toMicros
    return
  }
  if (m.type !== 'stop') return
  // Let what the relay still has in flight arrive: until every healthy listener has the frames
  // the load generator posted in the window, or nothing came for 3 s (at most 30 s).
  const giveUp = nowMicros() + 30e6
  const complete = (): boolean => hs.every((h) => h.r.records >= m.expectFrames)
  while (!complete() && nowMicros() - lastFrame < 3e6 && nowMicros() < giveUp)
    await new Promise((r) => setTimeout(r, 50))
  if (process.env['BENCH_DEBUG'])
    console.error(
      'clients stop',
      m.expectFrames,
      hs.map((h) => h.r),
      (nowMicros() - lastFrame) / 1e6,
    )
  const result: ClientsResult = {
    type: 'result',
    healthy: hs.map((h) => ({ ...h.r, latency: h.latency.toJSON() })),
    stalled: stalled.map((s) => ({
      connected: s.ws.readyState === WebSocket.OPEN,
      framesRead: s.framesRead,
    })),
    cpuMs: cpuMs(),
  }
  await send(result)
  for (const h of hs) h.ws.terminate()
  for (const s of stalled) s.ws.terminate()
  process.exit(0)
})
await send({ type: 'ready' })
