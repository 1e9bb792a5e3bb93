// Pure work on fluentd configuration text as logging-operator renders it (one directive or
// parameter per line, `<name arg>` … `</name>`): find an output's block by its @id, find a flow's
// label, and build the file the fluentd runner starts with.

export interface Directive {
  name: string // e.g. match, store, buffer, label, filter
  arg: string // e.g. ** or @9f0c…; '' when none
  params: Map<string, string>
  children: Directive[]
  text: string // the directive as rendered, first to last line
}

// Parses the directive tree. Comments and blank lines are kept only in `text`.
export function parseFluentdConfig(conf: string): Directive[] {
  const lines = conf.split('\n')
  const root: Directive = { name: '', arg: '', params: new Map(), children: [], text: '' }
  const stack: { d: Directive; start: number }[] = [{ d: root, start: 0 }]
  lines.forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const close = /^<\/([\w-]+)\s*>$/.exec(line)
    if (close) {
      const top = stack.pop()
      if (!top || top.d.name !== close[1] || stack.length === 0)
        throw new Error(`fluentd config line ${i + 1}: unexpected ${line}`)
      top.d.text = lines.slice(top.start, i + 1).join('\n')
      return
    }
    const open = /^<([\w-]+)(?:\s+(.*?))?\s*>$/.exec(line)
    if (open) {
      const d: Directive = { name: open[1]!, arg: open[2] ?? '', params: new Map(), children: [], text: '' }
      stack.at(-1)!.d.children.push(d)
      stack.push({ d, start: i })
      return
    }
    const m = /^(\S+)(?:\s+(.*))?$/.exec(line)!
    stack.at(-1)!.d.params.set(m[1]!, m[2] ?? '')
  })
  if (stack.length !== 1) throw new Error(`fluentd config: <${stack.at(-1)!.d.name}> is never closed`)
  return root.children
}

function* walk(ds: Directive[]): Generator<Directive> {
  for (const d of ds) {
    yield d
    yield* walk(d.children)
  }
}

// The <match>/<store> whose @id is `id`, e.g. `flow:<ns>:<flow>:output:<ns>:<output>`.
export function outputBlock(conf: string, id: string): Directive | undefined {
  for (const d of walk(parseFluentdConfig(conf))) {
    if ((d.name === 'match' || d.name === 'store') && d.params.get('@id') === id) return d
  }
  return undefined
}

// Every output @id in the rendered configuration (stores of flows, and plain matches).
export function outputIds(conf: string): string[] {
  const ids: string[] = []
  for (const d of walk(parseFluentdConfig(conf))) {
    const id = d.params.get('@id')
    if ((d.name === 'match' || d.name === 'store') && id) ids.push(id)
  }
  return ids
}

export interface FlowSection {
  label: string // the flow's fluentd label (@ + a hash)
  filters: Directive[] // in order, as the flow applies them
  stores: Directive[] // one per output the flow references, in the rendered order
}

// The <label> of a flow: `flow:<ns>:<name>` or `clusterflow:<ns>:<name>` (the prefix of its
// outputs' @ids). The operator gives the label a hash, so the flow is found by its stores.
export function flowSection(conf: string, flowId: string): FlowSection | undefined {
  for (const d of walk(parseFluentdConfig(conf))) {
    if (d.name !== 'label') continue
    const stores = [...walk(d.children)].filter(
      (s) =>
        (s.name === 'store' || s.name === 'match') && (s.params.get('@id') ?? '').startsWith(`${flowId}:`),
    )
    if (stores.length === 0) continue
    return { label: d.arg, filters: d.children.filter((c) => c.name === 'filter'), stores }
  }
  return undefined
}
