// The selection language: what a listener (k8stail's flags, the stream request) or a persistent
// LogTap (spec.selection) asks the relay to do with a tap's records before they are sent. One
// definition for k8stail, the relay and the controller.
//
//   grep     regex     only records whose line (the record's JSON text as posted) matches
//   exclude  regex     drop records whose line matches
//   where    predicates on the JSON record, joined by &&:
//              path                 the field exists (any value, null included)
//              !path                the field is missing
//              path == value        equal (type and value: 200 is a number, "200" a string)
//              path != value        not equal, or missing
//              path in [v1, v2]     equal to one of them;  path not in [...]: to none, or missing
//              path =~ regex        a string value that matches;  !~: does not match, or missing
//            values: "string" (JSON escapes), 'string', numbers, true, false, null, or a bare
//            word, which is a string (level == error).
//   fields   projection: only these paths, nested as in the record
//   sample   keep this percentage of records: uniformly, or `by` a field (every record with the
//            same value of it is kept or left out together, e.g. a trace id)
//   podRate  at most this many records per second from any one pod (a fair share)
//
// Paths are object keys from the top of the record joined by dots; a key with a dot, a space or
// other punctuation is written in brackets: kubernetes.labels["app.kubernetes.io/name"]. Letters,
// digits and _ - / @ $ need no brackets. Arrays are not descended.
//
// Regexes are JavaScript's, limited to what runs in linear time (safe-regex.ts): no
// backreferences, no lookaround, counted repetitions up to {16}; `(?i)` in front for ASCII
// case-insensitivity; at most 256 characters.
//
// Order on the relay: RBAC decides on the whole record first (a denied record is always told as
// denied, whatever the selection); then grep/exclude/where; then sampling; then the per-pod rate;
// then the projection. A LogTap's own selection and a listener's combine as AND: both filters must
// pass, both samples keep the record, the lower rate cap holds, the fields are those both allow.
import { compileRegex } from './safe-regex.ts'
import {
  MAX_FIELDS,
  MAX_PATH_LENGTH,
  MAX_POD_RATE,
  MAX_WHERE_LENGTH,
  MIN_SAMPLE_PERCENT,
} from './selection-limits.ts'
import type { SelectionSpec } from './selection-schema.ts'
import {
  type FieldPath,
  type Predicate,
  parsePath,
  parsePaths,
  parseWhere,
  predicateText,
  SyntaxFault,
} from './selection-syntax.ts'

export { MAX_SELECTION_BYTES } from './selection-limits.ts'
export type { SelectionSpec } from './selection-schema.ts'
export type { FieldPath, Predicate, Scalar } from './selection-syntax.ts'

// A line regex as written and compiled.
export interface Pattern {
  readonly source: string
  readonly regex: RegExp
}

interface Sampling {
  readonly percent: number
  readonly by?: FieldPath
}

// A parsed, validated selection. Several of each (grep, sample, …) arise from combining a tap's
// selection with a listener's.
export interface Selection {
  readonly grep: readonly Pattern[]
  readonly exclude: readonly Pattern[]
  readonly where: readonly Predicate[]
  readonly fields: readonly FieldPath[] | undefined // undefined: the whole record
  readonly samples: readonly Sampling[]
  readonly podRate: number | undefined
}

export const EMPTY_SELECTION: Selection = Object.freeze({
  grep: [],
  exclude: [],
  where: [],
  fields: undefined,
  samples: [],
  podRate: undefined,
})

// Which part of the selection an error is about: where, grep, exclude, fields, sample.percent,
// sample.by, podRate, or "" for the whole.
export type SelectionPart = keyof SelectionSpec | 'sample.percent' | 'sample.by' | ''

export class SelectionError extends Error {
  readonly part: SelectionPart
  readonly reason: string
  readonly text: string | undefined // the part as written, when `at` points into it
  readonly at: number | undefined

  constructor(part: SelectionPart, reason: string, text?: string, at?: number) {
    super(selectionErrorText(part, reason, text, at, (p) => (p ? `selection.${p}` : 'selection')))
    this.part = part
    this.reason = reason
    this.text = text
    this.at = at
  }

  // One line, naming the part as the caller's user knows it (--where, spec.selection.where, …).
  describe(name: (part: SelectionPart) => string): string {
    return selectionErrorText(this.part, this.reason, this.text, this.at, name)
  }
}

