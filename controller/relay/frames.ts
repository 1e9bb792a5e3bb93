// The relay's server messages as complete WebSocket frames (RFC 6455 §5.2: FIN, text opcode,
// unmasked, as a server sends them). A record's frame is built once at ingest and the same bytes
// are written to every listener's socket; nothing re-serialises the record.
import { Pool } from './budget.ts'

const RECORD_HEAD = Buffer.from('{"type":"record","seq":')
const RECORD_MID = Buffer.from(',"record":')
const ZERO = 0x30
const RBRACE = 0x7d

function digitCount(n: number): number {
  let d = 1
  for (let x = n; x >= 10; x = Math.floor(x / 10)) d++
  return d
}

// Bytes of the header of an unmasked server frame carrying `n` payload bytes.
function headerLength(n: number): number {
  return n < 126 ? 2 : n < 65536 ? 4 : 10
}

// Writes the header of a text frame for `n` payload bytes at `at`; returns its length.
function writeHeader(b: Buffer, at: number, n: number): number {
  const h = headerLength(n)
  b[at] = 0x81
  if (h === 2) b[at + 1] = n
  else if (h === 4) {
    b[at + 1] = 126
    b[at + 2] = n >>> 8
    b[at + 3] = n & 0xff
  } else {
    b[at + 1] = 127
    b.writeUInt32BE(Math.floor(n / 2 ** 32), at + 2)
    b.writeUInt32BE(n >>> 0, at + 6)
  }
  return h
}

// Length of the `record` message `{"type":"record","seq":N,"record":<bytes>}` for n record bytes.
function recordMessageLength(seq: number, n: number): number {
  return RECORD_HEAD.length + digitCount(seq) + RECORD_MID.length + n + 1
}

// Writes the frame of record `seq` (the bytes [start, end) of body, making a message of n bytes)
// at `at`; returns the frame's length.
function writeRecordFrame(
  b: Buffer,
  at: number,
  n: number,
  seq: number,
  body: Buffer,
  start: number,
  end: number,
): number {
  let o = at + writeHeader(b, at, n)
  b.set(RECORD_HEAD, o)
  o += RECORD_HEAD.length
  const digits = digitCount(seq)
  for (let k = o + digits - 1, x = seq; k >= o; k--, x = Math.floor(x / 10)) b[k] = ZERO + (x % 10)
  o += digits
  b.set(RECORD_MID, o)
  o += RECORD_MID.length
  body.copy(b, o, start, end)
  o += end - start
  b[o] = RBRACE
  return o + 1 - at
}

// The `record` message alone (no frame header), for clients and tests.
export function recordFrame(seq: number, body: Buffer, start: number, end: number): Buffer {
  return wirePayload(recordWireFrame(seq, body, start, end))
}

// One record's frame in a buffer of its own.
export function recordWireFrame(seq: number, body: Buffer, start: number, end: number): Buffer {
  const n = recordMessageLength(seq, end - start)
  const wire = Buffer.allocUnsafe(headerLength(n) + n)
  writeRecordFrame(wire, 0, n, seq, body, start, end)
  return wire
}

// One complete frame carrying `text` (a server message).
export function textWireFrame(text: string): Buffer {
  const n = Buffer.byteLength(text)
  const wire = Buffer.allocUnsafe(headerLength(n) + n)
  wire.write(text, writeHeader(wire, 0, n), 'utf8')
  return wire
}

// Bytes of the complete frame carrying n bytes of text.
export function textFrameLength(n: number): number {
  return headerLength(n) + n
}

// Writes the frame carrying `text` (n bytes in UTF-8) at `at`; returns its length.
export function writeTextFrame(b: Buffer, at: number, text: string, n: number): number {
  const h = writeHeader(b, at, n)
  b.write(text, at + h, 'utf8')
  return h + n
}

const DENIED_HEAD = Buffer.from('{"type":"denied","seq":')

// Bytes of the frame of `{"type":"denied","seq":<seq><mid><count><tail>`: a `denied` message
// from the parts its listener keeps per pod (mid: `,"pod":…,"count":`, tail: `,"message":…}`).
export function deniedFrameLength(seq: number, count: number, mid: Buffer, tail: Buffer): number {
  const n = DENIED_HEAD.length + digitCount(seq) + mid.length + digitCount(count) + tail.length
  return headerLength(n) + n
}

