// The spec of a syslog-ng tap's SyslogNGOutput/SyslogNGClusterOutput: an http() destination that
// posts the records to the relay as syslog-ng received them, and can never hurt the tapped flow.
// - The body is syslog-ng's default, `${MESSAGE}`: logging-operator's source does not parse the
//   message (`flags(no-parse)`), so that is fluent-bit's JSON line verbatim, one per record.
// - Batches (`batch-lines`/`batch-bytes`, flushed at the latest after `batch-timeout` ms) join
//   the lines with syslog-ng's default delimiter, "\n": an NDJSON body, sent with the
//   Content-Type saying so (syslog-ng sets none, and libcurl's default is a form).
// - A bounded memory queue (`log-fifo-size` messages, nothing on disk): logging-operator renders
//   its log paths without flow-control, so a full queue drops new messages, never stalls the
//   source that feeds the other destinations.
// - syslog-ng 3.38 keeps a batch answered 4xx and sends it again with the next one, for ever (so
//   the batch, and memory, grow); AxoSyslog, logging-operator's image, drops it. `response-action`
//   makes both drop what the relay will never take: a wrong credential (403), a tap that is gone
//   (404, what a deleted tap's stale destination gets until the operator's reload), a body too
//   large (413), and the rest of the relay's refusals. 3.38 also treats 5xx as a lost connection
//   and re-sends the batch every `time_reopen` seconds for ever: `retry` makes it a failed batch,
//   tried `retries` times in all, then dropped.
import { CREDENTIAL_KEYS } from './credential-secret.ts'

// At most this many records in one POST, and about this many bytes (syslog-ng sends once a batch
// reaches it, so one record may overshoot; the relay takes up to 16 MiB).
const BATCH_LINES = 1000
const BATCH_BYTES = 1024 * 1024
const BATCH_TIMEOUT_MS = 1000
const QUEUE_MESSAGES = 10_000
// The relay's refusals, and the client errors a proxy in front of it could answer.
const DROPPED_STATUSES = [400, 401, 403, 404, 405, 408, 413, 415, 429]
// The relay's (or a proxy's) server errors: worth another try or two, never an endless one.
const RETRIED_STATUSES = [500, 502, 503, 504]

export interface SyslogNgTarget {
  url: string // the tap's ingest URL
  user: string // the tap's name (the relay checks the password only)
  secret: string // the credential Secret (its password key)
}

export function syslogNgOutputSpec(t: SyslogNgTarget): Record<string, unknown> {
  return {
    http: {
      url: t.url,
      method: 'POST',
      headers: ['Content-Type: application/x-ndjson'],
      user: t.user,
      password: { valueFrom: { secretKeyRef: { name: t.secret, key: CREDENTIAL_KEYS.password } } },
      'batch-lines': BATCH_LINES,
      'batch-bytes': BATCH_BYTES,
      'batch-timeout': BATCH_TIMEOUT_MS,
      'log-fifo-size': QUEUE_MESSAGES,
      timeout: 10,
      retries: 3,
      time_reopen: 2,
      'response-action': Object.fromEntries([
        ...DROPPED_STATUSES.map((s) => [String(s), 'drop']),
        ...RETRIED_STATUSES.map((s) => [String(s), 'retry']),
      ]),
    },
  }
}
