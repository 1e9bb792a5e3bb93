// One WebSocket client of one tap. A listener is a cursor into its tap's ring: `pump()` sends
// what lies between the cursor and the newest record, applying per-record RBAC, until the
// socket's outgoing buffer reaches its high-water mark; it resumes when that data is written.
// So a stalled client holds at most `highWater` bytes of its own plus its place in the ring,
// and never delays ingest or any other listener.
import type { WebSocket } from 'ws'
import type { DroppedMessage } from '../api/stream.ts'
import type { DropReason, TapMetrics } from './metrics.ts'
import { allowed, deniedText, type Rules, ruleKey } from './rbac.ts'
import type { Ring } from './ring.ts'

export interface RelayUser {
  username: string
  uid?: string
  groups: string[]
  extra?: Record<string, string[]> // TokenReview extras, passed on to SubjectAccessReview
}

export interface Entry {
  size: number // bytes of the original record
  frame: Buffer // the complete `record` message, built once and shared by all listeners
  pod: string
  rules: Rules
}

// What a listener needs from its tap (kept narrow so listeners are easy to reason about).
export interface ListenerTap {
  readonly ring: Ring<Entry>
  readonly metrics: TapMetrics
}

const TEXT = { binary: false } as const
const RECORD_HEAD = '{"type":"record","seq":'

// Builds `{"type":"record","seq":N,"record":<original bytes>}` without touching the record.
export function recordFrame(seq: number, body: Buffer, start: number, end: number): Buffer {
  const head = `${RECORD_HEAD}${seq},"record":`
  const frame = Buffer.allocUnsafe(head.length + (end - start) + 1)
  frame.write(head, 0, 'latin1')
  body.copy(frame, head.length, start, end)
  frame[frame.length - 1] = 0x7d // }
  return frame
}

export class Listener {
  readonly ws: WebSocket
  readonly user: RelayUser
  readonly key: string // the RBAC rule key of the user
  alive = true // set by pong, cleared by each keepalive sweep
  cursor: number // next seq to send
  #tap: ListenerTap
  #highWater: number
  #blocked = false
  #closed = false
  #skipped = 0
  #dropped: { count: number; fromSeq: number; toSeq: number; reason: DropReason } | null = null
  readonly #onWritten = (err?: Error): void => {
    if (err || !this.#blocked) return
    this.#blocked = false
    this.pump()
  }

  constructor(tap: ListenerTap, ws: WebSocket, user: RelayUser, cursor: number, highWater: number) {
    this.#tap = tap
    this.ws = ws
    this.user = user
    this.key = ruleKey(user.username)
    this.cursor = cursor
    this.#highWater = highWater
  }

  markClosed(): void {
    this.#closed = true
  }

  sendNow(message: object): void {
    if (!this.#closed) this.ws.send(JSON.stringify(message))
  }

  addSkipped(n: number): void {
    this.#skipped += n
  }

  // Records [fromSeq, toSeq] were lost for this listener; told before anything newer.
  addDropped(fromSeq: number, toSeq: number, reason: DropReason): void {
    const count = toSeq - fromSeq + 1
    if (count <= 0) return
    this.#tap.metrics.dropped(reason, count)
    if (this.#dropped) {
      this.#dropped.count += count
      this.#dropped.toSeq = toSeq
      this.#dropped.reason = reason
    } else this.#dropped = { count, fromSeq, toSeq, reason }
  }

  pump(): void {
    if (this.#closed || this.#blocked) return
    const ws = this.ws
    const ring = this.#tap.ring
    // The ring moved past us while we were stalled: those records are gone for this listener.
    if (this.cursor < ring.firstSeq) {
      this.addDropped(this.cursor, ring.firstSeq - 1, 'slow-consumer')
      this.cursor = ring.firstSeq
    }
    if (this.#dropped) {
      const d: DroppedMessage = { type: 'dropped', ...this.#dropped }
      ws.send(JSON.stringify(d))
      this.#dropped = null
    }
    if (this.#skipped) {
      ws.send(`{"type":"skipped","count":${this.#skipped}}`)
      this.#skipped = 0
    }
    let sent = 0
    let sentBytes = 0
    let denied = 0
    let pending: { pod: string; seq: number; count: number } | null = null
    const flushDenied = (): void => {
      if (!pending) return
      const { pod, seq, count } = pending
      ws.send(
        JSON.stringify({ type: 'denied', seq, pod, count, message: deniedText(pod, this.user.username) }),
      )
      pending = null
    }
    // One writev per batch instead of one write per frame: cork the TCP socket under ws
    // (ws itself corks only around a single frame). `_socket` is ws's own field; without it we
    // simply write uncorked.
    const tcp = (ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket
    tcp?.cork()
    const last = ring.lastSeq
    while (this.cursor <= last) {
      if (ws.bufferedAmount >= this.#highWater) {
        this.#blocked = true
        break
      }
      const seq = this.cursor++
      const e = ring.get(seq)!
      if (allowed(e.rules, this.key)) {
        flushDenied()
        ws.send(e.frame, TEXT)
        sent++
        sentBytes += e.size
        // Flush every 256 frames (512 iovecs, under IOV_MAX): a writev that fits completes at
        // once while the kernel has room, so bufferedAmount stays honest. One huge corked batch
        // is written IOV_MAX buffers per event-loop turn instead, between ingest chunks, and the
        // listener sat blocked at the high-water mark most of the time (bench: 50% dropped).
        if ((sent & 255) === 0) {
          tcp?.uncork()
          tcp?.cork()
        }
      } else {
        // Consecutive denials for one pod in one batch become one notice with a count.
        denied++
        if (pending && pending.pod === e.pod) {
          pending.count++
          pending.seq = seq
        } else {
          flushDenied()
          pending = { pod: e.pod, seq, count: 1 }
        }
      }
    }
    flushDenied()
    tcp?.uncork()
    // Blocked: a ping queued behind the data calls us back once all of it reached the kernel.
    if (this.#blocked) ws.ping(undefined, undefined, this.#onWritten)
    if (sent) {
      this.#tap.metrics.recordsOut.inc(sent)
      this.#tap.metrics.bytesOut.inc(sentBytes)
    }
    if (denied) this.#tap.metrics.denied.inc(denied)
  }
}
