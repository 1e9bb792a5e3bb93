// One listener's selection (its own combined with its tap's, api/selection.ts), evaluated on a
// record's bytes as they lie in the ring: nothing is parsed. Values come from where ingest found
// the top-level members (record-fields.ts) and, for `kubernetes.*`, from the pod's metadata parsed
// once per pod (records.ts RecordMeta.kubernetes). The meaning is api/selection-eval.ts's, which
// the tests hold this to.
//
// The listener asks `decide` for each record RBAC allowed, in order; besides the verdict it keeps
// the counts of records left out by sampling or the per-pod rate, for the summary notices.

import {
  type FieldPath,
  type Predicate,
  type Scalar,
  type Selection,
  samplePercent,
} from '../../../api/selection.ts'
import {
  lineSelected,
  lookup,
  type ProjectionNode,
  projectionTree,
  testPredicate,
} from '../../../api/selection-eval.ts'
import { scanString, scanValue, skipSpace, tokenIs } from '../json-scan.ts'
import type { RecordMeta } from '../records.ts'
import type { RecordFields } from './record-fields.ts'

export const Verdict = {
  Skip: 0, // not selected (grep, exclude, where): nothing to tell
  Send: 1, // the record as posted
  Project: 2, // the projection in `out` [0, outLength)
  Sampled: 3, // left out by sampling (counted)
  Capped: 4, // over the per-pod rate (counted)
} as const
export type Verdict = (typeof Verdict)[keyof typeof Verdict]

const QUOTE = 0x22
const BACKSLASH = 0x5c
const LBRACE = 0x7b
const RBRACE = 0x7d
const COMMA = 0x2c
const COLON = 0x3a

// How to find a path's value in a record: `kubernetes.<rest>` in the pod's parsed metadata, or
// top-level member `n` and then keys `rest` inside its value.
interface Resolver {
  readonly k8s: boolean
  readonly n: number
  readonly rest: readonly string[]
}

// Top-level members a selection reads from the bytes (the rest comes from RecordMeta.kubernetes).
export function membersRead(s: Selection): string[] {
  const names = new Set<string>()
  const add = (p: FieldPath) => {
    if (!(p.keys[0] === 'kubernetes' && p.keys.length > 1)) names.add(p.keys[0]!)
  }
  for (const p of s.where) add(p.path)
  for (const x of s.samples) if (x.by) add(x.by)
  for (const n of projectionTree(s.fields ?? [])) if (!(n.key === 'kubernetes' && !n.leaf)) names.add(n.key)
  return [...names]
}

interface CompiledPredicate {
  readonly p: Predicate
  readonly r: Resolver
  readonly strings: readonly Buffer[] // the string values of == / in, UTF-8
  readonly texts: readonly string[] // the same, as strings
  readonly minLength: number // of those strings (no shorter token can equal one)
  readonly maxLength: number
  readonly plain: boolean // no string value holds a backslash, a quote or a control character
  readonly others: readonly Scalar[] // the other values
}

interface CompiledSample {
  readonly threshold: number // keep when hash < threshold (2^32: always)
  readonly r: Resolver | undefined
  readonly salt: number
}

interface CompiledNode {
  readonly key: string
  readonly head: Buffer // `"key":`
  readonly leaf: boolean
  readonly children: readonly CompiledNode[]
  readonly r: Resolver | undefined // top level only
}

// Per-pod token buckets for the rate cap.
interface Bucket {
  tokens: number
  at: number
}

// No quote, backslash or control character: the string is spelled the same in JSON.
function plain(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i)
    if (c < 0x20 || c === QUOTE || c === BACKSLASH) return false
  }
  return true
}

export class ListenerSelection {
  readonly selection: Selection
  readonly #fields: RecordFields
  readonly #grep: boolean
  readonly #preds: CompiledPredicate[]
  readonly #samples: CompiledSample[]
  readonly #podRate: number | undefined
  readonly #tree: CompiledNode[] | undefined
  readonly hasRegex: boolean
  readonly percent: number // the share sampling keeps
  #buckets = new Map<string, Bucket>()
  #now = 0
  // Projection output.
  out: Buffer = Buffer.allocUnsafe(4096)
  outLength = 0
  // The value found by #resolve: bytes [#vs, #ve) of the record's buffer, or #jv.
  #vs = 0
  #ve = 0
  #jv: unknown
  // Counts for the next `sampled` notice.
  sampled = 0
  capped = 0
  readonly cappedPods = new Set<string>()
  fromSeq = 0
  toSeq = 0

