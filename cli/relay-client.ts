// The WebSocket client of the relay stream (protocol: api/stream-protocol.ts).
// Fixes the original's flaws: it reconnects with backoff and resumes after the last sequence number
// (no duplicates, gaps reported on stderr), detects a vanished server with ping/pong instead of
// hanging, and shows the HTTP status and reason of a refused upgrade.
// Record frames are not parsed (frame.ts). After each socket read the consumer may flush its
// output; while that output is full the socket is not read (backpressure to the relay).
import { setTimeout as sleep } from 'node:timers/promises'
import WebSocket, { type ClientOptions } from 'ws'
import { CLIENT_TOKEN_HEADER } from '../api/logtap.ts'
import { percentText, type SelectionSpec } from '../api/selection.ts'
import {
  CloseCodes,
  type HelloMessage,
  type RecordMessage,
  type SampledMessage,
  type StreamMessage,
  StreamParamHeaders,
} from '../api/stream-protocol.ts'
import {
  connectionError,
  forbiddenError,
  fromRefusal,
  isKubernetesStatus,
  type K8stailError,
} from './errors.ts'
import { recordBytes, recordFrame } from './frame.ts'
import { displayUrl, withStreamQuery } from './proxy-url.ts'

export interface StreamOptions {
  url: URL // without query: resume parameters are added per connection
  token: string // the relay token, sent as X-Authorization (the API server proxy strips Authorization)
  // Fetched per connection, because tokens expire: TLS + kubeconfig auth for the handshake, and the
  // relay token when it comes from the kubeconfig too (else `token`).
  connectAuth?: () => Promise<ConnectionAuth>
  tail?: number | undefined // records to replay on the first connection
  selection?: SelectionSpec | undefined // applied by the relay (sent on every connection)
  reconnect: boolean
  signal: AbortSignal
  pingIntervalMs?: number // a connection with no pong or message for two intervals is dead
  handshakeTimeoutMs?: number
  backoffInitialMs?: number
  backoffMaxMs?: number
  giveUpAfterMs?: number // stop reconnecting after failing this long without a working connection
  // A relay 404 (unknown tap) is retried this long before the first connection: the relay learns
  // new taps from an informer, a moment after they exist. After a connection, 30s (relay restart).
  notFoundGraceMs?: number
  random?: () => number
  // For one stream of several (one per relay replica, fan-in.ts): where each connection after the
  // first goes; what to do after a connection failed or was lost, unless the tap was deleted or
  // the token refused ('left' ends the stream, 'retry' connects again after the usual backoff
  // whatever the failure, undefined decides as for a single stream; `graceful`: the relay closed
  // it saying it is shutting down); and the resume state to start from, kept up to date here.
  nextUrl?: () => URL
  afterLoss?: (why: string, graceful: boolean) => 'left' | 'retry' | undefined
  state?: ResumeState
}

interface ConnectionAuth {
  wsOptions: ClientOptions
  relayToken?: string | undefined
}

// Every message other than a record.
export type NoticeMessage = Exclude<StreamMessage, RecordMessage>

export interface StreamHandlers {
  // Records and other messages, in order, without duplicates; `frame` is the text frame as
  // received, `bytes` the record as posted (a view into the frame, not decoded).
  record(seq: number, bytes: Buffer, frame: Buffer): void
  message(msg: NoticeMessage, frame: Buffer): void
  // After the frames of one socket read: write out what they produced. A promise while the output
  // is full: the socket is not read until it settles.
  flush?(): Promise<void> | undefined
  notice(line: string): void // gaps, reconnects, relay status: for stderr
  debug?(line: string): void
}

// 'left': the relay replica went away (StreamOptions.mayReconnect said so).
export type StreamEnd = 'aborted' | 'tap-deleted' | 'closed' | 'left'

// --- pure parts -----------------------------------------------------------------------------

export function droppedNotice(m: { count: number; reason: string; fromSeq: number; toSeq: number }): string {
  return `${records(m.count)} may be missing (${m.reason}, seq ${m.fromSeq}-${m.toSeq})`
}

