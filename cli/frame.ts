// Reading record frames without decoding them. The relay builds every record frame as
// `{"type":"record","seq":<N>,"record":<the posted bytes>}` (api/stream-protocol.ts), so the seq
// and the record's bytes are found by position: nothing is decoded, parsed or copied. A frame in
// any other shape (another message, or a record laid out differently) is left to JSON.parse.

const HEAD = Buffer.from('{"type":"record","seq":')
const MID = Buffer.from(',"record":')
const ZERO = 0x30
const NINE = 0x39
const RBRACE = 0x7d
const MAX_DIGITS = 15 // below 2^53: a safe integer

// The seq and the posted bytes (a view into `frame`) of a record frame in the relay's layout;
// undefined for anything else.
export function recordFrame(frame: Buffer): { seq: number; record: Buffer } | undefined {
  const n = frame.length
  if (n < HEAD.length + 1 + MID.length + 2 || frame[n - 1] !== RBRACE || !bytesAt(frame, HEAD, 0))
    return undefined
  const first = HEAD.length
  let i = first
  let seq = 0
  while (i < n) {
    const c = frame[i]!
    if (c < ZERO || c > NINE) break
    seq = seq * 10 + (c - ZERO)
    i++
  }
  const digits = i - first
  if (digits === 0 || digits > MAX_DIGITS || (digits > 1 && frame[first] === ZERO)) return undefined
  if (!bytesAt(frame, MID, i)) return undefined
  const start = i + MID.length
  if (start >= n - 1) return undefined
  return { seq, record: frame.subarray(start, n - 1) }
}

// A byte loop: cheaper than a native compare for a few bytes.
function bytesAt(b: Buffer, pattern: Buffer, at: number): boolean {
  if (at + pattern.length > b.length) return false
  for (let k = 0; k < pattern.length; k++) if (b[at + k] !== pattern[k]) return false
  return true
}

// The record's bytes in a record frame of any layout: the value of its last member `record`,
// whitespace around it ignored; re-serialised only when the frame is not laid out that way.
export function recordBytes(frame: Buffer): Buffer {
  const fast = recordFrame(frame)
  if (fast) return fast.record
  const key = frame.indexOf('"record":')
  let end = frame.length - 1
  while (end > 0 && isSpace(frame[end]!)) end--
  if (key < 0 || frame[end] !== RBRACE)
    return Buffer.from(JSON.stringify((JSON.parse(frame.toString()) as { record: unknown }).record))
  let start = key + '"record":'.length
  while (start < end && isSpace(frame[start]!)) start++
  let last = end - 1
  while (last > start && isSpace(frame[last]!)) last--
  return frame.subarray(start, last + 1)
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09
}
