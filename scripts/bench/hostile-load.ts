// Hostile senders for one tap (the bench's hostile scenario and test/relay-hostile.process.test.ts):
// - slow posters: connections that send their headers and a few bytes of a body, then nothing
//   (half-open connections, senders behind a partition); each one cut off is replaced at once;
// - gzip bombs, posted by `bombs` concurrent senders (each `pauseMs` after the answer to its
//   last), cycling through three kinds: an honest one inflating to 8 MiB of zeros, one whose
//   trailer admits it inflates to 128 MiB, and one inflating to 64 MiB whose trailer claims 1 MiB.
import http from 'node:http'
import { gzipSync } from 'node:zlib'
import { basicAuthorization } from '../../api/credential.ts'

export interface HostileOptions {
  ingestUrl: string
  credential: string
  slowPosters: number
  bombs: number
  pauseMs?: number // between a bomb's answer and the same sender's next bomb (default 0)
}

export interface HostileCounts {
  slowOpened: number
  slowCut: number // cut off by the relay (connection closed or answered)
  bombAnswers: Record<string, number> // by HTTP status (0: connection error)
}

export interface HostileLoad {
  stop(): HostileCounts
}

function gzipOfZeros(bytes: number, claim?: number): Buffer {
  const z = gzipSync(Buffer.alloc(bytes), { level: 9 })
  if (claim !== undefined) z.writeUInt32LE(claim, z.length - 4)
  return z
}

export function bombBodies(): Buffer[] {
  return [gzipOfZeros(8 << 20), gzipOfZeros(128 << 20), gzipOfZeros(64 << 20, 1 << 20)]
}

export function startHostileLoad(o: HostileOptions, bodies = bombBodies()): HostileLoad {
  const url = new URL(o.ingestUrl)
  const counts: HostileCounts = { slowOpened: 0, slowCut: 0, bombAnswers: {} }
  const open = new Set<http.ClientRequest>()
  let stopped = false

  const slowPoster = (): void => {
    if (stopped) return
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'POST',
      agent: false,
      headers: {
        'content-type': 'application/x-ndjson',
        'content-length': 100_000,
        authorization: basicAuthorization('bench', o.credential),
      },
    })
    counts.slowOpened++
    open.add(req)
    let done = false
    const cut = (): void => {
      if (done) return
      done = true
      open.delete(req)
      if (stopped) return
      counts.slowCut++
      req.destroy()
      setImmediate(slowPoster)
    }
    req.on('response', (res) => {
      res.resume()
      cut()
    })
    req.on('error', cut)
    req.on('close', cut)
    req.write('{"message":')
  }

  const bomber = (i: number): void => {
    if (stopped) return
    const body = bodies[i % bodies.length]!
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'POST',
      agent: false,
      headers: {
        'content-type': 'application/x-ndjson',
        'content-encoding': 'gzip',
        'content-length': body.length,
        authorization: basicAuthorization('bench', o.credential),
      },
    })
    open.add(req)
    const answered = (status: number): void => {
      if (!open.delete(req) || stopped) return
      counts.bombAnswers[status] = (counts.bombAnswers[status] ?? 0) + 1
      setTimeout(() => bomber(i + 1), o.pauseMs ?? 0)
    }
    req.on('response', (res) => {
      res.resume()
      res.on('end', () => answered(res.statusCode ?? 0))
    })
    req.on('error', () => answered(0))
    req.end(body)
  }

  for (let i = 0; i < o.slowPosters; i++) slowPoster()
  for (let i = 0; i < o.bombs; i++) bomber(i)
  return {
    stop() {
      stopped = true
      for (const req of open) req.destroy()
      open.clear()
      return counts
    },
  }
}
