// POST /ingest/:namespace/:name — what fluentd's out_http posts for one tap.
//
// Answers (one-line JSON bodies, RefusalBody for errors):
//   200 {"records":n,"skipped":m}  accepted; malformed records are skipped, counted, and the
//                                  tap's listeners get a `skipped` message; never a batch failure
//   200 {"dropped":true}           the relay is overloaded (too many chunks in progress): the chunk
//                                  is dropped and counted, so fluentd neither blocks nor retries
//   403 bad-credential  404 unknown-tap  413 too-large (body or decompressed size)
//   415 unsupported-media-type     400 bad-encoding (corrupt gzip)
// Content types: application/x-ndjson and application/json (an array `[{..}\n,{..}\n]`, or
// NDJSON-shaped). text/plain is refused: out_http sends it only for non-JSON formats
// (out_file, single_value, hash), whose lines are not records, and the controller always
// renders `format json`. Content-Encoding: gzip or identity.
//
// An uncompressed NDJSON body with a Content-Length (what the controller's Output makes
// out_http send) is forwarded as it arrives: each piece's complete lines go to the listeners
// before the next piece is read, so a record's latency does not include the rest of its chunk.
// A size over the limit is refused from the header, before anything is read. Every other body
// (gzip, JSON arrays, chunked transfer) is read whole first, so a 413 still means nothing was
// taken.
import type { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { gunzip } from 'node:zlib'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { basicPassword, verifyLegacyTapCredential, verifyTapCredential } from '../../api/credential.ts'
import { LEGACY_INGEST_TOKEN_HEADER } from '../../api/logtap.ts'
import type { RefusalBody } from '../../api/stream-protocol.ts'
import type { RelayContext } from './context.ts'
import { type BodyFormat, LineSegments } from './records.ts'

const gunzipAsync = promisify(gunzip)

// fluentd authenticates with HTTP Basic auth, the password being the tap's credential. Before,
// the Output carried the credential in LEGACY_INGEST_TOKEN_HEADER. An upgrade rewrites every
// Output, but fluentd keeps posting with the old header until logging-operator has re-rendered and
// fluentd reloaded (a minute or more): refusing those posts would lose the records and make fluentd
// back up every refused chunk to disk (the old Outputs did not forbid it). So the old header is
// accepted for this long after the relay starts (an upgrade restarts it), and never after: a
// credential that anyone who could read Outputs has seen stops working.
const LEGACY_HEADER_GRACE_MS = 10 * 60_000

const FORMATS: Record<string, BodyFormat> = {
  'application/x-ndjson': 'ndjson',
  'application/json': 'json',
}

interface Params {
  namespace: string
  name: string
}

function refuse(reply: FastifyReply, code: number, error: string, reason: string): FastifyReply {
  const body: RefusalBody = { error, reason }
  return reply.code(code).type('application/json').send(body)
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}

function formatOf(contentType: string | undefined): BodyFormat | undefined {
  if (!contentType) return undefined
  return FORMATS[contentType.split(';', 1)[0]!.trim().toLowerCase()]
}

function encodingOf(req: FastifyRequest): string | undefined {
  return headerValue(req.headers['content-encoding'])?.trim().toLowerCase()
}

// The declared body size, or undefined when the body is chunked (or the header is unusable).
function declaredLength(req: FastifyRequest): number | undefined {
  const v = req.headers['content-length']
  const n = v === undefined ? Number.NaN : Number(v)
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

// The whole body, or null once it passes `limit` bytes (the rest is left to be discarded).
function readWhole(payload: Readable, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const pieces: Buffer[] = []
    let size = 0
    const onData = (piece: Buffer): void => {
      size += piece.length
      if (size <= limit) pieces.push(piece)
      else {
        payload.off('data', onData)
        payload.off('end', onEnd)
        payload.resume()
        resolve(null)
      }
    }
    const onEnd = (): void => resolve(Buffer.concat(pieces, size))
    payload.on('data', onData)
    payload.once('end', onEnd)
    payload.once('error', reject)
  })
}

// Hands each segment of complete lines to `each` as soon as it has arrived.
function readLines(payload: Readable, each: (segment: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const lines = new LineSegments()
    payload.on('data', (piece: Buffer) => {
      try {
        lines.push(piece, each)
      } catch (err) {
        payload.destroy(err as Error)
      }
    })
    payload.once('end', () => {
      try {
        lines.end(each)
        resolve()
      } catch (err) {
        reject(err)
      }
    })
    payload.once('error', reject)
  })
}

