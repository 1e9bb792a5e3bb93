// The relay's server messages as complete WebSocket frames (RFC 6455 §5.2: FIN, text opcode,
// unmasked, as a server sends them). A record's frame is built once at ingest and the same bytes
// are written to every listener's socket; nothing re-serialises the record.

const RECORD_HEAD = Buffer.from('{"type":"record","seq":')
const RECORD_MID = Buffer.from(',"record":')
const ZERO = 0x30
const RBRACE = 0x7d

// A frame's place in a store: bytes [off, off + len) of `store`.
export interface FramePlace {
  store: Buffer
  off: number
  len: number
}

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

// The message inside one frame.
export function wirePayload(wire: Buffer): Buffer {
  const len = wire[1]! & 0x7f
  return wire.subarray(len < 126 ? 2 : len === 126 ? 4 : 10)
}

// Record frames written side by side into shared buffers of STORE_BYTES: one allocation per
// few hundred records instead of one per record, and consecutive frames are adjacent, so a
// listener that is sent a run of them writes one slice. A store lives as long as any frame in it
// is referenced (the ring's bounds, plus at most one partly filled store).
export class FrameStores {
  static readonly STORE_BYTES = 256 * 1024
  #store = Buffer.alloc(0)
  #used = 0

  // Writes the frame of record `seq` and records where it is in `place`.
  place(place: FramePlace, seq: number, body: Buffer, start: number, end: number): void {
    const n = recordMessageLength(seq, end - start)
    const need = headerLength(n) + n
    if (this.#store.length - this.#used < need) {
      this.#store = Buffer.allocUnsafeSlow(Math.max(FrameStores.STORE_BYTES, need))
      this.#used = 0
    }
    place.store = this.#store
    place.off = this.#used
    place.len = writeRecordFrame(this.#store, this.#used, n, seq, body, start, end)
    this.#used += place.len
  }
}
