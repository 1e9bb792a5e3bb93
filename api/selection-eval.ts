// What a selection means for one record, on parsed JSON values: the reference semantics of
// selection.ts. The relay evaluates the same rules on the record's bytes without parsing it (and is
// tested against this); k8stail uses the path lookup for its output.
import type { FieldPath, Pattern, Predicate, Selection } from './selection.ts'

// The value at `keys` (own keys of plain objects only; arrays are not descended), or undefined
// when a key is missing. A present null is null.
export function lookup(record: unknown, keys: readonly string[]): unknown {
  let cur: unknown = record
  for (const key of keys) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur) || !Object.hasOwn(cur, key))
      return undefined
    cur = (cur as Record<string, unknown>)[key]
  }
  return cur
}

// Whether a predicate holds for the value at its path (undefined: the field is missing).
export function testPredicate(p: Predicate, value: unknown): boolean {
  switch (p.kind) {
    case 'exists':
      return (value !== undefined) !== p.negate
    case 'equals':
      return p.values.some((v) => v === value) !== p.negate
    case 'regex':
      return (typeof value === 'string' && p.regex.test(value)) !== p.negate
  }
}

export function lineSelected(grep: readonly Pattern[], exclude: readonly Pattern[], line: string): boolean {
  for (const g of grep) if (!g.regex.test(line)) return false
  for (const e of exclude) if (e.regex.test(line)) return false
  return true
}

// grep, exclude and where (sampling and rates are the relay's, per listener).
export function filterPasses(s: Selection, record: unknown, line: string): boolean {
  if (!lineSelected(s.grep, s.exclude, line)) return false
  for (const p of s.where) if (!testPredicate(p, lookup(record, p.path.keys))) return false
  return true
}

// The paths a projection shows: duplicates and paths inside another given path dropped (the outer
// one shows them whole), in the order given.
function projectedPaths(fields: readonly FieldPath[]): FieldPath[] {
  const inside = (p: FieldPath, q: FieldPath) =>
    p.keys.length > q.keys.length && q.keys.every((k, i) => p.keys[i] === k)
  const out: FieldPath[] = []
  for (const f of fields)
    if (!out.some((o) => o.text === f.text) && !fields.some((g) => inside(f, g))) out.push(f)
  return out
}

// Only the given paths, nested as in the record (a path the record lacks is left out, and so is
// an object left empty by that), keys in the order of projectionTree.
export function project(record: unknown, fields: readonly FieldPath[]): Record<string, unknown> {
  return projectObject(projectionTree(fields), record) ?? {}
}

function projectObject(
  nodes: readonly ProjectionNode[],
  value: unknown,
): Record<string, unknown> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  let out: Record<string, unknown> | undefined
  for (const n of nodes) {
    if (!Object.hasOwn(value, n.key)) continue
    const v = (value as Record<string, unknown>)[n.key]
    const shown = n.leaf ? v : projectObject(n.children, v)
    if (shown === undefined) continue
    out ??= Object.create(null) as Record<string, unknown>
    out[n.key] = shown
  }
  return out
}

// A projection as a tree of keys: the paths that `project` shows, merged by their common
// prefixes, each level in the order its keys first appear in the list.
export interface ProjectionNode {
  readonly key: string
  readonly leaf: boolean // the whole value at this key is shown
  readonly children: readonly ProjectionNode[]
}

export function projectionTree(fields: readonly FieldPath[]): ProjectionNode[] {
  interface Mutable {
    key: string
    leaf: boolean
    children: Mutable[]
  }
  const root: Mutable[] = []
  for (const f of projectedPaths(fields)) {
    let level = root
    f.keys.forEach((key, i) => {
      let node = level.find((n) => n.key === key)
      if (!node) {
        node = { key, leaf: false, children: [] }
        level.push(node)
      }
      if (i === f.keys.length - 1) node.leaf = true
      level = node.children
    })
  }
  return root
}