// A `sampled` notice for people: what sampling and the per-pod cap left out since the last one.
export function sampledNotice(m: SampledMessage): string {
  const parts: string[] = []
  if (m.sampled) parts.push(`${records(m.sampled)} sampled out (keeping ${percentText(m.percent)})`)
  if (m.capped)
    parts.push(`${records(m.capped)} over the per-pod rate (${m.pods === 1 ? '1 pod' : `${m.pods} pods`})`)
  return `${parts.join(', ')}, seq ${m.fromSeq}-${m.toSeq}`
}

function records(n: number): string {
  return n === 1 ? '1 record' : `${n} records`
}

export interface ResumeState {
  epoch: string | undefined
  lastSeq: number
}

// What a hello means for a client that may have been here before: how many records were lost
// (undefined when nothing is to be reported) and the state to continue with.
export function afterHello(
  s: ResumeState,
  h: HelloMessage,
): { missing: number | undefined; state: ResumeState } {
  const firstInNewEpoch = h.replayFrom > 0 ? h.replayFrom - 1 : h.lastSeq
  if (s.epoch === undefined) return { missing: undefined, state: { epoch: h.epoch, lastSeq: 0 } }
  if (s.epoch !== h.epoch) return { missing: firstInNewEpoch, state: { epoch: h.epoch, lastSeq: 0 } }
  if (h.resumed) return { missing: undefined, state: s }
  return { missing: Math.max(0, firstInNewEpoch - s.lastSeq), state: s }
}

export function backoffMs(attempt: number, initialMs: number, maxMs: number, random: number): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20))
  return Math.round(ceiling / 2 + (ceiling / 2) * random) // jitter: clients of a restarted relay spread out
}

// --- one connection -----------------------------------------------------------------------------

type Outcome =
  | { kind: 'refused'; status: number; body: string }
  | { kind: 'error'; error: Error; opened: boolean }
  | { kind: 'closed'; code: number; reason: string; opened: boolean }
  | { kind: 'aborted' }

async function connectOnce(
  url: URL,
  o: StreamOptions,
  onOpen: () => void,
  onFrame: (frame: Buffer) => void,
  afterRead: () => Promise<void> | undefined,
): Promise<Outcome> {
  const auth = o.connectAuth ? await o.connectAuth() : undefined
  const base = auth?.wsOptions ?? {}
  const headers: Record<string, string> = {
    ...(base.headers as Record<string, string> | undefined),
    [CLIENT_TOKEN_HEADER]: auth?.relayToken ?? o.token,
  }
  // The same parameters as headers: the API server proxy drops the query of upgrades.
  for (const [name, header] of Object.entries(StreamParamHeaders)) {
    const value = url.searchParams.get(name)
    if (value !== null) headers[header] = value
  }
  // Percent-encoded: a header carries Latin-1 only, and the relay decodes it.
  if (o.selection) headers[StreamParamHeaders.selection] = encodeURIComponent(JSON.stringify(o.selection))
  const pingMs = o.pingIntervalMs ?? 10_000
  return new Promise<Outcome>((resolve) => {
    const ws = new WebSocket(url, {
      ...base,
      headers,
      handshakeTimeout: o.handshakeTimeoutMs ?? 15_000,
      perMessageDeflate: false,
    })
    let opened = false
    let alive = true
    let reading = true // false while the output is full
    let readEnding = false
    let done = false
    let pinger: NodeJS.Timeout | undefined
    const finish = (out: Outcome) => {
      if (done) return
      done = true
      clearInterval(pinger)
      o.signal.removeEventListener('abort', onAbort)
      resolve(out)
    }
    const onAbort = () => {
      if (opened) {
        ws.close(1000, 'k8stail exiting')
        // Do not wait long for the close handshake of a dead peer.
        setTimeout(() => ws.terminate(), 1000).unref()
      } else ws.terminate()
      finish({ kind: 'aborted' })
    }
    o.signal.addEventListener('abort', onAbort, { once: true })

    ws.on('unexpected-response', (req, res) => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => {
        if (size < 4096) chunks.push(c)
        size += c.length
      })
      const end = () => {
        req.destroy()
        finish({ kind: 'refused', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() })
      }
      res.on('end', end)
      res.on('error', end)
      res.on('aborted', end)
    })
    ws.on('open', () => {
      opened = true
      onOpen()
      let lastTick = Date.now()
      pinger = setInterval(() => {
        // Not reading on purpose, or this process was held up (a terminal write blocks it):
        // silence says nothing about the relay then.
        const now = Date.now()
        const heldUp = now - lastTick > 1.5 * pingMs
        lastTick = now
        if (!reading || heldUp) {
          alive = true
          return
        }
        if (!alive) {
          ws.terminate()
          finish({
            kind: 'error',
            error: new Error(`no response from the relay for ${(2 * pingMs) / 1000}s`),
            opened,
          })
          return
        }
        alive = false
        ws.ping()
      }, pingMs)
    })
    ws.on('pong', () => {
      alive = true
    })
    // The frames of one socket read arrive as synchronous 'message' events; once they are all
    // handled (next tick), their output is flushed, and a full output pauses the socket.
    const endOfRead = () => {
      readEnding = false
      const full = afterRead()
      if (!full || done) return
      reading = false
      ws.pause()
      void full.then(() => {
        reading = true
        if (!done) ws.resume()
      })
    }
    ws.on('message', (data: Buffer) => {
      alive = true
      if (!readEnding) {
        readEnding = true
        process.nextTick(endOfRead)
      }
      onFrame(data)
    })
    ws.on('error', (error) => finish({ kind: 'error', error, opened }))
    ws.on('close', (code, reason) => finish({ kind: 'closed', code, reason: reason.toString(), opened }))
  })
}