  constructor(selection: Selection, fields: RecordFields) {
    this.selection = selection
    this.#fields = fields
    this.#grep = selection.grep.length > 0 || selection.exclude.length > 0
    this.#preds = selection.where.map((p) => compilePredicate(p, this.#resolver(p.path)))
    this.#samples = selection.samples.map((x, i) => ({
      threshold: Math.min(2 ** 32, Math.floor((x.percent / 100) * 2 ** 32)),
      r: x.by ? this.#resolver(x.by) : undefined,
      salt: Math.imul(i + 1, 0x9e3779b9) >>> 0,
    }))
    this.#podRate = selection.podRate
    this.#tree = selection.fields ? this.#compileTree(projectionTree(selection.fields), true) : undefined
    this.hasRegex = this.#grep || selection.where.some((p) => p.kind === 'regex')
    this.percent = samplePercent(selection)
  }

  #resolver(p: FieldPath): Resolver {
    if (p.keys[0] === 'kubernetes' && p.keys.length > 1) return { k8s: true, n: -1, rest: p.keys.slice(1) }
    return { k8s: false, n: this.#fields.indexOf(p.keys[0]!), rest: p.keys.slice(1) }
  }

  #compileTree(nodes: readonly ProjectionNode[], top: boolean): CompiledNode[] {
    return nodes.map((n) => ({
      key: n.key,
      head: Buffer.from(`${JSON.stringify(n.key)}:`),
      leaf: n.leaf,
      children: this.#compileTree(n.children, false),
      r:
        top && !(n.key === 'kubernetes' && !n.leaf)
          ? { k8s: false, n: this.#fields.indexOf(n.key), rest: [] }
          : undefined,
    }))
  }

  // The clock for the per-pod rate, read once per pump.
  begin(nowMs: number): void {
    this.#now = nowMs
  }

  // What to do with record `seq`, bytes [s, e) of buf, which RBAC allowed.
  decide(seq: number, buf: Buffer, s: number, e: number, meta: RecordMeta): Verdict {
    const fields = this.#fields
    const base = fields.top ? fields.slot(seq, buf, s, e) : 0
    if (this.#grep) {
      const { grep, exclude } = this.selection
      if (!lineSelected(grep, exclude, fields.text(buf, s, e))) return Verdict.Skip
    }
    for (const c of this.#preds) if (!this.#test(c, buf, s, base, meta)) return Verdict.Skip
    for (const x of this.#samples) {
      if (x.threshold >= 2 ** 32) continue
      const h = x.r ? this.#keyHash(x.r, buf, s, base, meta, x.salt, seq) : seqHash(seq, x.salt)
      if (h >= x.threshold) {
        this.#count(seq)
        this.sampled++
        return Verdict.Sampled
      }
    }
    if (this.#podRate !== undefined && !this.#take(meta.pod)) {
      this.#count(seq)
      this.capped++
      this.cappedPods.add(meta.pod)
      return Verdict.Capped
    }
    if (!this.#tree) return Verdict.Send
    this.outLength = 0
    if (!this.#object(this.#tree, buf, s, base, meta, undefined, 0, 0)) this.#write(EMPTY_OBJECT)
    return Verdict.Project
  }

  #count(seq: number): void {
    if (this.sampled + this.capped === 0) this.fromSeq = seq
    this.toSeq = seq
  }

  // The counts were told: start afresh.
  resetCounts(): void {
    this.sampled = 0
    this.capped = 0
    this.cappedPods.clear()
  }

  // Takes a token from the pod's bucket (capacity: one second's worth).
  #take(pod: string): boolean {
    const rate = this.#podRate!
    let b = this.#buckets.get(pod)
    if (!b) {
      if (this.#buckets.size >= 4096) this.#buckets.clear()
      b = { tokens: rate, at: this.#now }
      this.#buckets.set(pod, b)
    } else if (this.#now > b.at) {
      b.tokens = Math.min(rate, b.tokens + ((this.#now - b.at) * rate) / 1000)
      b.at = this.#now
    }
    if (b.tokens < 1) return false
    b.tokens--
    return true
  }

  // Finds the value of `r` in the record: 0 missing, 1 bytes [#vs, #ve), 2 a parsed value (#jv).
  #resolve(r: Resolver, buf: Buffer, s: number, base: number, meta: RecordMeta): number {
    if (r.k8s) {
      const v = lookup(meta.kubernetes, r.rest)
      if (v === undefined) return 0
      this.#jv = v
      return 2
    }
    const fields = this.#fields
    const rs = fields.start(base, r.n)
    if (rs < 0) return 0
    let vs = s + rs
    let ve = s + fields.end(base, r.n)
    for (const key of r.rest) {
      if (!memberOf(buf, vs, ve, key)) return 0
      vs = found.s
      ve = found.e
    }
    this.#vs = vs
    this.#ve = ve
    return 1
  }

  #test(c: CompiledPredicate, buf: Buffer, s: number, base: number, meta: RecordMeta): boolean {
    const how = this.#resolve(c.r, buf, s, base, meta)
    const p = c.p
    if (how === 0) return testPredicate(p, undefined)
    if (how === 2) return testPredicate(p, this.#jv)
    if (p.kind === 'exists') return !p.negate
    const vs = this.#vs
    const ve = this.#ve
    const first = buf[vs]
    if (p.kind === 'regex') {
      if (first !== QUOTE) return p.negate
      return p.regex.test(stringAt(buf, vs, ve)) !== p.negate
    }
    let equal: boolean
    if (first === QUOTE) equal = c.strings.length > 0 && stringEquals(c, buf, vs, ve)
    else if (first === LBRACE || first === 0x5b) equal = false
    else equal = c.others.includes(scalarAt(buf, vs, ve))
    return equal !== p.negate
  }

  // FNV-1a of the key's value (its bytes as posted, or its JSON), then mixed with the salt;
  // records without the key are sampled by their sequence number.
  #keyHash(
    r: Resolver,
    buf: Buffer,
    s: number,
    base: number,
    meta: RecordMeta,
    salt: number,
    seq: number,
  ): number {
    const how = this.#resolve(r, buf, s, base, meta)
    if (how === 0) return seqHash(seq, salt)
    let h = 0x811c9dc5 ^ salt
    if (how === 1) for (let i = this.#vs; i < this.#ve; i++) h = Math.imul(h ^ buf[i]!, 0x01000193)
    else {
      const text = JSON.stringify(this.#jv)
      for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
    }
    return fmix(h)
  }

  // --- projection ---

  #write(b: Buffer | Uint8Array, from = 0, to = b.length): void {
    const n = to - from
    if (this.outLength + n > this.out.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.outLength + n))
      this.out.copy(bigger, 0, 0, this.outLength)
      this.out = bigger
    }
    if (n === 1) this.out[this.outLength] = b[from]!
    else (b as Buffer).copy(this.out, this.outLength, from, to)
    this.outLength += n
  }

  #writeText(text: string): void {
    const most = text.length * 3
    if (this.outLength + most > this.out.length) this.#write(Buffer.from(text))
    else this.outLength += this.out.write(text, this.outLength, 'utf8')
  }

  // Writes `{…}` of the nodes present in the object at bytes [vs, ve) (or, at the top, in the
  // record); false (nothing written) when none is.
  #object(
    nodes: readonly CompiledNode[],
    buf: Buffer,
    s: number,
    base: number,
    meta: RecordMeta,
    parent: undefined | true,
    vs: number,
    ve: number,
  ): boolean {
    const mark = this.outLength
    let any = false
    for (const n of nodes) {
      let how: number
      if (n.r) how = this.#resolve(n.r, buf, s, base, meta)
      else if (parent === undefined) {
        // Top-level `kubernetes` with children: from the pod's parsed metadata.
        how = meta.kubernetes === undefined ? 0 : 2
        this.#jv = meta.kubernetes
      } else how = memberOf(buf, vs, ve, n.key) ? 1 : 0
      if (how === 0) continue
      const at = this.outLength
      this.#write(any ? COMMA_BYTES : OPEN_BYTES)
      this.#write(n.head)
      let shown = true
      if (how === 2) shown = this.#js(n, this.#jv)
      else {
        const cs = how === 1 && !n.r ? found.s : this.#vs
        const ce = how === 1 && !n.r ? found.e : this.#ve
        if (n.leaf) this.#write(buf, cs, ce)
        else shown = this.#object(n.children, buf, s, base, meta, true, cs, ce)
      }
      if (!shown) this.outLength = at
      else any = true
    }
    if (!any) {
      this.outLength = mark
      return false
    }
    this.#write(CLOSE_BYTES)
    return true
  }

  // Writes node n's value from a parsed value; false (nothing written) when it shows nothing.
  #js(n: CompiledNode, v: unknown): boolean {
    if (n.leaf) {
      this.#writeText(JSON.stringify(v))
      return true
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
    const mark = this.outLength
    let any = false
    for (const c of n.children) {
      if (!Object.hasOwn(v, c.key)) continue
      const at = this.outLength
      this.#write(any ? COMMA_BYTES : OPEN_BYTES)
      this.#write(c.head)
      if (this.#js(c, (v as Record<string, unknown>)[c.key])) any = true
      else this.outLength = at
    }
    if (!any) {
      this.outLength = mark
      return false
    }
    this.#write(CLOSE_BYTES)
    return true
  }
}

const OPEN_BYTES = Buffer.from('{')
const COMMA_BYTES = Buffer.from(',')
const CLOSE_BYTES = Buffer.from('}')
const EMPTY_OBJECT = Buffer.from('{}')

function compilePredicate(p: Predicate, r: Resolver): CompiledPredicate {
  const values = p.kind === 'equals' ? p.values : []
  const strings = values.filter((v): v is string => typeof v === 'string')
  const bytes = strings.map((v) => Buffer.from(v))
  return {
    p,
    r,
    strings: bytes,
    texts: strings,
    minLength: Math.min(...bytes.map((b) => b.length)),
    maxLength: Math.max(0, ...bytes.map((b) => b.length)),
    plain: strings.every(plain),
    others: values.filter((v) => typeof v !== 'string'),
  }
}

// Whether the string token [vs, ve) equals one of the predicate's strings. Bytes are compared
// first; only a token that could hold escapes spelling one of them is decoded.
function stringEquals(c: CompiledPredicate, buf: Buffer, vs: number, ve: number): boolean {
  const n = ve - vs - 2
  if (n < c.minLength) return false
  if (c.plain) {
    for (const lit of c.strings)
      if (lit.length === n && buf.compare(lit, 0, n, vs + 1, ve - 1) === 0) return true
    // An escape is at least two bytes for one character, at most six (\uXXXX) for one byte.
    if (n === c.minLength || n > 6 * c.maxLength) return false
    let escaped = false
    for (let i = vs + 1; i < ve - 1; i++)
      if (buf[i] === BACKSLASH) {
        escaped = true
        break
      }
    if (!escaped) return false
  }
  return c.texts.includes(stringAt(buf, vs, ve))
}

// The decoded string of the token [vs, ve).
function stringAt(buf: Buffer, vs: number, ve: number): string {
  const raw = buf.toString('utf8', vs + 1, ve - 1)
  return raw.includes('\\') ? (JSON.parse(buf.toString('utf8', vs, ve)) as string) : raw
}

// The value of a number, true, false or null token.
function scalarAt(buf: Buffer, vs: number, ve: number): Scalar {
  const c = buf[vs]
  if (c === 0x74) return true
  if (c === 0x66) return false
  if (c === 0x6e) return null
  return Number(buf.toString('latin1', vs, ve))
}

// Where memberOf found the value.
const found = { s: 0, e: 0 }

// Finds the value of member `key` (the last one, as JSON.parse keeps) of the object at [vs, ve)
// into `found`; false when the value is not an object or has no such member. The record was
// validated at ingest.
function memberOf(buf: Buffer, vs: number, ve: number, key: string): boolean {
  if (buf[vs] !== LBRACE) return false
  let i = skipSpace(buf, vs + 1)
  if (buf[i] === RBRACE) return false
  let hit = false
  while (i < ve) {
    const ks = i
    i = scanString(buf, i)
    if (i < 0) return false
    const ke = i
    i = skipSpace(buf, i)
    if (buf[i] !== COLON) return false
    const s = skipSpace(buf, i + 1)
    i = scanValue(buf, s, 1)
    if (i < 0) return false
    if (tokenIs(buf, ks, ke, key)) {
      found.s = s
      found.e = i
      hit = true
    }
    i = skipSpace(buf, i)
    if (buf[i] !== COMMA) break
    i = skipSpace(buf, i + 1)
  }
  return hit
}

// A 32-bit hash of a sequence number and a salt (murmur3's finaliser).
function seqHash(seq: number, salt: number): number {
  return fmix((seq >>> 0) ^ fmix(Math.floor(seq / 2 ** 32) ^ salt))
}

function fmix(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}
