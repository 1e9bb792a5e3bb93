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
  // The complete WebSocket frame of the `record` message (header + payload), built once at
  // ingest and written as is to every listener's socket.
  wire: Buffer
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
// A batch of whole frames is written to the socket at once when it reaches either bound.
const BATCH_FRAMES = 256
const BATCH_BYTES = 256 * 1024

// Builds `{"type":"record","seq":N,"record":<original bytes>}` without touching the record.
export function recordFrame(seq: number, body: Buffer, start: number, end: number): Buffer {
  const head = `${RECORD_HEAD}${seq},"record":`
  const frame = Buffer.allocUnsafe(head.length + (end - start) + 1)
  frame.write(head, 0, 'latin1')
  body.copy(frame, head.length, start, end)
  frame[frame.length - 1] = 0x7d // }
  return frame
}

// Bytes of the header of an unmasked server frame carrying `n` payload bytes (RFC 6455 §5.2).
function headerLength(n: number): number {
  return n < 126 ? 2 : n < 65536 ? 4 : 10
}

// Writes the header of an unmasked text frame (FIN, opcode 1) for `n` payload bytes at the start
// of `wire`, which has room for it; returns the header's length.
function writeHeader(wire: Buffer, n: number): number {
  const h = headerLength(n)
  wire[0] = 0x81
  if (h === 2) wire[1] = n
  else if (h === 4) {
    wire[1] = 126
    wire.writeUInt16BE(n, 2)
  } else {
    wire[1] = 127
    wire.writeUInt32BE(Math.floor(n / 2 ** 32), 2)
    wire.writeUInt32BE(n >>> 0, 6)
  }
  return h
}

// One complete WebSocket text frame carrying `text` (a server message).
export function textWireFrame(text: string): Buffer {
  const n = Buffer.byteLength(text)
  const wire = Buffer.allocUnsafe(headerLength(n) + n)
  wire.write(text, writeHeader(wire, n), 'utf8')
  return wire
}

// The `record` message of `recordFrame` as one complete WebSocket text frame (FIN, opcode 1,
// unmasked: server to client), in a single allocation. The payload is the same bytes.
export function recordWireFrame(seq: number, body: Buffer, start: number, end: number): Buffer {
  const head = `${RECORD_HEAD}${seq},"record":`
  const n = head.length + (end - start) + 1
  const wire = Buffer.allocUnsafe(headerLength(n) + n)
  const h = writeHeader(wire, n)
  wire.write(head, h, 'latin1')
  body.copy(wire, h + head.length, start, end)
  wire[wire.length - 1] = 0x7d // }
  return wire
}

// The message inside a frame built by `recordWireFrame`.
export function wirePayload(wire: Buffer): Buffer {
  const len = wire[1]! & 0x7f
  return wire.subarray(len < 126 ? 2 : len === 126 ? 4 : 10)
}

// ws internals the batched path relies on: its TCP socket and its sender's queue (non-empty only
// while compressing or reading a Blob, neither of which the relay does).
interface WsInternals {
  _socket?: { write(b: Buffer): boolean; writable: boolean }
  _sender?: { _queue?: unknown[] }
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
  #deniedParts = new Map<string, [string, string]>()
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

  // The `denied` message, as JSON.stringify would write it. Its per-pod parts are kept: with
  // pods mixed in every chunk, most denied records need a notice of their own.
  #deniedNotice(pod: string, seq: number, count: number): string {
    let parts = this.#deniedParts.get(pod)
    if (!parts) {
      if (this.#deniedParts.size >= 1024) this.#deniedParts.clear()
      parts = [
        `,"pod":${JSON.stringify(pod)},"count":`,
        `,"message":${JSON.stringify(deniedText(pod, this.user.username))}}`,
      ]
      this.#deniedParts.set(pod, parts)
    }
    return `{"type":"denied","seq":${seq}${parts[0]}${count}${parts[1]}`
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
    // Records go out as pre-built frames written straight to the TCP socket under ws, many
    // frames per write: ws would build a header and make two writes per message. This is safe
    // because permessage-deflate is off, only whole frames are written, and nothing is waiting in
    // ws's sender (control messages above went out through it first, so order is kept);
    // ws.bufferedAmount counts the socket's buffer, so the high-water check stays exact.
    const internals = ws as unknown as WsInternals
    const tcp = internals._socket
    const direct = tcp?.writable === true && ws.readyState === ws.OPEN && !internals._sender?._queue?.length
    const batch: Buffer[] = []
    let batchBytes = 0
    const flushBatch = (): void => {
      if (batch.length === 0) return
      tcp!.write(batch.length === 1 ? batch[0]! : Buffer.concat(batch, batchBytes))
      batch.length = 0
      batchBytes = 0
    }
    const queue = (wire: Buffer): void => {
      batch.push(wire)
      batchBytes += wire.length
      if (batch.length >= BATCH_FRAMES || batchBytes >= BATCH_BYTES) flushBatch()
    }
    let sent = 0
    let sentBytes = 0
    let denied = 0
    let pending: { pod: string; seq: number; count: number } | null = null
    const flushDenied = (): void => {
      if (!pending) return
      const { pod, seq, count } = pending
      pending = null
      const text = this.#deniedNotice(pod, seq, count)
      // In the batch, between the records around it, like the records themselves.
      if (direct) queue(textWireFrame(text))
      else ws.send(text)
    }
    const last = ring.lastSeq
    while (this.cursor <= last) {
      if (ws.bufferedAmount + batchBytes >= this.#highWater) {
        this.#blocked = true
        break
      }
      const seq = this.cursor++
      const e = ring.get(seq)!
      if (allowed(e.rules, this.key)) {
        flushDenied()
        if (direct) queue(e.wire)
        else ws.send(wirePayload(e.wire), TEXT)
        sent++
        sentBytes += e.size
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
    flushBatch()
    // Blocked: a ping queued behind the data calls us back once all of it reached the kernel.
    if (this.#blocked) ws.ping(undefined, undefined, this.#onWritten)
    if (sent) {
      this.#tap.metrics.recordsOut.inc(sent)
      this.#tap.metrics.bytesOut.inc(sentBytes)
    }
    if (denied) this.#tap.metrics.denied.inc(denied)
  }
}