// Writes that frame at `at`, building nothing; returns its length.
export function writeDeniedFrame(
  b: Buffer,
  at: number,
  seq: number,
  count: number,
  mid: Buffer,
  tail: Buffer,
): number {
  const n = DENIED_HEAD.length + digitCount(seq) + mid.length + digitCount(count) + tail.length
  let o = at + writeHeader(b, at, n)
  b.set(DENIED_HEAD, o)
  o += DENIED_HEAD.length
  o = writeDigits(b, o, seq)
  b.set(mid, o)
  o += mid.length
  o = writeDigits(b, o, count)
  b.set(tail, o)
  return o + tail.length - at
}

function writeDigits(b: Buffer, at: number, x: number): number {
  const d = digitCount(x)
  for (let k = at + d - 1; k >= at; k--, x = Math.floor(x / 10)) b[k] = ZERO + (x % 10)
  return at + d
}

// The message inside one frame.
export function wirePayload(wire: Buffer): Buffer {
  const len = wire[1]! & 0x7f
  return wire.subarray(len < 126 ? 2 : len === 126 ? 4 : 10)
}

// Record frames are written side by side into stores of STORE_BYTES: one allocation per hundred
// records instead of one per record, and consecutive frames are adjacent, so a listener that is
// sent a run of them writes one slice. Stores are recycled through the relay's FramePool rather
// than left to the garbage collector: freed buffers would otherwise pile up between major GCs as
// tens of MB of RSS at full speed. A store goes back to the pool once no ring holds a frame in it
// (`live`), no socket write in progress refers to it (`pins`), and its tap writes no more into it.
export interface FrameStore {
  readonly buf: Buffer
  live: number
  pins: number
  open: boolean // its tap is still writing frames into it
  free: boolean // on the pool's free list
}

export class FramePool {
  static readonly STORE_BYTES = 64 * 1024
  // Free stores kept for reuse; more than this go back to the garbage collector.
  static readonly MAX_FREE = 64
  readonly bytes: Pool
  #free: FrameStore[] = []

  constructor(limitBytes: number) {
    this.bytes = new Pool(limitBytes)
  }

  // An open store of at least n bytes, or null when the budget is spent (the caller frees some
  // and asks again, or uses `force`). A store larger than STORE_BYTES holds one big record.
  acquire(n: number, force = false): FrameStore | null {
    if (n <= FramePool.STORE_BYTES && this.#free.length > 0) {
      const s = this.#free.pop()!
      s.free = false
      s.open = true
      return s
    }
    const size = Math.max(FramePool.STORE_BYTES, n)
    if (force) this.bytes.take(size)
    else if (!this.bytes.tryTake(size)) return null
    return { buf: Buffer.allocUnsafeSlow(size), live: 0, pins: 0, open: true, free: false }
  }

  // Takes the store back if nothing refers to it any more (safe to call more than once).
  release(s: FrameStore): void {
    if (s.open || s.live > 0 || s.pins > 0 || s.free) return
    if (s.buf.length === FramePool.STORE_BYTES && this.#free.length < FramePool.MAX_FREE) {
      s.free = true
      this.#free.push(s)
    } else this.bytes.give(s.buf.length)
  }
}

// Buffers a listener gathers frames into before writing them to its socket at once: copying
// frames side by side costs less than handing the kernel many small pieces, and a buffer the
// socket no longer refers to is reused instead of left to the garbage collector.
export class BatchBuffers {
  static readonly BYTES = 64 * 1024
  static readonly MAX_FREE = 32
  #free: Buffer[] = []

  acquire(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(BatchBuffers.BYTES)
  }

  release(b: Buffer): void {
    if (this.#free.length < BatchBuffers.MAX_FREE) this.#free.push(b)
  }
}

// One tap's frame writer: the store it is filling, and where the last frame went.
export class TapFrames {
  readonly #pool: FramePool
  #store: FrameStore | null = null
  #used = 0
  // The place of the frame written by the last successful `place`.
  store: FrameStore | null = null
  off = 0
  len = 0

  constructor(pool: FramePool) {
    this.#pool = pool
  }

  // Writes the frame of record `seq` (bytes [start, end) of body). False when the pool refused a
  // new store: free some and call again with force (or give up on the record).
  place(seq: number, body: Buffer, start: number, end: number, force = false): boolean {
    const n = recordMessageLength(seq, end - start)
    const need = headerLength(n) + n
    let s = this.#store
    if (s === null || s.buf.length - this.#used < need) {
      const next = this.#pool.acquire(need, force)
      if (!next) return false
      this.close()
      this.#store = s = next
      this.#used = 0
    }
    this.store = s
    this.off = this.#used
    this.len = writeRecordFrame(s.buf, this.#used, n, seq, body, start, end)
    this.#used += this.len
    s.live++
    return true
  }

  // The tap writes no more into its current store.
  close(): void {
    const s = this.#store
    if (!s) return
    this.#store = null
    s.open = false
    this.#pool.release(s)
  }
}
