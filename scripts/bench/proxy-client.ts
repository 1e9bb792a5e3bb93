// The plain `ws` client of the end-to-end scenarios: the same path as k8stail (TLS to the API
// server, its service proxy, the relay on the test host), doing nothing with a frame but count
// it. The yardstick k8stail's rates are set against.
import { readFileSync } from 'node:fs'
import WebSocket from 'ws'
import { CLIENT_TOKEN_HEADER } from '../../api/logtap.ts'
import { StreamParamHeaders } from '../../api/stream-protocol.ts'
import { BENCH_TOKEN, cpuMs, guard, params, send } from './protocol.ts'

export interface ProxyClientParams {
  url: string // wss://<API server>/api/v1/namespaces/…/services/…/proxy/taps/bench/tap
  caFile: string
  bearer: string // for the API server
}

export interface ProxyClientReady {
  type: 'ready'
  extensions: string // Sec-WebSocket-Extensions of the handshake answer ('' when none)
}

export interface ProxyClientSample {
  type: 'sample'
  records: number
  denied: number
  dropped: number
  pings: number // ping frames received (answered by ws)
  cpuMs: number
}

const p = params<ProxyClientParams>()
guard(30 * 60 * 1000)

const RECORD_PREFIX = Buffer.from('{"type":"record"')
const c = { records: 0, denied: 0, dropped: 0, pings: 0 }
let extensions = ''
const ws = new WebSocket(p.url, {
  ca: readFileSync(p.caFile),
  headers: {
    Authorization: `Bearer ${p.bearer}`,
    [CLIENT_TOKEN_HEADER]: BENCH_TOKEN,
    [StreamParamHeaders.tail]: '0',
  },
  perMessageDeflate: false,
})
ws.on('message', (data: Buffer) => {
  if (data.subarray(0, RECORD_PREFIX.length).equals(RECORD_PREFIX)) {
    c.records++
    return
  }
  const m = JSON.parse(data.toString()) as { type: string; count?: number }
  if (m.type === 'hello') void send({ type: 'ready', extensions } satisfies ProxyClientReady)
  else if (m.type === 'denied') c.denied += m.count ?? 0
  else if (m.type === 'dropped') c.dropped += m.count ?? 0
})
ws.on('upgrade', (res) => {
  extensions = String(res.headers['sec-websocket-extensions'] ?? '')
})
ws.on('ping', () => c.pings++)
ws.on('unexpected-response', (_req, res) => {
  console.error(`proxy-client: upgrade refused: HTTP ${res.statusCode}`)
  process.exit(2)
})
ws.on('error', (err) => {
  console.error(`proxy-client: ${err.message}`)
  process.exit(2)
})

process.on('message', async (m: { type?: string }) => {
  if (m.type === 'sample') await send({ type: 'sample', ...c, cpuMs: cpuMs() } satisfies ProxyClientSample)
  if (m.type === 'stop') {
    ws.terminate()
    process.exit(0)
  }
})
