// Everything k8stail prints goes through one OutputBatch. Pieces are copied side by side into a
// buffer that reaches the sink when it is full or once per turn of the event loop, not one write
// per record: each write is a system call. Through the API server every TLS record (up to 16 KB)
// is its own read, so writing per read would still mean a write per dozen records.
//
// A sink that answers a write with `false` (a pipe or a pager that is not reading) is full.
// flushSoon() then returns a promise that settles on 'drain', and the stream does not read its
// socket until then: k8stail holds at most the sink's high-water mark plus a few reads' worth of
// output, and the relay, whose writes to us stall, drops records and says so.
import type { Sink } from './types.ts'

// Several turns share a buffer (each writes its own part), so a write is rarely cut in two by a
// full buffer; a pipe write moves at most 64 KB at a time, so larger writes gain little.
const BATCH_BYTES = 256 * 1024
const NL = 0x0a
const EMPTY = new Uint8Array(0)

export class OutputBatch {
  readonly #sink: Sink
  #buf = Buffer.allocUnsafe(0)
  #start = 0 // [start, used) of buf is batched and not written yet
  #used = 0
  #full: Promise<void> | undefined // until the sink drains
  #soon = false // a flush is scheduled for the end of this turn of the event loop
  readonly #flushNow = (): void => {
    this.#soon = false
    void this.flush()
  }

  constructor(sink: Sink) {
    this.#sink = sink
  }

  // Bytes and a newline.
  line(bytes: Uint8Array): void {
    if (this.#buf.length - this.#used <= bytes.length) this.#renew(bytes.length + 1)
    this.#buf.set(bytes, this.#used)
    this.#used += bytes.length
    this.#buf[this.#used++] = NL
  }

  // Text as UTF-8 (callers include the newline).
  text(s: string): void {
    const most = s.length * 3 // UTF-8 bytes per UTF-16 unit, at most
    if (this.#buf.length - this.#used < most) this.#renew(most)
    this.#used += this.#buf.write(s, this.#used)
  }

  // After a read: what is batched is written at the end of this turn of the event loop, with
  // whatever the other reads of this turn add. While the sink is full: a promise that settles
  // once it drained (or closed); read no more input until then.
  flushSoon(): Promise<void> | undefined {
    if (this.#used > this.#start && !this.#soon) {
      this.#soon = true
      setImmediate(this.#flushNow)
    }
    return this.#full
  }

  // Writes what is batched now (before a line on stderr, say). The promise as for flushSoon().
  flush(): Promise<void> | undefined {
    if (this.#used > this.#start) {
      const chunk = this.#buf.subarray(this.#start, this.#used)
      this.#start = this.#used // written bytes are never touched again: the sink may keep them
      if (this.#sink.write(chunk) === false) this.#waitForDrain()
    }
    return this.#full
  }

  // Flushes and waits until the sink handed everything on (a pipe's writes are asynchronous:
  // process.exit would lose what is still queued).
  async settle(): Promise<void> {
    await this.flush()
    const sink = this.#sink
    if (!sink.writableLength) return
    // Writes complete in order: an empty one completes after everything before it.
    await new Promise<void>((resolve) => {
      const done = (): void => {
        for (const e of EVENTS) sink.off?.(e, done)
        resolve()
      }
      for (const e of EVENTS.slice(1)) sink.once?.(e, done)
      sink.write(EMPTY, done)
    })
  }

  // Writes what is batched and continues in a new buffer with room for `n` bytes.
  #renew(n: number): void {
    void this.flush()
    this.#buf = Buffer.allocUnsafe(Math.max(BATCH_BYTES, n))
    this.#start = 0
    this.#used = 0
  }

  #waitForDrain(): void {
    const sink = this.#sink
    if (this.#full || !sink.once) return // a sink without events never makes us wait
    this.#full = new Promise<void>((resolve) => {
      const done = (): void => {
        for (const e of EVENTS) sink.off?.(e, done)
        this.#full = undefined
        resolve()
      }
      for (const e of EVENTS) sink.once!(e, done)
    })
  }
}

const EVENTS = ['drain', 'close', 'error'] as const
