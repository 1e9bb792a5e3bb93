// Splitting a posted chunk into records and reading the little the relay needs from each.
// Records stay opaque: we find their byte ranges in the body and read only `kubernetes.pod_name`,
// `kubernetes.namespace_name` and `kubernetes.labels` (for routing notices and RBAC). The bytes
// forwarded to listeners are the original range, never a re-serialisation.
import { isUtf8 } from 'node:buffer'
import { scanString, scanValue, skipSpace, tokenIs } from './json-scan.ts'
import { type Rules, rulesFromLabels } from './rbac.ts'

// What fluentd's out_http sends with `format json`: NDJSON when json_array is false,
// a JSON array (`[{..}\n,{..}\n]`) when it is true.
export type BodyFormat = 'ndjson' | 'json'

export interface RecordMeta {
  pod: string // "<namespace>/<pod>", "<pod>" without a namespace, "" without kubernetes metadata
  rules: Rules
}

const NL = 0x0a
const CR = 0x0d
const SP = 0x20
const TAB = 0x09
const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const LBRACE = 0x7b
const RBRACE = 0x7d
const LBRACKET = 0x5b
const COLON = 0x3a
const RBRACKET = 0x5d

function isSpace(b: number): boolean {
  return b === SP || b === NL || b === CR || b === TAB
}

// Calls `each(start, end)` for every candidate record range in the body, in order. Returns the
// number of malformed elements found by the split itself (e.g. an empty array element);
// ranges are validated one by one by `recordMeta`.
export function splitRecords(
  body: Buffer,
  format: BodyFormat,
  each: (start: number, end: number) => void,
): number {
  let i = 0
  while (i < body.length && isSpace(body[i]!)) i++
  // application/json with a bare object (or NDJSON) is read line by line, like NDJSON.
  if (format === 'json' && body[i] === LBRACKET) return splitArray(body, i + 1, each)
  return splitLines(body, i, each)
}

// Cuts a body that arrives in pieces into segments of whole lines, handed on as soon as they
// are complete, so NDJSON records can be forwarded while the rest of the chunk is in flight.
// A line cut by a piece boundary is carried (copied once) into the next segment.
export class LineSegments {
  #carry: Buffer[] = []

