// POST /ingest/:namespace/:name — what fluentd's out_http posts for one tap.
//
// Answers (one-line JSON bodies, RefusalBody for errors):
//   200 {"records":n,"skipped":m}  accepted; malformed records are skipped, counted, and the
//                                  tap's listeners get a `skipped` message; never a batch failure
//   200 {"dropped":n}              the chunk was dropped unread (the relay is overloaded: no ingest
//                                  slot for its tap, its sender or the relay, or no memory for its
//                                  body): its n records are counted and its tap's listeners are
//                                  told (`dropped`, relay-overloaded), so fluentd neither blocks
//                                  nor retries and no loss goes untold
//   503 busy                       the same for a gzip chunk: counting its records would mean
//                                  inflating it, so it is left to fluentd to send again
//   403 bad-credential  404 unknown-tap  413 too-large (body or decompressed size)
//   415 unsupported-media-type     400 bad-encoding (corrupt gzip)
//   408 body-timeout               the poster sent nothing for bodyIdleMs, or took over bodyMaxMs:
//                                  it loses its slot and the connection
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
//
// Memory: a streamed body holds only the line cut by its last piece (a line over
// MAX_LINE_BYTES is skipped, told as malformed); a body read whole holds
// its size (declared, or the most allowed when chunked) from the `inflight` pool and a gzip body
// twice its inflated size (from its gzip trailer) from the `inflate` pool. Without room in the
// pool the chunk is dropped as above, read only to count its records (or answered 503 if gzip).
import type { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { gunzip } from 'node:zlib'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { basicPassword, verifyLegacyTapCredential, verifyTapCredential } from '../../api/credential.ts'
import { LEGACY_INGEST_TOKEN_HEADER } from '../../api/logtap.ts'
import type { RelayContext } from './context.ts'
import { IngestSlots } from './ingest-admission.ts'
import type { ShedCause } from './metrics.ts'
import { type BodyFormat, LineSegments, RecordCounter } from './records.ts'
import { refuse } from './refusal.ts'
import { releaseBytes } from './release.ts'

const gunzipAsync = promisify(gunzip)

// fluentd authenticates with HTTP Basic auth, the password being the tap's credential. Before,
// the Output carried the credential in LEGACY_INGEST_TOKEN_HEADER. An upgrade rewrites every
// Output, but fluentd keeps posting with the old header until logging-operator has re-rendered and
// fluentd reloaded (a minute or more): refusing those posts would lose the records and make fluentd
// back up every refused chunk to disk (the old Outputs did not forbid it). So the old header is
// accepted for this long after the relay starts (an upgrade restarts it), and never after: a
// credential that anyone who could read Outputs has seen stops working.
const LEGACY_HEADER_GRACE_MS = 10 * 60_000

// Longest record a streamed body may carry; a longer line is skipped as malformed.
const MAX_LINE_BYTES = 1024 * 1024

const FORMATS: Record<string, BodyFormat> = {
  'application/x-ndjson': 'ndjson',
  'application/json': 'json',
}

interface Params {
  namespace: string
  name: string
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

// Why reading a body stopped, besides the poster going away.
class BodyError extends Error {
  readonly status: number
  readonly error: string
  constructor(status: number, error: string, reason: string) {
    super(reason)
    this.status = status
    this.error = error
  }
}

// Cuts a body off that stalls: no byte for idleMs, or not complete after maxMs.
class BodyDeadline {
  readonly #idle: NodeJS.Timeout
  readonly #total: NodeJS.Timeout

  constructor(payload: Readable, idleMs: number, maxMs: number) {
    const cut = (why: string) => () =>
      payload.destroy(new BodyError(408, 'body-timeout', `request body ${why}; the chunk is not taken`))
    this.#idle = setTimeout(cut(`stalled for ${idleMs} ms`), idleMs)
    this.#total = setTimeout(cut(`not complete after ${maxMs} ms`), maxMs)
  }

  touch(): void {
    this.#idle.refresh()
  }

  clear(): void {
    clearTimeout(this.#idle)
    clearTimeout(this.#total)
  }
}

// Hands each piece of the body to `each` as it arrives. When `each` throws, the rest of the
// body is read and discarded (so the poster, still sending, gets to read the answer), then the
// promise rejects with what it threw.
function receive(payload: Readable, deadline: BodyDeadline, each: (piece: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let failed: unknown
    payload.on('data', (piece: Buffer) => {
      deadline.touch()
      if (failed !== undefined) return
      try {
        each(piece)
      } catch (err) {
        failed = err
      }
    })
    payload.once('end', () => (failed === undefined ? resolve() : reject(failed)))
    payload.once('error', reject)
  })
}

// The records of a body that is dropped unread: counted as it arrives, held nowhere. `held` is
// what was already read of it.
async function countRecords(
  payload: Readable | undefined,
  deadline: BodyDeadline,
  held: Buffer[] = [],
): Promise<number> {
  const counter = new RecordCounter()
  for (const piece of held) counter.push(piece)
  if (payload)
    await receive(payload, deadline, (piece) => {
      counter.push(piece)
      releaseBytes(piece)
    })
  return counter.end()
}

// The size a gzip body says it inflates to (its trailer's ISIZE; fluentd writes one member).
function inflatedSize(body: Buffer): number | undefined {
  if (body.length < 18 || body[0] !== 0x1f || body[1] !== 0x8b) return undefined
  return body.readUInt32LE(body.length - 4)
}

export function ingestRoutes(ctx: RelayContext): FastifyPluginAsync {
  const { hub, limits, metrics, memory, o } = ctx
  const slots = new IngestSlots(limits)
  // Requests admitted without a slot: their chunk is counted and dropped, for this cause.
  const shed = new WeakMap<FastifyRequest, ShedCause>()
  const legacyUntil = Date.now() + LEGACY_HEADER_GRACE_MS
  return async (app) => {
    // The handler reads the body itself, as raw bytes: records are forwarded byte for byte,
    // and NDJSON as it arrives.
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('*', (_req, payload, done) => done(null, payload))
    // The rest of an oversize body is never read: the connection goes with the answer.
    const tooLarge = (reply: FastifyReply, reason = `body exceeds ${limits.maxBodyBytes} bytes`) =>
      refuse(reply.header('connection', 'close'), 413, 'too-large', reason)
    app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, req, reply) => {
      if (err.statusCode === 413) return tooLarge(reply)
      // The poster went away mid-body: nobody is left to answer.
      if (err.code === 'ECONNRESET' || err.code === 'ERR_STREAM_PREMATURE_CLOSE') {
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
          // While draining, every answer closes its connection: fluentd's next post opens a new
          // one, which the Service gives to a replica that is still ready.
          if (!ctx.draining) reply.removeHeader('connection')
          const key = `${namespace}/${name}`
          const sender = req.socket.remoteAddress ?? ''
          const cause = slots.take(key, sender)
          if (cause) shed.set(req, cause)
          else reply.raw.once('close', () => slots.give(key, sender))
        },
      },
      async (req, reply) => {
        const { namespace, name } = req.params
        const payload = req.body as Readable | undefined // undefined: an empty body
        const format = formatOf(req.headers['content-type'])!
        const gzip = encodingOf(req) === 'gzip'
        const declared = declaredLength(req)
        const first = o.taps.get(namespace, name)
        if (!first) return refuse(reply, 404, 'unknown-tap', `no LogTap ${namespace}/${name}`)
        const deadline = payload
          ? new BodyDeadline(payload, limits.bodyIdleMs, limits.bodyMaxMs)
          : { touch() {}, clear() {} }
        let inflight = 0 // bytes held from memory.inflight
        let inflate = 0 // bytes held from memory.inflate
        // The chunk is dropped unread: its records are counted for its tap's listeners (a gzip
        // chunk is handed back to be sent again instead: counting it would mean inflating it).
        const drop = async (cause: ShedCause) => {
          if (gzip) {
            hub.dropped(first, 0, cause)
            return refuse(
              reply.header('connection', 'close'),
              503,
              'busy',
              'the relay is at capacity for this tap or sender; send the chunk again later',
            )
          }
          const n = await countRecords(payload, deadline as BodyDeadline)
          const tap = o.taps.get(namespace, name)
          if (tap?.uid !== first.uid)
            return refuse(reply, 404, 'unknown-tap', `no LogTap ${namespace}/${name}`)
          hub.dropped(tap, n, cause)
          return reply.code(200).send({ dropped: n })
        }
        try {
          const cause = shed.get(req)
          if (cause) return await drop(cause)
          if (payload && format === 'ndjson' && !gzip && declared !== undefined) {
            // Streamed: each piece's complete lines are forwarded before the next is read.
            const total = { records: 0, skipped: 0 }
            let gone = false
            const lines = new LineSegments(
              MAX_LINE_BYTES,
              (n) => {
                if (!memory.inflight.tryTake(n)) return false
                inflight += n
                return true
              },
              (n) => {
                memory.inflight.give(n)
                inflight -= n
              },
            )
            const forward = (segment: Buffer): void => {
              // The tap may go while the body arrives: forward nothing more to it.
              const tap = o.taps.get(namespace, name)
              if (gone || tap?.uid !== first.uid) {
                gone = true
                return
              }
              const r = hub.ingest(tap, segment, 'ndjson')
              total.records += r.records
              total.skipped += r.skipped
            }
            try {
              await receive(payload, deadline as BodyDeadline, (piece) => {
                lines.push(piece, forward)
                releaseBytes(piece) // forwarded (copied into frames) or carried (copied)
              })
              lines.end(forward)
            } finally {
              lines.abandon()
            }
            if (gone) return refuse(reply, 404, 'unknown-tap', `no LogTap ${namespace}/${name}`)
            if (lines.skipped) {
              hub.skipped(first, lines.skipped)
              total.skipped += lines.skipped
            }
            return reply.code(200).send(total)
          }
          // Read whole: it holds its size (the most allowed when not declared) while it is read.
          const size = declared ?? limits.maxBodyBytes
          if (!memory.inflight.tryTake(size)) return await drop('memory')
          inflight = size
          const pieces: Buffer[] = []
          let read = 0
          if (payload)
            await receive(payload, deadline as BodyDeadline, (piece) => {
              read += piece.length
              if (read > limits.maxBodyBytes)
                throw new BodyError(413, 'too-large', `body exceeds ${limits.maxBodyBytes} bytes`)
              pieces.push(piece)
            })
          let body = Buffer.concat(pieces, read)
          for (const piece of pieces) releaseBytes(piece)
          if (gzip) {
            const isize = inflatedSize(body)
            if (isize === undefined) return refuse(reply, 400, 'bad-encoding', 'body is not valid gzip')
            if (isize > limits.maxDecompressedBytes)
              return tooLarge(reply, `decompressed body exceeds ${limits.maxDecompressedBytes} bytes`)
            // zlib collects the inflated pieces, then joins them: twice the size at the peak.
            if (!memory.inflate.tryTake(2 * isize)) return await drop('memory')
            inflate = 2 * isize
            try {
              // A body inflating past what its trailer says is corrupt (or a bomb that lies).
              const gzipped = body
              body = await gunzipAsync(gzipped, { maxOutputLength: Math.max(1, isize) })
              releaseBytes(gzipped)
            } catch {
              return refuse(
                reply,
                400,
                'bad-encoding',
                'body is not valid gzip (or inflates past its stated size)',
              )
            }
          }
          // Re-read: the tap may have gone while the body was arriving.
          const tap = o.taps.get(namespace, name)
          if (!tap) return refuse(reply, 404, 'unknown-tap', `no LogTap ${namespace}/${name}`)
          const result = hub.ingest(tap, body, format)
          releaseBytes(body) // its records are copied into frames
          return reply.code(200).send(result)
        } catch (err) {
          if (!(err instanceof BodyError)) throw err
          if (err.error === 'body-timeout') {
            hub.bodyTimedOut(first)
            req.log.debug({ tap: `${namespace}/${name}` }, err.message)
          }
          if (err.status === 413) return tooLarge(reply, err.message)
          return refuse(reply.header('connection', 'close'), err.status, err.error, err.message)
        } finally {
          deadline.clear()
          if (inflight) memory.inflight.give(inflight)
          if (inflate) memory.inflate.give(inflate)
        }
      },
    )
  }
}