function selectionErrorText(
  part: SelectionPart,
  reason: string,
  text: string | undefined,
  at: number | undefined,
  name: (part: SelectionPart) => string,
): string {
  let where = ''
  if (text !== undefined && at !== undefined) {
    const rest = text.slice(at)
    const near = rest.length > 24 ? `${rest.slice(0, 24)}…` : rest
    where = near ? ` at column ${at + 1}, near '${near}'` : ` at column ${at + 1} (the end)`
  }
  return `${name(part)}: ${reason}${where}`
}

function regexOf(part: 'grep' | 'exclude', text: unknown): Pattern[] {
  if (text === undefined) return []
  if (typeof text !== 'string') throw new SelectionError(part, 'a string (a regular expression) expected')
  const regex = compileRegex(text)
  if (!(regex instanceof RegExp)) throw new SelectionError(part, regex.error, text, regex.at)
  return [{ source: text, regex }]
}

function pathOf(part: 'sample.by' | 'fields', text: unknown): FieldPath {
  if (typeof text !== 'string' || text.length === 0) throw new SelectionError(part, 'a field path expected')
  if (text.length > MAX_PATH_LENGTH)
    throw new SelectionError(part, `a field path has at most ${MAX_PATH_LENGTH} characters`)
  try {
    return parsePath(text)
  } catch (err) {
    if (err instanceof SyntaxFault) throw new SelectionError(part, err.message, text, err.at)
    throw err
  }
}

// Parses and validates a selection as written (from any source: flags, header, LogTap spec).
// Throws SelectionError, one line, pointing at the offending part.
export function parseSelection(spec: unknown): Selection {
  if (spec === undefined || spec === null) return EMPTY_SELECTION
  if (typeof spec !== 'object' || Array.isArray(spec)) throw new SelectionError('', 'an object expected')
  const s = spec as Record<string, unknown>
  const known = new Set(['grep', 'exclude', 'where', 'fields', 'sample', 'podRate'])
  const unknown = Object.keys(s).find((k) => !known.has(k))
  if (unknown !== undefined) throw new SelectionError('', `unknown field ${JSON.stringify(unknown)}`)

  let where: Predicate[] = []
  if (s.where !== undefined) {
    const text = s.where
    if (typeof text !== 'string' || text.trim() === '')
      throw new SelectionError('where', 'an expression expected (e.g. level == error)')
    if (text.length > MAX_WHERE_LENGTH)
      throw new SelectionError('where', `at most ${MAX_WHERE_LENGTH} characters`)
    try {
      where = parseWhere(text, compileRegex)
    } catch (err) {
      if (err instanceof SyntaxFault) throw new SelectionError('where', err.message, text, err.at)
      throw err
    }
  }

  let fields: FieldPath[] | undefined
  if (s.fields !== undefined) {
    if (!Array.isArray(s.fields) || s.fields.length === 0)
      throw new SelectionError('fields', 'a list of field paths expected')
    if (s.fields.length > MAX_FIELDS) throw new SelectionError('fields', `at most ${MAX_FIELDS} fields`)
    fields = s.fields.map((f) => pathOf('fields', f))
  }

  const samples: Sampling[] = []
  if (s.sample !== undefined) {
    const sample = s.sample as Record<string, unknown>
    if (typeof sample !== 'object' || sample === null || Array.isArray(sample))
      throw new SelectionError('sample', 'an object {percent, by} expected')
    const extra = Object.keys(sample).find((k) => k !== 'percent' && k !== 'by')
    if (extra !== undefined) throw new SelectionError('sample', `unknown field ${JSON.stringify(extra)}`)
    const percent = sample.percent
    if (
      typeof percent !== 'number' ||
      !Number.isFinite(percent) ||
      percent < MIN_SAMPLE_PERCENT ||
      percent > 100
    )
      throw new SelectionError(
        'sample.percent',
        `a percentage between ${MIN_SAMPLE_PERCENT} and 100 expected`,
      )
    samples.push(sample.by === undefined ? { percent } : { percent, by: pathOf('sample.by', sample.by) })
  }

  let podRate: number | undefined
  if (s.podRate !== undefined) {
    const r = s.podRate
    if (typeof r !== 'number' || !Number.isInteger(r) || r < 1 || r > MAX_POD_RATE)
      throw new SelectionError(
        'podRate',
        `a whole number of records per second, 1 to ${MAX_POD_RATE}, expected`,
      )
    podRate = r
  }

  return Object.freeze({
    grep: regexOf('grep', s.grep),
    exclude: regexOf('exclude', s.exclude),
    where,
    fields,
    samples,
    podRate,
  })
}

