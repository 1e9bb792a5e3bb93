// One WebSocket client of one tap. A listener is a cursor into its tap's ring: `pump()` sends
// what lies between the cursor and the newest record, applying per-record RBAC, until the
// socket's outgoing buffer reaches its high-water mark; it resumes when that data is written.
// So a stalled client holds at most `highWater` bytes of its own plus its place in the ring,
// and never delays ingest or any other listener.
import type { WebSocket } from 'ws'
import type { DroppedMessage } from '../../api/stream-protocol.ts'
import type { RelayUser } from './access.ts'
import {
  BatchBuffers,
  deniedFrameLength,
  type FramePool,
  type FrameStore,
  textFrameLength,
  textWireFrame,
  wirePayload,
  writeDeniedFrame,
  writeTextFrame,
} from './frames.ts'
import type { DropReason, TapMetrics } from './metrics.ts'
import { allowed, deniedText, ruleKey } from './rbac.ts'
import type { RecordMeta } from './records.ts'
import type { RecordRing } from './ring.ts'
import { type DirectSocket, directSocket } from './ws-direct.ts'

// What a listener needs from its tap (kept narrow so listeners are easy to reason about).
export interface ListenerTap {
  readonly ring: RecordRing
  readonly metrics: TapMetrics
  readonly memory: { readonly frames: FramePool; readonly batches: BatchBuffers }
}

const TEXT = { binary: false } as const

export class Listener {
  readonly ws: WebSocket
  readonly user: RelayUser
  readonly key: string // the RBAC rule key of the user
  readonly highWater: number // bytes its socket may hold before we stop writing to it
  alive = true // set by pong, cleared by each keepalive sweep
  cursor: number // next seq to send
  #tap: ListenerTap
  #blocked = false
  #closed = false
  #skipped = 0
  #deniedParts = new Map<string, [Buffer, Buffer]>()
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
    this.highWater = highWater
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

  // The `denied` message's per-pod parts, as JSON.stringify would write them, encoded once: with
  // pods mixed in every chunk, most denied records need a notice of their own.
  #deniedPartsOf(pod: string): [Buffer, Buffer] {
    let parts = this.#deniedParts.get(pod)
    if (!parts) {
      if (this.#deniedParts.size >= 1024) this.#deniedParts.clear()
      parts = [
        Buffer.from(`,"pod":${JSON.stringify(pod)},"count":`),
        Buffer.from(`,"message":${JSON.stringify(deniedText(pod, this.user.username))}}`),
      ]
      this.#deniedParts.set(pod, parts)
    }
    return parts
  }

