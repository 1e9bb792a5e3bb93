// GET /taps/:namespace/:name — the WebSocket stream of one tap.
//
// Before the upgrade (a one-line RefusalBody on refusal):
//   401 unauthenticated  no token in X-Authorization (raw or `Bearer <token>`), or TokenReview rejects it
//   403 forbidden        the user may not `get` this LogTap (SubjectAccessReview)
//   404 unknown-tap      no such LogTap (or it is being deleted); checked after 403 so
//                        existence is not revealed to users who may not see the tap
//   400 bad-query        since/tail not a non-negative integer
//   400 bad-selection    the selection (query `selection` or X-Log-Socket-Selection: a SelectionSpec
//                        as JSON, api/selection.ts) does not parse; the reason names the part, e.g.
//                        `selection.where: expected an operator … at column 7, near 'x'`
//   409 bad-tap-selection the LogTap's own spec.selection is invalid (its Ready condition says why)
//   503 unavailable      the auth API failed, the relay is shutting down, or its memory budget
//                        for listeners is spent
// A token that is a JWT past its `exp` is refused (401) even while TokenReview still accepts it.
// While the stream is open, access is checked again (access.ts watchAccess): at the token's
// expiry and every accessRecheckMs. When it has ended the stream is closed with 4001
// (token expired or no longer accepted) or 4003 (no longer allowed to get the LogTap) and a
// reason k8stail prints.
// Query (or X-Log-Socket-Since/-Epoch/-Tail headers): `since=<seq>&epoch=<epoch>` resumes after seq; `tail=<n>` replays the last n records
// (at most spec.replay). After the upgrade the client gets `hello`, then records (api/stream-protocol.ts).
import websocket from '@fastify/websocket'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { CLIENT_TOKEN_HEADER } from '../../api/logtap.ts'
import { MAX_SELECTION_BYTES, parseSelection, SelectionError } from '../../api/selection.ts'
import { CloseCodes, StreamParamHeaders } from '../../api/stream-protocol.ts'
import { type RelayUser, watchAccess } from './access.ts'
import type { RelayContext } from './context.ts'
import type { StreamRequest } from './hub.ts'
import { refuse } from './refusal.ts'
import type { TapInfo } from './tap-directory.ts'

interface Params {
  namespace: string
  name: string
}

interface Admitted {
  token: string // kept to check access again while the stream is open; never logged
  expiresAt: number | undefined
  user: RelayUser
  tap: TapInfo
  query: StreamRequest
}

// The token as presented: `Bearer <token>` or the raw token. Never logged.
function tokenFrom(header: string | string[] | undefined): string | undefined {
  const v = (Array.isArray(header) ? header[0] : header)?.trim()
  if (!v) return undefined
  const m = /^bearer\s+(.+)$/i.exec(v)
  return (m ? m[1]!.trim() : v) || undefined
}

const COUNT = /^(0|[1-9][0-9]{0,15})$/

// The query first, then the X-Log-Socket-* headers: the API server's service proxy drops the query
// string of WebSocket upgrades, so clients send both (StreamParamHeaders).
export function parseQuery(
  q: Record<string, string | string[] | undefined>,
  headers: Record<string, string | string[] | undefined> = {},
): StreamRequest | { error: 'bad-query' | 'bad-selection'; reason: string } {
  const out: StreamRequest = {}
  const param = (k: keyof typeof StreamParamHeaders) => q[k] ?? headers[StreamParamHeaders[k]]
  for (const k of ['since', 'tail'] as const) {
    const v = param(k)
    if (v === undefined) continue
    if (typeof v !== 'string' || !COUNT.test(v))
      return { error: 'bad-query', reason: `${k} must be a non-negative integer` }
    out[k] = Number(v)
  }
  const epoch = param('epoch')
  if (typeof epoch === 'string') out.epoch = epoch
  // The query value is decoded by the router; the header's is percent-encoded by the client.
  const fromQuery = q.selection
  const fromHeader = headers[StreamParamHeaders.selection]
  if (fromQuery !== undefined || fromHeader !== undefined) {
    const text = fromQuery ?? fromHeader
    const bad = (reason: string) => ({ error: 'bad-selection' as const, reason: `selection: ${reason}` })
    if (typeof text !== 'string') return bad('given more than once')
    let json = text
    if (fromQuery === undefined)
      try {
        json = decodeURIComponent(text)
      } catch {
        return bad('not percent-encoded JSON')
      }
    if (Buffer.byteLength(json) > MAX_SELECTION_BYTES) return bad(`longer than ${MAX_SELECTION_BYTES} bytes`)
    let spec: unknown
    try {
      spec = JSON.parse(json)
    } catch {
      return bad('not valid JSON')
    }
    try {
      out.selection = parseSelection(spec)
    } catch (err) {
      if (err instanceof SelectionError) return { error: 'bad-selection', reason: err.message }
      throw err
    }
  }
  return out
}

