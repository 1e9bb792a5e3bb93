// Splitting a posted chunk into records and reading the little the relay needs from each.
// Records stay opaque: we find their byte ranges in the body and read only `kubernetes.pod_name`,
// `kubernetes.namespace_name` and `kubernetes.labels` (for routing notices and RBAC), and, while a
// selection needs them, where some top-level members' values lie (TopMembers). The bytes
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
  // The `kubernetes` member, parsed (undefined when it is missing or not an object). Shared by every
  // record with the same bytes there (a pod's records): selections read `kubernetes.*` from it.
  kubernetes: Readonly<Record<string, unknown>> | undefined
}

// Top-level members a selection needs, and where the last walk found their values: [starts[n],
// ends[n]) in the walked buffer, -1 when the record has no member `names[n]` (the last one wins,
// as with JSON.parse).
export class TopMembers {
  readonly names: readonly string[]
  readonly starts: Int32Array
  readonly ends: Int32Array

  constructor(names: readonly string[]) {
    this.names = names
    this.starts = new Int32Array(names.length)
    this.ends = new Int32Array(names.length)
  }
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

// Calls `each(start, end)` for every candidate record range in the body, in order; `each`
// returns false when the range is not a record. Returns how many ranges were malformed
// (refused by `each`, or found malformed by the split itself, e.g. an empty array element).
export function splitRecords(
  body: Buffer,
  format: BodyFormat,
  each: (start: number, end: number) => boolean,
): number {
  let i = 0
  while (i < body.length && isSpace(body[i]!)) i++
  // application/json with a bare object (or NDJSON) is read line by line, like NDJSON.
  if (format === 'json' && body[i] === LBRACKET) return splitArray(body, i + 1, each)
  return splitLines(body, i, body.length, each)
}

// Cuts a body that arrives in pieces into segments of whole lines, handed on as soon as they
// are complete, so NDJSON records can be forwarded while the rest of the chunk is in flight.
// A line cut by a piece boundary is copied out of its piece (so that the piece can be released
// once pushed: release.ts) and joined with its end in the next segment. The carried
// bytes are what a body holds between pieces: `hold` is asked for them (false: no memory for
// them), and a line longer than `maxLine`, or one `hold` refuses, is skipped whole and counted.
export class LineSegments {
  readonly #maxLine: number
  readonly #hold: (n: number) => boolean
  readonly #unhold: (n: number) => void
  #carry: Buffer[] = []
  #carried = 0
  #skipping = false // inside a line being skipped: drop bytes until its end
  skipped = 0 // lines skipped for their length

  constructor(
    maxLine = Number.POSITIVE_INFINITY,
    hold: (n: number) => boolean = () => true,
    unhold: (n: number) => void = () => {},
  ) {
    this.#maxLine = maxLine
    this.#hold = hold
    this.#unhold = unhold
  }

