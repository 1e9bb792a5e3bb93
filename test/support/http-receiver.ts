// A local HTTP receiver for tests of what real fluentd / syslog-ng send: it records every request
// (method, path, headers, body) and answers with the status the test chooses, which it may change.
import http from 'node:http'
import type { AddressInfo } from 'node:net'

interface Received {
  at: number
  method: string
  path: string
  headers: http.IncomingHttpHeaders
  body: Buffer
  status: number // what the receiver answered
}

export interface Receiver {
  url: string // http://host:port
  requests: Received[]
  status: number // answered from now on
  // Resolves with the requests once `pred` holds for them (default: at least n requests).
  until(n: number, timeoutMs?: number): Promise<Received[]>
  close(): Promise<void>
}

export async function startReceiver(o: { host?: string; status?: number } = {}): Promise<Receiver> {
  const requests: Received[] = []
  const waiters = new Set<() => void>()
  const r: Receiver = {
    url: '',
    requests,
    status: o.status ?? 200,
    until(n, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (requests.length < n) return
          waiters.delete(check)
          clearTimeout(timer)
          resolve(requests.slice())
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`receiver: ${requests.length}/${n} requests after ${timeoutMs} ms`))
        }, timeoutMs)
        waiters.add(check)
        check()
      })
    },
    close: () => new Promise<void>((res) => server.close(() => res())),
  }
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const status = r.status
      requests.push({
        at: Date.now(),
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
        status,
      })
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : `status ${status}`)
      for (const w of [...waiters]) w()
    })
  })
  server.keepAliveTimeout = 1000
  await new Promise<void>((res) => server.listen(0, o.host ?? '127.0.0.1', res))
  const addr = server.address() as AddressInfo
  r.url = `http://${o.host ?? '127.0.0.1'}:${addr.port}`
  return r
}