  // Frames written to the socket from their stores (not copied) refer to them until the write
  // is done: pinned, a store is not reused.
  #pin(stores: FrameStore[]): (err?: Error | null) => void {
    for (const st of stores) st.pins++
    const frames = this.#tap.memory.frames
    return () => {
      for (const st of stores) if (--st.pins === 0) frames.release(st)
    }
  }

  // Batch buffers: frames are copied into #out and [#outStart, #outUsed) is written at once.
  // A buffer the socket may still be reading from is kept (#out, or #retired when full) until the
  // socket has nothing left to write; an idle listener holds none.
  #out: Buffer | null = null
  #outStart = 0
  #outUsed = 0
  #retired: Buffer[] = []

  // The socket has written everything it was given: every batch buffer is free again.
  #drained(): void {
    const batches = this.#tap.memory.batches
    for (const b of this.#retired) batches.release(b)
    this.#retired = []
    this.#outStart = this.#outUsed = 0
  }

  #flush(tcp: DirectSocket): void {
    const out = this.#out
    if (!out || this.#outUsed === this.#outStart) return
    tcp.write(out.subarray(this.#outStart, this.#outUsed))
    // Taken by the kernel at once (the usual case): the buffer can be filled again.
    if (tcp.writableLength === 0) this.#drained()
    else this.#outStart = this.#outUsed
  }

  // Makes room for n bytes (at most BatchBuffers.BYTES) in #out.
  #room(tcp: DirectSocket, n: number): Buffer {
    if (this.#out && BatchBuffers.BYTES - this.#outUsed >= n) return this.#out
    if (this.#out) {
      this.#flush(tcp)
      if (BatchBuffers.BYTES - this.#outUsed >= n) return this.#out
      this.#retired.push(this.#out)
    }
    this.#out = this.#tap.memory.batches.acquire()
    this.#outStart = this.#outUsed = 0
    return this.#out
  }

  // Gives the batch buffers back (the socket is closed).
  release(): void {
    this.#drained()
    if (this.#out) this.#tap.memory.batches.release(this.#out)
    this.#out = null
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
    if (tcp && tcp.writableLength === 0) this.#drained()
    // A message other than a record, in the stream between the records around it.
    const notice = (text: string): void => {
      if (!tcp) {
        ws.send(text)
        return
      }
      const n = Buffer.byteLength(text)
      const len = textFrameLength(n)
      if (len > BatchBuffers.BYTES) {
        this.#flush(tcp)
        tcp.write(textWireFrame(text))
        return
      }
      const out = this.#room(tcp, len)
      this.#outUsed += writeTextFrame(out, this.#outUsed, text, n)
    }
    let sent = 0
    let sentBytes = 0
    let denied = 0
    let pending: { pod: string; seq: number; count: number } | null = null
    const flushDenied = (): void => {
      if (!pending) return
      const { pod, seq, count } = pending
      pending = null
      const [mid, tail] = this.#deniedPartsOf(pod)
      if (!tcp) {
        ws.send(`{"type":"denied","seq":${seq}${mid.toString()}${count}${tail.toString()}`)
        return
      }
      const len = deniedFrameLength(seq, count, mid, tail)
      if (len > BatchBuffers.BYTES)
        notice(`{"type":"denied","seq":${seq}${mid.toString()}${count}${tail.toString()}`)
      else {
        const out = this.#room(tcp, len)
        this.#outUsed += writeDeniedFrame(out, this.#outUsed, seq, count, mid, tail)
      }
    }
    // Records dropped before they reached the ring (slots without a frame), told as one notice.
    let gap: { from: number; to: number; reason: DropReason } | null = null
    const flushGap = (): void => {
      if (!gap) return
      const { from, to, reason } = gap
      gap = null
      notice(
        `{"type":"dropped","count":${to - from + 1},"fromSeq":${from},"toSeq":${to},"reason":"${reason}"}`,
      )
    }
    const { stores, offs, lens, sizes, metas } = ring
    const last = ring.lastSeq
    while (this.cursor <= last) {
      if (ws.bufferedAmount + this.#outUsed - this.#outStart >= this.highWater) {
        this.#blocked = true
        break
      }
      const seq = this.cursor++
      const i = ring.index(seq)
      const store = stores[i]
      if (!store) {
        flushDenied()
        const reason = metas[i] as DropReason
        if (gap && gap.reason === reason) gap.to = seq
        else {
          flushGap()
          gap = { from: seq, to: seq, reason }
        }
        continue
      }
      flushGap()
      const meta = metas[i] as RecordMeta
      if (allowed(meta.rules, this.key)) {
        flushDenied()
        const off = offs[i]!
        const len = lens[i]!
        if (!tcp) ws.send(wirePayload(store.buf.subarray(off, off + len)), TEXT, this.#pin([store]))
        else if (len <= BatchBuffers.BYTES) {
          const out = this.#room(tcp, len)
          store.buf.copy(out, this.#outUsed, off, off + len)
          this.#outUsed += len
        } else {
          // Larger than a batch: written from its store, which stays pinned until then.
          this.#flush(tcp)
          tcp.write(store.buf.subarray(off, off + len), this.#pin([store]))
        }
        sent++
        sentBytes += sizes[i]!
      } else {
        // Consecutive denials for one pod in one batch become one notice with a count.
        denied++
        if (pending && pending.pod === meta.pod) {
          pending.count++
          pending.seq = seq
        } else {
          flushDenied()
          pending = { pod: meta.pod, seq, count: 1 }
        }
      }
    }
    flushGap()
    flushDenied()
    if (tcp) {
      this.#flush(tcp)
      // Nothing left in flight: an idle listener holds no buffer.
      if (this.#out && this.#outUsed === 0) {
        this.#tap.memory.batches.release(this.#out)
        this.#out = null
      }
    }
    // Blocked: a ping queued behind the data calls us back once all of it reached the kernel.
    if (this.#blocked) ws.ping(undefined, undefined, this.#onWritten)
    if (sent) {
      this.#tap.metrics.recordsOut.inc(sent)
      this.#tap.metrics.bytesOut.inc(sentBytes)
    }
    if (denied) this.#tap.metrics.denied.inc(denied)
  }
}
