// Splitting a posted chunk into records and reading the little the relay needs from each.
// Records stay opaque: we find their byte ranges in the body and read only `kubernetes.pod_name`,
// `kubernetes.namespace_name` and `kubernetes.labels` (for routing notices and RBAC). The bytes
// forwarded to listeners are the original range, never a re-serialisation.
import { isUtf8 } from 'node:buffer'
import { scanValue, tokenIs } from './json-scan.ts'
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

// What recently seen `kubernetes` members meant, keyed by their bytes (as a latin1 string: a
// copy, so no posted body is pinned). Every record of one pod carries byte-identical pod metadata,
// and a chunk mixes records of many pods (a buffer without a tag chunk key), so the cache holds
// far more pods than one chunk has; when full it starts afresh, which keeps it simple and bounded.
const CACHE_SIZE = 1024
const cache = new Map<string, RecordMeta>()

// Validates one record range (a UTF-8 JSON object) and reads its routing/RBAC fields, with
// JSON.parse's meaning: the whole record is scanned, never built; only the value of its (last,
// as JSON.parse would keep) top-level `kubernetes` member is parsed, and only when it differs
// from those of recent records. Returns null when the range is not a JSON object: skip and count.
export function recordMeta(body: Buffer, start: number, end: number): RecordMeta | null {
  if (body[start] !== LBRACE || body[end - 1] !== RBRACE) return null
  // A view of just this record: reads past its end see `undefined`, never the next record.
  const b = body.subarray(start, end)
  if (!isUtf8(b)) return null
  let ks = -1
  let ke = -1
  const found = scanValue(b, 0, 0, (s, e, vs, ve) => {
    if (tokenIs(b, s, e, 'kubernetes')) {
      ks = vs
      ke = ve
    }
  })
  if (found !== b.length) return null
  if (ks < 0 || b[ks] !== LBRACE) return { pod: '', rules: null }
  const key = b.toString('latin1', ks, ke)
  const hit = cache.get(key)
  if (hit) return hit
  const meta = kubernetesMeta(JSON.parse(b.toString('utf8', ks, ke)) as Record<string, unknown>)
  if (cache.size >= CACHE_SIZE) cache.clear()
  cache.set(key, meta)
  return meta
}

function kubernetesMeta(k: Record<string, unknown>): RecordMeta {
  const { pod_name: pod, namespace_name: ns, labels } = k
  const podName = typeof pod === 'string' ? pod : ''
  const podRef = podName && typeof ns === 'string' && ns ? `${ns}/${podName}` : podName
  return { pod: podRef, rules: rulesFromLabels(labels) }
}
