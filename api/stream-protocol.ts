// The stream protocol between the relay and its clients (k8stail, browsers).
//
// One WebSocket text frame carries exactly one JSON message. Every message has a `type`.
// Records keep the exact bytes fluentd posted: the relay splices them into the frame as the value
// of `record` without re-serialising, so `JSON.parse(frame).record` is the original record and
// the substring after `"record":` (minus the final `}`) is byte-identical to what was posted.
//
// Sequence numbers (`seq`) are per tap and per relay `epoch`: every record the relay accepts for a
// tap takes the next number, whether a listener is shown the record or a `denied` notice.
// A client resumes with `?since=<seq>&epoch=<epoch>`; when the epoch differs (the relay
// restarted) the relay says so in `hello` and the client reports the gap.
//
// Selection (api/selection.ts): a client may send one with the stream request (`selection`); the
// relay applies it, combined with the LogTap's own, before records are framed. Records it filters
// out are not told (nor is their seq); records it leaves out by sampling or a per-pod rate are told
// in `sampled` notices, summarised at most once a second. With a selection, `denied` notices are
// summarised per pod at most once a second too, so a notice's `seq` may be lower than that of
// records sent before it: clients must not drop a `denied` notice for its seq.
import type { SelectionSummary } from './selection.ts'
// Replicas: the relay may run as several replicas behind one Service, each ingesting the posts
// the Service gives it, each with its own rings, sequence numbers and epoch. A replica names
// itself and the ready replicas in `hello` and sends `replicas` whenever that set changes, so a
// client can read the tap from every replica and merge the streams (sequence numbers, epoch and
// resume are per replica). A relay that sends no `replicas` in `hello` is a single relay.

export interface HelloMessage {
  type: 'hello'
  tap: string // "<namespace>/<name>"
  epoch: string // changes when the relay restarts: sequence numbers are only comparable within one epoch
  user: string // the authenticated username the per-record RBAC is evaluated for
  lastSeq: number // the newest sequence number the relay has for this tap (0: none yet)
  replayFrom: number // first sequence number that will be replayed (0: no replay)
  resumed: boolean // true when `since` was honoured within the same epoch without loss
  selection?: SelectionSummary // present when a selection applies (the listener's and/or the tap's)
  replica?: ReplicaRef // which replica this is; absent from relays older than replicas
  // The ready replicas of the relay Service (this one included while it is ready); absent when
  // the relay runs alone (no Service to watch).
  replicas?: ReplicaRef[]
}

// One relay replica: its pod's name and the port its stream listens on, which is how a client
// addresses it through the API server's pod proxy (`pods/<name>:<port>/proxy/...`).
export interface ReplicaRef {
  name: string
  port: number
}

// The set of ready replicas changed (one became ready, or went away: shutting down, failed its
// readiness probe, or was deleted). Sent by every replica to all of its listeners.
export interface ReplicasMessage {
  type: 'replicas'
  replicas: ReplicaRef[]
}

/** @public (protocol message for every client) */
export interface RecordMessage {
  type: 'record'
  seq: number
  record: unknown // the original record, spliced in byte for byte
}

export interface DeniedMessage {
  type: 'denied'
  seq: number // the sequence number of the (last) denied record
  pod: string // "<namespace>/<pod>" or "" when the record carries no kubernetes metadata
  count: number // denied records this notice stands for (repeated denials for one pod are summarised)
  message: string // "Permission denied to access <pod> logs for <user>" (the original's wording)
}

export interface DroppedMessage {
  type: 'dropped'
  count: number // records this listener lost (its queue overflowed or the replay buffer no longer had them)
  fromSeq: number
  toSeq: number
  reason: 'slow-consumer' | 'replay-exhausted' | 'relay-overloaded'
}

/** @public (protocol message for every client) */
export interface StatusMessage {
  type: 'status'
  phase: 'waiting' | 'ready' | 'deleted'
  message: string
}

export interface SkippedMessage {
  type: 'skipped'
  count: number // malformed lines the relay skipped in a posted chunk
}

// Records this listener's selection left out by sampling or a per-pod rate cap since the previous
// `sampled` notice (at most one a second); the records between fromSeq and toSeq that it was sent
// or that the filter left out are not counted.
export interface SampledMessage {
  type: 'sampled'
  count: number // sampled + capped
  sampled: number // left out by sampling
  capped: number // over the per-pod rate cap
  pods: number // how many pods went over the cap
  fromSeq: number
  toSeq: number
  percent: number // the share sampling keeps, in percent (100: no sampling)
}

export type StreamMessage =
  | HelloMessage
  | RecordMessage
  | DeniedMessage
  | DroppedMessage
  | StatusMessage
  | SkippedMessage
  | SampledMessage
  | ReplicasMessage

// WebSocket close codes the relay uses (4000-4999 is the application range).
export const CloseCodes = {
  GoingAway: 1001, // relay shutting down: reconnect (to the other replicas, or to this one once it is back)
  InternalError: 1011, // the relay failed to set the stream up: reconnect
  TapDeleted: 4004, // the LogTap is gone: do not reconnect
  Unauthorized: 4001,
  Forbidden: 4003,
  // The token the stream was opened with expired: reconnect, resuming, with a fresh one (a token
  // from the user's kubeconfig is refreshed by its exec plugin or OIDC provider).
  TokenExpired: 4011,
  SelectionTooCostly: 4008, // the listener's selection used too much CPU: do not reconnect with it
  TapReconfigured: 4012, // the LogTap changed in a way that needs a new stream: reconnect
} as const

// The one-line JSON body of a refused upgrade (401/403/404/...), for the CLI to show.
export interface RefusalBody {
  error: string
  reason: string
}

// Resume and replay parameters of the stream request. As query parameters: `since` + `epoch`
// (resume after `since` in that epoch) or `tail` (first connection: replay up to that many recent
// records; absent or 0: live only). The API server's service proxy drops the query string of
// WebSocket upgrades (kubernetes/kubernetes#90721, closed unfixed), so clients send the same values
// in these headers too; the relay reads the query first, then the headers. Header values are
// percent-encoded (encodeURIComponent), which leaves numbers and epochs as they are.
// `selection` is a SelectionSpec (api/selection.ts) as JSON, at most MAX_SELECTION_BYTES; a bad one
// is refused before the upgrade: 400 {"error":"bad-selection","reason":"selection.where: …"}.
export const StreamParamHeaders = {
  since: 'x-log-socket-since',
  epoch: 'x-log-socket-epoch',
  tail: 'x-log-socket-tail',
  selection: 'x-log-socket-selection',
} as const
