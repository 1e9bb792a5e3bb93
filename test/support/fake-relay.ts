// A small relay for k8stail tests: a real WebSocket server speaking api/stream-protocol.ts
// (hello, records spliced byte for byte, resume with since/epoch, replay buffer, refusals as
// HTTP status + one-line JSON). Tests steer it to drop connections, restart, or go silent.
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { type WebSocket, WebSocketServer } from 'ws'
import { type RefusalBody, StreamParamHeaders } from '../../api/stream-protocol.ts'

export interface FakeRelayOptions {
  host?: string // 127.0.0.1 unless a test host address is given
  port?: number
  token: string // the only X-Authorization accepted
  taps: string[] // "<ns>/<name>" that exist
  replay?: number // records kept per tap for resume (default 1000)
  autoPong?: boolean // false: a relay that has silently vanished
  overlap?: number // a sloppy relay: on resume, also replays this many records the client already has
}

interface Kept {
  seq: number
  bytes: string
}

export interface Connection {
  tap: string
  query: URLSearchParams
  headers: http.IncomingHttpHeaders
}

export class FakeRelay {
  readonly connections: Connection[] = []
  epoch = randomUUID()
  private readonly server: http.Server
  private readonly wss: WebSocketServer
  private readonly buffers = new Map<string, { lastSeq: number; kept: Kept[] }>()
  private readonly clients = new Map<string, Set<WebSocket>>()
  private readonly o: FakeRelayOptions

