// One WebSocket client of one tap. A listener is a cursor into its tap's ring: `pump()` sends
// what lies between the cursor and the newest record, applying per-record RBAC, until the
// socket's outgoing buffer reaches its high-water mark; it resumes when that data is written.
// So a stalled client holds at most `highWater` bytes of its own plus its place in the ring,
// and never delays ingest or any other listener.
import type { WebSocket } from 'ws'
import type { DroppedMessage } from '../../api/stream-protocol.ts'
import type { RelayUser } from './access.ts'
import { type FramePlace, textWireFrame, wirePayload } from './frames.ts'
import type { DropReason, TapMetrics } from './metrics.ts'
import { allowed, deniedText, type Rules, ruleKey } from './rbac.ts'
import type { Ring } from './ring.ts'
import { directSocket } from './ws-direct.ts'

// A record in the ring. Its place is the complete WebSocket frame of its `record` message,
// built once at ingest (frames.ts) and written as is to every listener's socket.
export interface Entry extends FramePlace {
  size: number // bytes of the original record
  pod: string
  rules: Rules
}

// What a listener needs from its tap (kept narrow so listeners are easy to reason about).
export interface ListenerTap {
  readonly ring: Ring<Entry>
  readonly metrics: TapMetrics
}

const TEXT = { binary: false } as const
// A batch of whole frames is written to the socket at once when it reaches either bound.
const BATCH_PIECES = 256
const BATCH_BYTES = 256 * 1024

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
    // frames per write (ws-direct.ts says when that is safe; otherwise one ws.send each). The
    // messages above went out through ws first, so order is kept; ws.bufferedAmount counts the
    // socket's buffer, so the high-water check stays exact.
    const tcp = directSocket(ws)
    const direct = tcp !== null
    const batch: Buffer[] = []
    let batchBytes = 0
    const flushBatch = (): void => {
      flushRun()
      if (batch.length === 0) return
      tcp!.write(batch.length === 1 ? batch[0]! : Buffer.concat(batch, batchBytes))
      batch.length = 0
      batchBytes = 0
    }
    const queue = (wire: Buffer): void => {
      batch.push(wire)
      batchBytes += wire.length
      if (batch.length >= BATCH_PIECES || batchBytes >= BATCH_BYTES) flushBatch()
    }
    // Frames adjacent in one store go out as one slice: [runStart, runEnd) of runStore.
    let runStore: Buffer | null = null
    let runStart = 0
    let runEnd = 0
    const flushRun = (): void => {
      const slice = runStore && runEnd > runStart ? runStore.subarray(runStart, runEnd) : null
      runStore = null // first: queue() may flush the batch, which flushes the run
      runStart = runEnd = 0
      if (slice) queue(slice)
    }
    const queueFrame = (e: FramePlace): void => {
      if (runStore !== e.store || runEnd !== e.off) {
        flushRun()
        runStore = e.store
        runStart = runEnd = e.off
      }
      runEnd += e.len
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
      if (direct) {
        flushRun()
        queue(textWireFrame(text))
      } else ws.send(text)
    }
    const last = ring.lastSeq
    while (this.cursor <= last) {
      if (ws.bufferedAmount + batchBytes + runEnd - runStart >= this.#highWater) {
        this.#blocked = true
        break
      }
      const seq = this.cursor++
      const e = ring.get(seq)!
      if (allowed(e.rules, this.key)) {
        flushDenied()
        if (direct) queueFrame(e)
        else ws.send(wirePayload(e.store.subarray(e.off, e.off + e.len)), TEXT)
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
