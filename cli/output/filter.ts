// Client-side selection: --grep/--exclude on the record text, --fields projection.
export interface FilterOptions {
  grep?: RegExp | undefined
  exclude?: RegExp | undefined
  fields?: string[][] | undefined
}

// True when a line of this text should be shown.
export function selected(text: string, f: FilterOptions): boolean {
  if (f.grep && !f.grep.test(text)) return false
  if (f.exclude?.test(text)) return false
  return true
}

// Keeps only the given paths, nested as in the record ({kubernetes:{pod_name}} for kubernetes.pod_name).
// A path the record lacks is left out rather than shown as null.
export function project(record: unknown, paths: string[][]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const path of paths) {
    const value = lookup(record, path)
    if (value === undefined) continue
    let target = out
    for (const key of path.slice(0, -1)) {
      const next = target[key]
      if (typeof next !== 'object' || next === null || Array.isArray(next)) target[key] = {}
      target = target[key] as Record<string, unknown>
    }
    target[path.at(-1)!] = value
  }
  return out
}

export function lookup(record: unknown, path: string[]): unknown {
  let cur: unknown = record
  for (const key of path) {
    if (typeof cur !== 'object' || cur === null || !Object.hasOwn(cur, key)) return undefined
    cur = (cur as Record<string, unknown>)[key]
  }
  return cur
}