  constructor(o: FakeRelayOptions) {
    this.o = o
    this.wss = new WebSocketServer({ noServer: true, autoPong: o.autoPong ?? true })
    this.server = http.createServer((_req, res) => res.writeHead(426).end())
    this.server.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://relay')
      const m = /^\/taps\/([^/]+)\/([^/]+)$/.exec(url.pathname)
      const refuse = (status: number, body: RefusalBody) => {
        const text = JSON.stringify(body)
        socket.end(
          `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
        )
      }
      if (req.headers['x-authorization'] !== this.o.token) {
        return refuse(403, { error: 'forbidden', reason: 'token rejected by TokenReview' })
      }
      const tap = m ? `${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}` : ''
      if (!this.o.taps.includes(tap))
        return refuse(404, { error: 'not-found', reason: `no LogTap ${tap || url.pathname}` })
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, tap, url.searchParams, req.headers))
    })
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) =>
      this.server.listen(this.o.port ?? 0, this.o.host ?? '127.0.0.1', resolve),
    )
    return this
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port
  }

  get url(): string {
    return `ws://${this.o.host ?? '127.0.0.1'}:${this.port}`
  }

  // fluentd posted one record for this tap: keep it and send it to every listener.
  post(tap: string, bytes: string): number {
    const b = this.buffer(tap)
    const seq = ++b.lastSeq
    b.kept.push({ seq, bytes })
    if (b.kept.length > (this.o.replay ?? 1000)) b.kept.shift()
    for (const ws of this.clients.get(tap) ?? []) ws.send(recordFrame(seq, bytes))
    return seq
  }

  // Like post, but each listener gets the frame (header and payload) in pieces cut at `cuts`
  // (byte offsets), written apart in time so that they arrive in separate reads.
  async postInPieces(tap: string, bytes: string, cuts: number[]): Promise<number> {
    const b = this.buffer(tap)
    const seq = ++b.lastSeq
    b.kept.push({ seq, bytes })
    const wire = wireFrame(Buffer.from(recordFrame(seq, bytes)))
    const at = [0, ...cuts.filter((c) => c > 0 && c < wire.length), wire.length]
    for (const ws of this.clients.get(tap) ?? []) {
      // The socket under ws: the pieces bypass ws's sender, which writes whole frames.
      const socket = (ws as unknown as { _socket: import('node:net').Socket })._socket
      for (let i = 0; i + 1 < at.length; i++) {
        socket.write(wire.subarray(at[i], at[i + 1]))
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
    return seq
  }

  deny(tap: string, pod: string, message: string): void {
    const seq = ++this.buffer(tap).lastSeq
    for (const ws of this.clients.get(tap) ?? [])
      ws.send(JSON.stringify({ type: 'denied', seq, pod, count: 1, message }))
  }

  // Connections die without a close frame (a network cut).
  cut(): void {
    for (const set of this.clients.values()) for (const ws of set) ws.terminate()
  }

  closeTap(tap: string, code: number, reason: string): void {
    for (const ws of this.clients.get(tap) ?? []) ws.close(code, reason)
  }

  // A restarted relay: new epoch, nothing kept.
  restart(): void {
    this.cut()
    this.epoch = randomUUID()
    this.buffers.clear()
  }

  addTap(tap: string): void {
    this.o.taps.push(tap)
  }

  // A relay process restart: connections die, the port refuses for `downMs`, then a new epoch.
  async bounce(downMs: number): Promise<void> {
    const port = this.port
    this.restart()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
    await new Promise((resolve) => setTimeout(resolve, downMs))
    await new Promise<void>((resolve) => this.server.listen(port, this.o.host ?? '127.0.0.1', resolve))
  }

  listeners(tap: string): number {
    return this.clients.get(tap)?.size ?? 0
  }

  async close(): Promise<void> {
    for (const set of this.clients.values()) for (const ws of set) ws.terminate()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
    this.wss.close()
  }

  private buffer(tap: string) {
    const b = this.buffers.get(tap) ?? { lastSeq: 0, kept: [] }
    this.buffers.set(tap, b)
    return b
  }

  private accept(
    ws: WebSocket,
    tap: string,
    query: URLSearchParams,
    headers: http.IncomingHttpHeaders,
  ): void {
    // Query first, then the headers (the API server proxy drops the query of upgrades).
    const q = new URLSearchParams(query)
    for (const [name, header] of Object.entries(StreamParamHeaders)) {
      const value = headers[header]
      if (!q.has(name) && typeof value === 'string') q.set(name, value)
    }
    this.connections.push({ tap, query: q, headers })
    const b = this.buffer(tap)
    const since = q.has('since') ? Number(q.get('since')) : undefined
    const sameEpoch = q.get('epoch') === this.epoch
    const first = b.kept[0]?.seq ?? b.lastSeq + 1
    let replay: Kept[]
    let resumed = false
    if (since !== undefined && sameEpoch) {
      resumed = since + 1 >= first
      replay = b.kept.filter((k) => k.seq > since - (this.o.overlap ?? 0))
    } else if (since !== undefined) {
      replay = b.kept // another epoch: everything we have
    } else {
      const tail = Number(q.get('tail') ?? 0)
      replay = tail > 0 ? b.kept.slice(-tail) : []
    }
    ws.send(
      JSON.stringify({
        type: 'hello',
        tap,
        epoch: this.epoch,
        user: 'test-user',
        lastSeq: b.lastSeq,
        replayFrom: replay[0]?.seq ?? 0,
        resumed,
      }),
    )
    for (const k of replay) ws.send(recordFrame(k.seq, k.bytes))
    const set = this.clients.get(tap) ?? new Set<WebSocket>()
    this.clients.set(tap, set)
    set.add(ws)
    ws.on('close', () => set.delete(ws))
    ws.on('error', () => set.delete(ws))
  }
}

// An unmasked text frame as a server sends it (RFC 6455 §5.2).
function wireFrame(payload: Buffer): Buffer {
  const n = payload.length
  const head = n < 126 ? Buffer.from([0x81, n]) : n < 65536 ? Buffer.alloc(4) : Buffer.alloc(10)
  if (n >= 126 && n < 65536) {
    head[0] = 0x81
    head[1] = 126
    head.writeUInt16BE(n, 2)
  } else if (n >= 65536) {
    head[0] = 0x81
    head[1] = 127
    head.writeBigUInt64BE(BigInt(n), 2)
  }
  return Buffer.concat([head, payload])
}

function recordFrame(seq: number, bytes: string): string {
  return `{"type":"record","seq":${seq},"record":${bytes}}`
}

export async function startFakeRelay(o: FakeRelayOptions): Promise<FakeRelay> {
  return new FakeRelay(o).listen()
}