// `a, b["c.d"]` as written on a command line: the canonical texts of its paths (for
// SelectionSpec.fields), or SelectionError pointing into the text.
export function parseFieldList(text: string): string[] {
  try {
    const paths = parsePaths(text)
    if (paths.length > MAX_FIELDS) throw new SelectionError('fields', `at most ${MAX_FIELDS} fields`)
    return paths.map((p) => p.text)
  } catch (err) {
    if (err instanceof SyntaxFault) throw new SelectionError('fields', err.message, text, err.at)
    throw err
  }
}

export function isEmptySelection(s: Selection): boolean {
  return (
    s.grep.length === 0 &&
    s.exclude.length === 0 &&
    s.where.length === 0 &&
    s.fields === undefined &&
    s.samples.length === 0 &&
    s.podRate === undefined
  )
}

// Both selections at once (AND): a tap's own selection and a listener's.
export function combineSelections(a: Selection, b: Selection): Selection {
  if (isEmptySelection(a)) return b
  if (isEmptySelection(b)) return a
  return Object.freeze({
    grep: [...a.grep, ...b.grep],
    exclude: [...a.exclude, ...b.exclude],
    where: [...a.where, ...b.where],
    fields: intersectFields(a.fields, b.fields),
    samples: [...a.samples, ...b.samples],
    podRate:
      a.podRate === undefined
        ? b.podRate
        : b.podRate === undefined
          ? a.podRate
          : Math.min(a.podRate, b.podRate),
  })
}

const isPrefix = (p: FieldPath, q: FieldPath): boolean =>
  p.keys.length <= q.keys.length && p.keys.every((k, i) => q.keys[i] === k)

// The paths both projections show: the deeper of two paths when one contains the other.
function intersectFields(
  a: readonly FieldPath[] | undefined,
  b: readonly FieldPath[] | undefined,
): readonly FieldPath[] | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  const out: FieldPath[] = []
  for (const p of a)
    for (const q of b) {
      const deeper = isPrefix(p, q) ? q : isPrefix(q, p) ? p : undefined
      if (deeper && !out.some((o) => o.text === deeper.text)) out.push(deeper)
    }
  return out
}

// The share of records sampling keeps, in percent (100: no sampling).
export function samplePercent(s: Selection): number {
  return s.samples.reduce((p, x) => (p * x.percent) / 100, 100)
}

// One line for people: what the selection does.
export function describeSelection(s: Selection): string {
  const parts: string[] = []
  if (s.where.length) parts.push(`where ${s.where.map(predicateText).join(' && ')}`)
  for (const g of s.grep) parts.push(`grep ${regexText(g)}`)
  for (const e of s.exclude) parts.push(`exclude ${regexText(e)}`)
  if (s.fields) parts.push(`fields ${s.fields.length ? s.fields.map((f) => f.text).join(',') : '(none)'}`)
  for (const x of s.samples) parts.push(`sample ${percentText(x.percent)}${x.by ? ` by ${x.by.text}` : ''}`)
  if (s.podRate !== undefined) parts.push(`at most ${s.podRate} records/s per pod`)
  return parts.join('; ')
}

function regexText(p: Pattern): string {
  return `/${p.source}/`
}

export function percentText(p: number): string {
  return `${Number(p.toPrecision(4))}%`
}

// What the relay tells a listener in `hello` about the selection it applies.
export interface SelectionSummary {
  text: string // describeSelection of the combined selection
  percent: number // share of records sampling keeps, in percent (100: no sampling)
  podRate?: number // the per-pod cap in records/s, if any
  tap: boolean // the LogTap has a selection of its own (part of `text`)
}

export function selectionSummary(s: Selection, tapHasSelection: boolean): SelectionSummary {
  return {
    text: describeSelection(s),
    percent: samplePercent(s),
    ...(s.podRate !== undefined ? { podRate: s.podRate } : {}),
    tap: tapHasSelection,
  }
}