  push(piece: Buffer, each: (segment: Buffer) => void): void {
    const last = piece.lastIndexOf(NL)
    if (last < 0) {
      this.#keep(piece)
      return
    }
    let from = 0
    if (this.#carried > 0 || this.#skipping) {
      from = piece.indexOf(NL) + 1
      if (this.#skipping) this.#skipping = false
      else {
        this.#carry.push(piece.subarray(0, from))
        const line = Buffer.concat(this.#carry)
        this.#drop()
        each(line)
      }
    }
    if (last + 1 > from) each(piece.subarray(from, last + 1))
    if (last + 1 < piece.length) this.#keep(piece.subarray(last + 1))
  }

  // The body ended: its last line needs no newline.
  end(each: (segment: Buffer) => void): void {
    if (!this.#skipping && this.#carried > 0) {
      const line = Buffer.concat(this.#carry)
      this.#drop()
      each(line)
    }
    this.#drop()
    this.#skipping = false
  }

  // Forgets what is carried (the body was cut off).
  abandon(): void {
    this.#drop()
  }

  #keep(part: Buffer): void {
    if (this.#skipping) return
    if (this.#carried + part.length > this.#maxLine || !this.#hold(part.length)) {
      this.#drop()
      this.#skipping = true
      this.skipped++
      return
    }
    this.#carry.push(Buffer.from(part))
    this.#carried += part.length
  }

  #drop(): void {
    if (this.#carried > 0) this.#unhold(this.#carried)
    this.#carry = []
    this.#carried = 0
  }
}

function splitLines(
  body: Buffer,
  from: number,
  to: number,
  each: (start: number, end: number) => boolean,
): number {
  let malformed = 0
  let start = from
  while (start < to) {
    let nl = body.indexOf(NL, start)
    if (nl < 0 || nl > to) nl = to
    let s = start
    let e = nl
    while (s < e && isSpace(body[s]!)) s++
    while (e > s && isSpace(body[e - 1]!)) e--
    if (e > s && !each(s, e)) malformed++
    start = nl + 1
  }
  return malformed
}

// Walks a JSON array's top-level elements without parsing them: strings are skipped with
// indexOf, brackets counted, and a comma or the closing bracket at depth 0 ends an element.
// A malformed element can hide the ones after it (an unclosed brace makes the rest of the
// array one element). out_http writes one element per line (`[{..}\n,{..}\n]`) and a record
// never holds a raw newline, so a malformed element that spans lines is read again line by line:
// only its bad lines are lost.
function splitArray(body: Buffer, from: number, each: (start: number, end: number) => boolean): number {
  let malformed = 0
  let start = from
  let depth = 0
  let i = from
  const emit = (end: number): void => {
    let s = start
    let e = end
    while (s < e && isSpace(body[s]!)) s++
    while (e > s && isSpace(body[e - 1]!)) e--
    if (e === s) malformed++
    else if (!each(s, e)) {
      const nl = body.indexOf(NL, s)
      if (nl < 0 || nl >= e) malformed++
      else malformed += splitElementLines(body, s, e, each)
    }
  }
  let nextNl = -1 // the first newline at or after i, once looked up
  while (i < body.length) {
    const b = body[i]!
    if (b === QUOTE) {
      // A string never holds a raw newline: one that reaches a newline is broken and ends there.
      if (nextNl < i) nextNl = body.indexOf(NL, i) >>> 0 // none: past any index
      i = endOfString(body, i + 1, nextNl)
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

// The lines of [s, e) as array elements: each without the `,` or `[` before it and the `,` or
// `]` after it.
function splitElementLines(
  body: Buffer,
  s: number,
  e: number,
  each: (start: number, end: number) => boolean,
): number {
  let malformed = 0
  let start = s
  while (start < e) {
    let nl = body.indexOf(NL, start)
    if (nl < 0 || nl > e) nl = e
    let a = start
    let b = nl
    while (a < b && isSpace(body[a]!)) a++
    if (a < b && (body[a] === COMMA || body[a] === LBRACKET)) a++
    while (b > a && isSpace(body[b - 1]!)) b--
    if (b > a && (body[b - 1] === COMMA || body[b - 1] === RBRACKET)) b--
    while (a < b && isSpace(body[a]!)) a++
    while (b > a && isSpace(body[b - 1]!)) b--
    if (b > a && !each(a, b)) malformed++
    start = nl + 1
  }
  return malformed
}

// Counts the records of a body without reading them, as it arrives: its lines that hold
// anything besides whitespace and array punctuation (`[`, `]`, `,`). For the NDJSON and the
// one-element-per-line JSON arrays out_http sends, that is the number of records the body
// holds; used for chunks the relay drops unread, so listeners can be told how many they lost.
export class RecordCounter {
  count = 0
  #content = false // the current line holds more than filler

  push(b: Buffer): void {
    const n = b.length
    let i = 0
    while (i < n) {
      if (!this.#content) {
        for (; i < n; i++) {
          const c = b[i]!
          if (c === NL) break
          if (!isSpace(c) && c !== LBRACKET && c !== RBRACKET && c !== COMMA) {
            this.#content = true
            break
          }
        }
        if (i >= n) return
      }
      const nl = b.indexOf(NL, i)
      if (nl < 0) return
      if (this.#content) this.count++
      this.#content = false
      i = nl + 1
    }
  }

  // The body ended (its last line needs no newline); returns the count.
  end(): number {
    if (this.#content) this.count++
    this.#content = false
    return this.count
  }
}

function allSpace(body: Buffer, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (!isSpace(body[i]!)) return false
  return true
}

// Index just past the closing quote of a string whose content starts at `i`, or `limit` when
// the string does not close before it.
function endOfString(body: Buffer, i: number, limit: number): number {
  for (;;) {
    const q = body.indexOf(QUOTE, i)
    if (q < 0 || q > limit) return Math.min(limit, body.length)
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
export function recordMeta(
  body: Buffer,
  start: number,
  end: number,
  utf8 = false,
  top?: TopMembers,
): RecordMeta | null {
  if (body[start] !== LBRACE || body[end - 1] !== RBRACE) return null
  if (top) top.starts.fill(-1)
  if (!utf8 && !isUtf8(body.subarray(start, end))) return null
  // The scan reads `body` itself, not a view of the record (one object less per record). A
  // scan that runs past `end` (into the next record) can only belong to a malformed record:
  // positions only grow, so it can never close the object at end - 1, which is what is required.
  const b = body
  let meta = NO_META
  let i = skipSpace(b, start + 1)
  if (b[i] === RBRACE) return i + 1 === end ? meta : null
  for (;;) {
    if (b[i] !== QUOTE) return null
    const ks = i
    i = scanString(b, i)
    if (i < 0 || i > end) return null
    const ke = i
    i = skipSpace(b, i)
    if (b[i] !== COLON) return null
    const vs = skipSpace(b, i + 1)
    if (b[vs] === LBRACE && tokenIs(b, ks, ke, 'kubernetes')) {
      // The pod's metadata: most of a record's bytes, and the same bytes for every record of a
      // pod. Bytes equal to a member already validated end where it ended and mean what it meant.
      const known = knownMembers.find(b, vs, end)
      if (known) {
        i = vs + known.bytes.length
        meta = known.meta
      } else {
        i = scanValue(b, vs, 1)
        if (i < 0 || i > end) return null
        meta = knownMembers.add(b, vs, i, end)
      }
    } else {
      i = scanValue(b, vs, 1)
      if (i < 0 || i > end) return null
      if (meta !== NO_META && tokenIs(b, ks, ke, 'kubernetes')) meta = NO_META // a later non-object wins
    }
    if (top) {
      const names = top.names
      for (let n = 0; n < names.length; n++)
        if (tokenIs(b, ks, ke, names[n]!)) {
          top.starts[n] = vs
          top.ends[n] = i
        }
    }
    i = skipSpace(b, i)
    if (b[i] === COMMA) {
      i = skipSpace(b, i + 1)
      continue
    }
    return b[i] === RBRACE && i + 1 === end ? meta : null
  }
}

const NO_META: RecordMeta = { pod: '', rules: null, kubernetes: undefined }

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

  // A stored value byte-identical to the bytes at `at` of the record ending at `limit`.
  find(b: Buffer, at: number, limit: number): KnownMember | undefined {
    const bucket = this.#buckets.get(KnownMembers.#key(b, at, limit))
    if (!bucket) return undefined
    for (const m of bucket) {
      const n = m.bytes.length
      if (at + n <= limit && m.bytes.compare(b, at, at + n) === 0) return m
    }
    return undefined
  }

  // Records the value [s, e) of the record ending at `limit`, just validated, and returns its
  // meaning.
  add(b: Buffer, s: number, e: number, limit: number): RecordMeta {
    const meta = kubernetesMeta(JSON.parse(b.toString('utf8', s, e)) as Record<string, unknown>)
    if (this.#size >= KnownMembers.CAPACITY) {
      this.#buckets.clear()
      this.#size = 0
    }
    const bytes = Buffer.allocUnsafeSlow(e - s)
    b.copy(bytes, 0, s, e)
    const key = KnownMembers.#key(b, s, limit)
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
  static #key(b: Buffer, at: number, limit: number): number {
    const end = Math.min(limit, at + KnownMembers.PREFIX)
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
  return { pod: podRef, rules: rulesFromLabels(labels), kubernetes: k }
}