  push(piece: Buffer, each: (segment: Buffer) => void): void {
    const last = piece.lastIndexOf(NL)
    if (last < 0) {
      this.#carry.push(piece)
      return
    }
    let from = 0
    if (this.#carry.length > 0) {
      from = piece.indexOf(NL) + 1
      this.#carry.push(piece.subarray(0, from))
      each(Buffer.concat(this.#carry))
      this.#carry = []
    }
    if (last + 1 > from) each(piece.subarray(from, last + 1))
    if (last + 1 < piece.length) this.#carry.push(piece.subarray(last + 1))
  }

  // The body ended: its last line needs no newline.
  end(each: (segment: Buffer) => void): void {
    if (this.#carry.length > 0) each(Buffer.concat(this.#carry))
    this.#carry = []
  }
}

function splitLines(body: Buffer, from: number, each: (start: number, end: number) => void): number {
  let start = from
  while (start < body.length) {
    let nl = body.indexOf(NL, start)
    if (nl < 0) nl = body.length
    let s = start
    let e = nl
    while (s < e && isSpace(body[s]!)) s++
    while (e > s && isSpace(body[e - 1]!)) e--
    if (e > s) each(s, e)
    start = nl + 1
  }
  return 0
}

// Walks a JSON array's top-level elements without parsing them: strings are skipped with
// indexOf, brackets counted, and a comma or the closing bracket at depth 0 ends an element.
function splitArray(body: Buffer, from: number, each: (start: number, end: number) => void): number {
  let malformed = 0
  let start = from
  let depth = 0
  let i = from
  const emit = (end: number): void => {
    let s = start
    let e = end
    while (s < e && isSpace(body[s]!)) s++
    while (e > s && isSpace(body[e - 1]!)) e--
    if (e > s) each(s, e)
    else malformed++
  }
  while (i < body.length) {
    const b = body[i]!
    if (b === QUOTE) {
      i = endOfString(body, i + 1)
      continue
    }
    if (b === LBRACE || b === LBRACKET) depth++
    else if (depth > 0 && (b === RBRACE || b === RBRACKET)) depth--
    else if (depth === 0 && (b === COMMA || b === RBRACKET)) {
      const closing = b === RBRACKET
      // `[]` and a trailing `]` after the last element are not elements.
      if (!(closing && start === from && allSpace(body, start, i))) emit(i)
      start = i + 1
      if (closing) return malformed
    }
    i++
  }
  // No closing bracket: whatever is left is one more (probably malformed) element.
  if (!allSpace(body, start, body.length)) emit(body.length)
  return malformed
}

function allSpace(body: Buffer, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (!isSpace(body[i]!)) return false
  return true
}

// Index just past the closing quote of a string whose content starts at `i`.
function endOfString(body: Buffer, i: number): number {
  for (;;) {
    const q = body.indexOf(QUOTE, i)
    if (q < 0) return body.length
    let bs = 0
    for (let k = q - 1; k >= i && body[k] === BACKSLASH; k--) bs++
    if (bs % 2 === 0) return q + 1
    i = q + 1
  }
}

// Validates one record range (a UTF-8 JSON object) and reads its routing/RBAC fields, with
// JSON.parse's meaning: the whole record is scanned, never built; only the value of its (last,
// as JSON.parse would keep) top-level `kubernetes` member is parsed, and only when its bytes
// differ from those of recent records. Returns null when the range is not a JSON object: skip
// and count. `utf8` says the whole body is already known to be valid UTF-8 (then so is every
// record in it: records are cut at ASCII bytes).
export function recordMeta(body: Buffer, start: number, end: number, utf8 = false): RecordMeta | null {
  if (body[start] !== LBRACE || body[end - 1] !== RBRACE) return null
  // A view of just this record: reads past its end see `undefined`, never the next record.
  const b = body.subarray(start, end)
  if (!utf8 && !isUtf8(b)) return null
  let meta = NO_META
  let i = skipSpace(b, 1)
  if (b[i] === RBRACE) return i + 1 === b.length ? meta : null
  for (;;) {
    if (b[i] !== QUOTE) return null
    const ks = i
    i = scanString(b, i)
    if (i < 0) return null
    const ke = i
    i = skipSpace(b, i)
    if (b[i] !== COLON) return null
    const vs = skipSpace(b, i + 1)
    if (b[vs] === LBRACE && tokenIs(b, ks, ke, 'kubernetes')) {
      // The pod's metadata: most of a record's bytes, and the same bytes for every record of a
      // pod. Bytes equal to a member already validated end where it ended and mean what it meant.
      const known = knownMembers.find(b, vs)
      if (known) {
        i = vs + known.bytes.length
        meta = known.meta
      } else {
        i = scanValue(b, vs, 1)
        if (i < 0) return null
        meta = knownMembers.add(b, vs, i)
      }
    } else {
      i = scanValue(b, vs, 1)
      if (i < 0) return null
      if (meta !== NO_META && tokenIs(b, ks, ke, 'kubernetes')) meta = NO_META // a later non-object wins
    }
    i = skipSpace(b, i)
    if (b[i] === COMMA) {
      i = skipSpace(b, i + 1)
      continue
    }
    return b[i] === RBRACE && i + 1 === b.length ? meta : null
  }
}

const NO_META: RecordMeta = { pod: '', rules: null }

// `kubernetes` member values seen recently: their exact bytes (a copy, so no posted body is
// pinned) and what they mean. Looked up by a hash of the first PREFIX bytes at the value's start
// (a chunk mixes pods at random, so a most-recent cache would rarely hit); the hash only picks a
// bucket, and a hit needs the whole stored value to match byte for byte. Bounded: a bucket keeps its newest BUCKET values and
// the whole cache starts afresh at CAPACITY values, which keeps it simple.
interface KnownMember {
  bytes: Buffer
  meta: RecordMeta
}

class KnownMembers {
  static readonly PREFIX = 96
  static readonly BUCKET = 8
  static readonly CAPACITY = 1024
  #buckets = new Map<number, KnownMember[]>()
  #size = 0

  find(b: Buffer, at: number): KnownMember | undefined {
    const bucket = this.#buckets.get(KnownMembers.#key(b, at))
    if (!bucket) return undefined
    for (const m of bucket) {
      const n = m.bytes.length
      if (at + n <= b.length && m.bytes.compare(b, at, at + n) === 0) return m
    }
    return undefined
  }

  // Records the value [s, e), just validated, and returns its meaning.
  add(b: Buffer, s: number, e: number): RecordMeta {
    const meta = kubernetesMeta(JSON.parse(b.toString('utf8', s, e)) as Record<string, unknown>)
    if (this.#size >= KnownMembers.CAPACITY) {
      this.#buckets.clear()
      this.#size = 0
    }
    const bytes = Buffer.allocUnsafeSlow(e - s)
    b.copy(bytes, 0, s, e)
    const key = KnownMembers.#key(b, s)
    let bucket = this.#buckets.get(key)
    if (!bucket) {
      bucket = []
      this.#buckets.set(key, bucket)
    }
    bucket.unshift({ bytes, meta })
    if (bucket.length > KnownMembers.BUCKET) bucket.pop()
    else this.#size++
    return meta
  }

  // FNV-1a over every other byte: cheaper than building a string key, and pod metadata differs
  // early (pod_name, pod_id) in many bytes at once.
  static #key(b: Buffer, at: number): number {
    const end = Math.min(b.length, at + KnownMembers.PREFIX)
    let h = 0x811c9dc5
    for (let i = at; i < end; i += 2) h = Math.imul(h ^ b[i]!, 0x01000193)
    return h
  }
}

const knownMembers = new KnownMembers()

function kubernetesMeta(k: Record<string, unknown>): RecordMeta {
  const { pod_name: pod, namespace_name: ns, labels } = k
  const podName = typeof pod === 'string' ? pod : ''
  const podRef = podName && typeof ns === 'string' && ns ? `${ns}/${podName}` : podName
  return { pod: podRef, rules: rulesFromLabels(labels) }
}