export function ingestRoutes(ctx: RelayContext): FastifyPluginAsync {
  const { hub, limits, metrics, o } = ctx
  let inflight = 0
  const legacyUntil = Date.now() + LEGACY_HEADER_GRACE_MS
  return async (app) => {
    // The handler reads the body itself, as raw bytes: records are forwarded byte for byte,
    // and NDJSON as it arrives.
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('*', (_req, payload, done) => done(null, payload))
    // The rest of an oversize body is never read: the connection goes with the answer.
    const tooLarge = (reply: FastifyReply): FastifyReply =>
      refuse(
        reply.header('connection', 'close'),
        413,
        'too-large',
        `body exceeds ${limits.maxBodyBytes} bytes`,
      )
    app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, req, reply) => {
      if (err.statusCode === 413) return tooLarge(reply)
      // The poster went away mid-body: nobody is left to answer.
      if (err.code === 'ECONNRESET') {
        req.log.debug({ err }, 'ingest body aborted')
        return refuse(reply, 400, 'aborted', 'request body aborted')
      }
      if (err.statusCode && err.statusCode < 500)
        return refuse(reply, err.statusCode, 'bad-request', err.message)
      req.log.error({ err }, 'ingest failed')
      return refuse(reply, 500, 'internal', 'ingest failed')
    })
    app.addHook('onResponse', async (_req, reply) => {
      metrics.ingestRequest(reply.statusCode, reply.elapsedTime / 1000)
    })

    app.post<{ Params: Params }>(
      '/ingest/:namespace/:name',
      {
        // Everything decidable from the headers is refused before the body is read, and the
        // connection is closed rather than spent on reading a body nobody will use.
        onRequest: async (req, reply) => {
          reply.header('connection', 'close')
          const { namespace, name } = req.params
          const tap = o.taps.get(namespace, name)
          if (!tap) return refuse(reply, 404, 'unknown-tap', `no LogTap ${namespace}/${name}`)
          const password = basicPassword(headerValue(req.headers.authorization))
          const legacy = headerValue(req.headers[LEGACY_INGEST_TOKEN_HEADER])
          const valid =
            password !== undefined
              ? verifyTapCredential(o.ingestKey, namespace, name, tap.uid, password)
              : Date.now() < legacyUntil &&
                verifyLegacyTapCredential(o.ingestKey, namespace, name, tap.uid, legacy)
          if (!valid)
            return refuse(reply, 403, 'bad-credential', 'wrong or missing credential (HTTP Basic auth)')
          if (!formatOf(req.headers['content-type']))
            return refuse(
              reply,
              415,
              'unsupported-media-type',
              'Content-Type must be application/x-ndjson or application/json',
            )
          const enc = encodingOf(req)
          if (enc && enc !== 'gzip' && enc !== 'identity')
            return refuse(reply, 415, 'unsupported-encoding', 'Content-Encoding must be gzip or identity')
          if ((declaredLength(req) ?? 0) > limits.maxBodyBytes) return tooLarge(reply)
          if (inflight >= limits.maxInflightChunks) {
            metrics.chunksDropped.inc()
            return reply.code(200).send({ dropped: true })
          }
          reply.removeHeader('connection')
          inflight++
          reply.raw.once('close', () => inflight--)
        },
      },
      async (req, reply) => {
        const { namespace, name } = req.params
        const payload = req.body as Readable | undefined // undefined: an empty body
        const format = formatOf(req.headers['content-type'])!
        const enc = encodingOf(req)
        const first = o.taps.get(namespace, name)
        if (payload && format === 'ndjson' && enc !== 'gzip' && declaredLength(req) !== undefined && first) {
          const total = { records: 0, skipped: 0 }
          let gone = false
          await readLines(payload, (segment) => {
            // The tap may go while the body arrives: forward nothing more to it.
            const tap = o.taps.get(namespace, name)
            if (gone || tap?.uid !== first.uid) {
              gone = true
              return
            }
            const r = hub.ingest(tap, segment, 'ndjson')
            total.records += r.records
            total.skipped += r.skipped
          })
          if (gone) return refuse(reply, 404, 'unknown-tap', `no LogTap ${namespace}/${name}`)
          return reply.code(200).send(total)
        }
        let body = payload ? await readWhole(payload, limits.maxBodyBytes) : Buffer.alloc(0)
        if (!body) return tooLarge(reply)
        if (enc === 'gzip') {
          try {
            body = await gunzipAsync(body, { maxOutputLength: limits.maxDecompressedBytes })
          } catch (err) {
            if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE')
              return refuse(
                reply,
                413,
                'too-large',
                `decompressed body exceeds ${limits.maxDecompressedBytes} bytes`,
              )
            return refuse(reply, 400, 'bad-encoding', 'body is not valid gzip')
          }
        }
        // Re-read: the tap may have gone while the body was arriving.
        const tap = o.taps.get(namespace, name)
        if (!tap) return refuse(reply, 404, 'unknown-tap', `no LogTap ${namespace}/${name}`)
        return reply.code(200).send(hub.ingest(tap, body, format))
      },
    )
  }
}
