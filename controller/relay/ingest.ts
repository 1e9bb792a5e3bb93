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
import { promisify } from 'node:util'
import { gunzip } from 'node:zlib'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { INGEST_TOKEN_HEADER } from '../api/logtap.ts'
import type { RefusalBody } from '../api/stream.ts'
import { verifyTapCredential } from '../core/credential.ts'
import type { RelayContext } from './context.ts'
import type { BodyFormat } from './records.ts'

const gunzipAsync = promisify(gunzip)

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

export function ingestRoutes(ctx: RelayContext): FastifyPluginAsync {
  const { hub, limits, metrics, o } = ctx
  let inflight = 0
  return async (app) => {
    // Bodies are read as raw bytes and split here: records must be forwarded byte for byte.
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limits.maxBodyBytes }, (_req, body, done) =>
      done(null, body),
    )
    app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, req, reply) => {
      if (err.statusCode === 413)
        return refuse(reply, 413, 'too-large', `body exceeds ${limits.maxBodyBytes} bytes`)
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
        // Everything decidable from the headers is refused before the body is read.
        onRequest: async (req, reply) => {
          const { namespace, name } = req.params
          const tap = o.taps.get(namespace, name)
          if (!tap) return refuse(reply, 404, 'unknown-tap', `no LogTap ${namespace}/${name}`)
          const token = headerValue(req.headers[INGEST_TOKEN_HEADER])
          if (!verifyTapCredential(o.ingestKey, namespace, name, tap.uid, token))
            return refuse(reply, 403, 'bad-credential', `wrong or missing ${INGEST_TOKEN_HEADER}`)
          if (!formatOf(req.headers['content-type']))
            return refuse(
              reply,
              415,
              'unsupported-media-type',
              'Content-Type must be application/x-ndjson or application/json',
            )
          const enc = headerValue(req.headers['content-encoding'])?.trim().toLowerCase()
          if (enc && enc !== 'gzip' && enc !== 'identity')
            return refuse(reply, 415, 'unsupported-encoding', 'Content-Encoding must be gzip or identity')
          if (inflight >= limits.maxInflightChunks) {
            metrics.chunksDropped.inc()
            return reply.code(200).send({ dropped: true })
          }
          inflight++
          reply.raw.once('close', () => inflight--)
        },
      },
      async (req, reply) => {
        const { namespace, name } = req.params
        let body = req.body as Buffer
        if (!Buffer.isBuffer(body)) body = Buffer.alloc(0)
        const enc = headerValue(req.headers['content-encoding'])?.trim().toLowerCase()
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
        const result = hub.ingest(tap, body, formatOf(req.headers['content-type'])!)
        return reply.code(200).send(result)
      },
    )
  }
}