// --- the stream with reconnects ---------------------------------------------------------------

export async function streamTap(o: StreamOptions, h: StreamHandlers): Promise<StreamEnd> {
  const initialMs = o.backoffInitialMs ?? 500
  const maxMs = o.backoffMaxMs ?? 15_000
  const giveUpMs = o.giveUpAfterMs ?? 5 * 60_000
  const random = o.random ?? Math.random
  const where = displayUrl(o.url)
  const state: ResumeState = o.state ?? { epoch: undefined, lastSeq: 0 }
  let everOpened = false
  let attempted = false
  let attempt = 0
  let failingSince: number | undefined
  let lastError: K8stailError | undefined
  let notFoundSince: number | undefined
  // With a selection the relay summarises denials per pod: a denied notice may carry a seq lower
  // than records already shown, and must not be taken for a duplicate.
  let selected = false

  const onRecord = (seq: number, bytes: Buffer, frame: Buffer) => {
    if (seq <= state.lastSeq) return // already shown before the reconnect
    state.lastSeq = seq
    h.record(seq, bytes, frame)
  }
  const onFrame = (frame: Buffer) => {
    const fast = recordFrame(frame)
    if (fast) return onRecord(fast.seq, fast.record, frame)
    let msg: StreamMessage
    try {
      msg = JSON.parse(frame.toString()) as StreamMessage
    } catch {
      h.debug?.(`ignored a frame that is not JSON (${frame.length} bytes)`)
      return
    }
    if (msg.type === 'record') return onRecord(msg.seq, recordBytes(frame), frame)
    if (msg.type === 'hello') {
      const r = afterHello(state, msg)
      if (r.missing !== undefined) {
        h.notice(
          r.state.epoch !== state.epoch
            ? `reconnected to a restarted relay; ${records(r.missing)} may be missing (more if the old relay got any after the connection dropped)`
            : `reconnected; ${records(r.missing)} may be missing`,
        )
      } else if (state.epoch !== undefined) h.notice('reconnected; nothing missed')
      if (msg.selection && !selected) {
        // What is left out without being told (sampling, a cap, the LogTap's own selection) is
        // said once; the user's own filter only with -v.
        const sel = msg.selection
        const line = `the relay applies: ${sel.text}${sel.tap ? " (with the LogTap's own selection)" : ''}`
        if (sel.tap || sel.percent < 100 || sel.podRate !== undefined) h.notice(line)
        else h.debug?.(line)
      }
      selected = msg.selection !== undefined
      state.epoch = r.state.epoch
      state.lastSeq = r.state.lastSeq
    } else if (msg.type === 'denied') {
      if (!selected && msg.seq <= state.lastSeq) return // already shown before the reconnect
      state.lastSeq = Math.max(state.lastSeq, msg.seq)
    } else if (msg.type === 'dropped') {
      // Reported by the caller: dimmed in pretty output, on stderr otherwise (see droppedNotice).
      state.lastSeq = Math.max(state.lastSeq, msg.toSeq)
    } else if (msg.type === 'status') {
      // 'deleted' is followed by close 4004, which the caller reports.
      if (msg.phase !== 'deleted') h.notice(`relay: ${msg.message || msg.phase}`)
    } else if (msg.type === 'skipped') {
      h.notice(`relay skipped ${msg.count} malformed lines`)
    }
    h.message(msg, frame)
  }

  for (;;) {
    if (o.signal.aborted) return 'aborted'
    const url = withStreamQuery(
      attempted ? (o.nextUrl?.() ?? o.url) : o.url,
      state.epoch ? { since: state.lastSeq, epoch: state.epoch } : { tail: o.tail },
    )
    attempted = true
    h.debug?.(`connecting to ${displayUrl(url)}${url.search}`)
    const out = await connectOnce(
      url,
      o,
      () => {
        everOpened = true
        attempt = 0
        failingSince = undefined
        notFoundSince = undefined
        h.debug?.(`connected to ${where}`)
      },
      onFrame,
      () => h.flush?.(),
    )
    if (out.kind === 'aborted') return 'aborted'

    let failure: K8stailError
    let why: string // for the reconnect notice
    let retryable: boolean
    let graceful = false
    if (out.kind === 'refused') {
      failure = fromRefusal(out.status, out.body)
      why = failure.message
      // Gateway errors while the relay (re)starts are transient; so is the relay not knowing a
      // tap yet (404 from the relay itself, not from the API server) for a short grace period.
      const relayNotFound = out.status === 404 && !isKubernetesStatus(out.body)
      notFoundSince ??= relayNotFound ? Date.now() : undefined
      const grace = everOpened ? 30_000 : (o.notFoundGraceMs ?? 0)
      retryable = out.status >= 500 || (relayNotFound && Date.now() - notFoundSince! < grace)
    } else if (out.kind === 'closed') {
      if (out.code === CloseCodes.TapDeleted) return 'tap-deleted'
      if (out.code === CloseCodes.SelectionTooCostly)
        throw connectionError(`the relay closed the stream: ${out.reason || 'selection too costly'}`)
      if (out.code === CloseCodes.Unauthorized || out.code === CloseCodes.Forbidden) {
        throw forbiddenError(`the relay closed the stream: ${out.reason || `code ${out.code}`}`)
      }
      if (!o.reconnect && out.code === 1000) return 'closed'
      // An expired token: the next connection presents a fresh one (a fixed token is refused then,
      // 401, which ends the stream with the relay's reason).
      const expired = out.code === CloseCodes.TokenExpired
      why = expired
        ? `the relay closed the stream: ${out.reason || 'token expired'}`
        : `connection lost (code ${out.code}${out.reason ? `: ${out.reason}` : ''})`
      failure = expired ? forbiddenError(why) : connectionError(`stream from ${where}: ${why}`)
      retryable = out.opened || everOpened
      graceful = out.code === CloseCodes.GoingAway
    } else {
      why = `connection lost: ${out.error.message}`
      failure = connectionError(`cannot stream from ${where}: ${out.error.message}`, out.error)
      retryable = out.opened || everOpened
    }

    // One stream of several: a refused token ends them all (it is the same everywhere); the rest
    // is for the fan-in to decide.
    const refusedToken = out.kind === 'refused' && (out.status === 401 || out.status === 403)
    const decision = refusedToken ? undefined : o.afterLoss?.(why, graceful)
    if (decision === 'left') return 'left'
    if (decision === 'retry') retryable = true
    // --no-reconnect: no second connection once one worked; getting the first one may still wait.
    if (!retryable || (!o.reconnect && everOpened)) throw failure
    const now = Date.now()
    failingSince ??= now
    if (now - failingSince > giveUpMs) throw lastError ?? failure
    lastError = failure
    const delay = backoffMs(attempt++, initialMs, maxMs, random())
    h.notice(`${why}; reconnecting in ${(delay / 1000).toFixed(1)}s`)
    try {
      await sleep(delay, undefined, { signal: o.signal })
    } catch {
      return 'aborted'
    }
  }
}
