// Test support: a relay on 127.0.0.1 ephemeral ports with an in-memory tap directory and
// (unless given) a table-driven auth, plus a WebSocket client that records what it receives.
import { randomBytes, randomUUID } from 'node:crypto'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import WebSocket from 'ws'
import { basicAuthorization, tapCredential } from '../../api/credential.ts'
import { ingestPath, streamPath } from '../../api/logtap.ts'
import type { StreamMessage } from '../../api/stream-protocol.ts'
import type { RelayAuth, RelayUser } from '../../controller/relay/access.ts'
import type { RelayLimits, RelayOptions } from '../../controller/relay/options.ts'
import { type RunningRelay, startRelay } from '../../controller/relay/server.ts'
import type { TapDirectory, TapInfo } from '../../controller/relay/tap-directory.ts'

class MemoryTaps implements TapDirectory {
  readonly taps = new Map<string, TapInfo>()
  #removed: ((ns: string, name: string) => void)[] = []
  isSynced = true

  add(namespace: string, name: string, replay = 1000): TapInfo {
    const t: TapInfo = { namespace, name, uid: randomUUID(), replay, deleting: false }
    this.taps.set(`${namespace}/${name}`, t)
    return t
  }
  remove(namespace: string, name: string): void {
    this.taps.delete(`${namespace}/${name}`)
    for (const f of this.#removed) f(namespace, name)
  }
  get(namespace: string, name: string): TapInfo | undefined {
    return this.taps.get(`${namespace}/${name}`)
  }
  onRemoved(listener: (namespace: string, name: string) => void): void {
    this.#removed.push(listener)
  }
  synced(): boolean {
    return this.isSynced
  }
}

// token → user; users listed in `allowed` may get every tap ("*") or the listed "ns/name"s.
export function tableAuth(users: Record<string, string>, allowed: Record<string, string[]>): RelayAuth {
  return {
    async authenticate(token) {
      const username = users[token]
      return username ? { username, groups: [] } : null
    },
    async mayGetTap(user: RelayUser, namespace, name) {
      const a = allowed[user.username] ?? []
      return a.includes('*') || a.includes(`${namespace}/${name}`)
    },
  }
}

export interface TestRelay {
  relay: RunningRelay
  taps: MemoryTaps
  key: Uint8Array
  registry: Registry
  ingestUrl(t: TapInfo): string
  streamUrl(t: TapInfo, query?: string): string
  credential(t: TapInfo): string
  post(t: TapInfo, body: Buffer | string, headers?: Record<string, string>): Promise<Response>
  close(): Promise<void>
}

export async function startTestRelay(
  // host: 127.0.0.1 unless a test host's address is given (reached through the API server's proxy)
  o: { auth?: RelayAuth; limits?: Partial<RelayLimits>; host?: string } & Partial<RelayOptions> = {},
): Promise<TestRelay> {
  const taps = (o.taps as MemoryTaps | undefined) ?? new MemoryTaps()
  const key = randomBytes(32)
  const registry = new Registry()
  const relay = await startRelay({
    logger: pino({ level: process.env['RELAY_TEST_LOG'] ?? 'silent' }),
    registry,
    taps,
    ingestKey: key,
    auth: o.auth ?? tableAuth({ 'token-alice': 'alice' }, { alice: ['*'] }),
    ...(o.onStatus ? { onStatus: o.onStatus } : {}),
    ...(o.replicas ? { replicas: o.replicas } : {}),
    ...(o.limits ? { limits: o.limits } : {}),
    ...(o.memoryBudget ? { memoryBudget: o.memoryBudget } : {}),
    host: o.host ?? '127.0.0.1',
    ingestPort: 0,
    streamPort: 0,
    opsPort: 0,
  })
  const credential = (t: TapInfo) => tapCredential(key, t.namespace, t.name, t.uid)
  const ingestUrl = (t: TapInfo) => `${relay.addresses.ingest}${ingestPath(t.namespace, t.name)}`
  return {
    relay,
    taps,
    key,
    registry,
    ingestUrl,
    streamUrl: (t, query) =>
      `${relay.addresses.stream.replace(/^http/, 'ws')}${streamPath(t.namespace, t.name)}${query ? `?${query}` : ''}`,
    credential,
    post: (t, body, headers = {}) =>
      fetch(ingestUrl(t), {
        method: 'POST',
        headers: {
          'content-type': 'application/x-ndjson',
          authorization: basicAuthorization(t.name, credential(t)),
          ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
        },
        body: typeof body === 'string' ? body : new Uint8Array(body),
      }),
    close: () => relay.close(),
  }
}

// A connected stream client that keeps every frame (raw text and parsed).
const RECORD_HEAD = '{"type":"record","seq":'

export interface StreamClient {
  ws: WebSocket
  frames: string[]
  messages: StreamMessage[]
  closed: Promise<{ code: number; reason: string }>
  // Resolves once `pred` holds for the received messages (polling on each message).
  until(pred: (m: StreamMessage[]) => boolean, timeoutMs?: number): Promise<void>
  records(): { seq: number; raw: string }[]
}

export function connect(url: string, token: string | undefined): Promise<StreamClient> {
  const ws = new WebSocket(url, { headers: token ? { 'X-Authorization': `Bearer ${token}` } : {} })
  const frames: string[] = []
  const messages: StreamMessage[] = []
  const waiters = new Set<() => void>()
  const recs: { seq: number; raw: string }[] = []
  ws.on('message', (data) => {
    const text = data.toString('utf8')
    frames.push(text)
    messages.push(JSON.parse(text) as StreamMessage)
    if (text.startsWith(RECORD_HEAD)) {
      // The original bytes: the frame minus the envelope head and the final brace.
      const at = text.indexOf(',"record":')
      recs.push({ seq: Number(text.slice(RECORD_HEAD.length, at)), raw: text.slice(at + 10, -1) })
    }
    for (const w of waiters) w()
  })
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() })
      for (const w of waiters) w()
    }),
  )
  const client: StreamClient = {
    ws,
    frames,
    messages,
    closed,
    until(pred, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pred(messages)) {
            waiters.delete(check)
            clearTimeout(timer)
            resolve()
          }
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`timed out; got ${messages.length} messages: ${frames.slice(-3).join(' | ')}`))
        }, timeoutMs)
        waiters.add(check)
        check()
      })
    },
    records: () => recs,
  }

  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client))
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (c: Buffer) => {
        body += c.toString()
      })
      res.on('end', () =>
        reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })),
      )
    })
    ws.once('error', reject)
  })
}