export function streamRoutes(ctx: RelayContext): FastifyPluginAsync {
  const { hub, limits, metrics, o } = ctx
  const admitted = new WeakMap<FastifyRequest, Admitted>()
  return async (app) => {
    await app.register(websocket, {
      options: { maxPayload: 64 * 1024, perMessageDeflate: false },
      errorHandler: (err, socket, req) => {
        req.log.debug({ err: err.message }, 'stream socket error')
        socket.terminate()
      },
      // Clients are closed by the relay's shutdown (1001 + reason) before the server closes;
      // whatever is still open at this point is cut off.
      preClose: function (done) {
        for (const c of this.websocketServer.clients) c.terminate()
        done()
      },
    })

    const sweep = setInterval(() => hub.sweep(), limits.pingIntervalMs)
    sweep.unref()
    app.addHook('onClose', async () => clearInterval(sweep))

    app.get<{ Params: Params; Querystring: Record<string, string | string[] | undefined> }>(
      '/taps/:namespace/:name',
      {
        websocket: true,
        preValidation: async (req, reply) => {
          if (ctx.closing) return refuse(reply, 503, 'unavailable', 'relay is shutting down')
          const token = tokenFrom(req.headers[CLIENT_TOKEN_HEADER])
          if (!token) return refuse(reply, 401, 'unauthenticated', `no token in ${CLIENT_TOKEN_HEADER}`)
          const { namespace, name } = req.params
          let user: RelayUser | null
          try {
            user = await o.auth.authenticate(token)
          } catch (err) {
            req.log.warn({ err: (err as Error).message }, 'token review failed')
            return refuse(reply, 503, 'unavailable', 'could not verify the token')
          }
          if (!user) return refuse(reply, 401, 'unauthenticated', 'the token was not accepted')
          const expiresAt = user.expiresAt
          if (expiresAt !== undefined && expiresAt <= Date.now())
            return refuse(
              reply,
              401,
              'unauthenticated',
              `the token expired at ${new Date(expiresAt).toISOString()}`,
            )
          let may: boolean
          try {
            may = await o.auth.mayGetTap(user, namespace, name)
          } catch (err) {
            req.log.warn({ err: (err as Error).message }, 'access review failed')
            return refuse(reply, 503, 'unavailable', 'could not check access')
          }
          if (!may)
            return refuse(
              reply,
              403,
              'forbidden',
              `${user.username} may not get logtaps.logsocket.dev ${namespace}/${name}`,
            )
          const tap = o.taps.get(namespace, name)
          if (!tap || tap.deleting)
            return refuse(
              reply,
              404,
              'unknown-tap',
              tap ? `LogTap ${namespace}/${name} is being deleted` : `no LogTap ${namespace}/${name}`,
            )
          const query = parseQuery(req.query as Record<string, string | string[] | undefined>, req.headers)
          if ('error' in query) return refuse(reply, 400, query.error, query.reason)
          if (tap.selection?.error !== undefined)
            return refuse(
              reply,
              409,
              'bad-tap-selection',
              `LogTap ${namespace}/${name} has an invalid spec.selection: ${tap.selection.error}`,
            )
          if (!hub.canAttach())
            return refuse(reply, 503, 'unavailable', 'the relay has no memory left for another stream')
          admitted.set(req, { token, expiresAt, user, tap, query })
        },
      },
      (socket, req) => {
        const a = admitted.get(req)
        if (!a) {
          socket.close(CloseCodes.InternalError, 'not admitted')
          return
        }
        // Prefer the newest view of the tap (replay size may have changed during auth).
        const tap = o.taps.get(a.tap.namespace, a.tap.name) ?? a.tap
        const l = hub.attach(tap, socket, a.user, a.query)
        const where = `${tap.namespace}/${tap.name}`
        req.log.info({ tap: where, user: a.user.username, from: l.cursor }, 'listener connected')
        const stopWatching = watchAccess(
          {
            auth: o.auth,
            token: a.token,
            user: a.user,
            namespace: tap.namespace,
            name: tap.name,
            intervalMs: limits.accessRecheckMs,
            expiresAt: a.expiresAt,
            closeCodes: {
              unauthorized: CloseCodes.Unauthorized,
              forbidden: CloseCodes.Forbidden,
              tokenExpired: CloseCodes.TokenExpired,
            },
            onError: (err) => req.log.warn({ tap: where, err: err.message }, 'access re-check failed'),
          },
          (e) => {
            metrics.accessEnded(e.why)
            req.log.info(
              { tap: where, user: a.user.username, why: e.why },
              'access ended: closing the stream',
            )
            l.markClosed()
            socket.close(e.code, e.reason)
          },
        )
        socket.on('close', (code) => {
          stopWatching()
          req.log.info({ tap: where, user: a.user.username, code }, 'listener left')
        })
      },
    )
  }
}
