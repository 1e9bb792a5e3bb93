// Pure work on the syslog-ng configuration logging-operator renders: its top-level statements
// (`@version`, `options {}`, `source "main_input" {}`, `destination "output_<ns>_<name>" {}`,
// `filter "flow_<ns>_<name>_ns_filter" {}`, `log {}`), and the file the syslog-ng runner starts
// with: the operator's own source (on a loopback port), the chosen destinations and the log paths
// that lead to them.

export interface Statement {
  kind: string // version, include, options, source, destination, filter, parser, rewrite, log, …
  name: string // the quoted name after the kind ('' when none)
  body: string // between the outer braces ('' for @ lines)
  text: string // the statement as rendered
}

// Splits text into statements at depth 0: `@…` lines, and `kind ["name"] { … };` / `kind(…);`.
function splitStatements(conf: string): string[] {
  const out: string[] = []
  let start = 0
  let depth = 0
  let i = 0
  const n = conf.length
  const push = (end: number) => {
    const s = conf.slice(start, end).trim()
    if (s) out.push(s)
    start = end
  }
  while (i < n) {
    const ch = conf[i]!
    if (ch === '"' || ch === "'") {
      i = skipString(conf, i)
      continue
    }
    if (ch === '#' && depth === 0 && conf.slice(start, i).trim() === '') {
      const nl = conf.indexOf('\n', i)
      i = nl < 0 ? n : nl + 1
      start = i
      continue
    }
    if (ch === '@' && depth === 0 && conf.slice(start, i).trim() === '') {
      const nl = conf.indexOf('\n', i)
      i = nl < 0 ? n : nl
      push(i)
      continue
    }
    if (ch === '{' || ch === '(') depth++
    else if (ch === '}' || ch === ')') depth--
    else if (ch === ';' && depth === 0) {
      i++
      push(i)
      continue
    }
    i++
  }
  push(n)
  return out
}

function skipString(s: string, i: number): number {
  const q = s[i]
  let j = i + 1
  while (j < s.length && s[j] !== q) j += s[j] === '\\' && q === '"' ? 2 : 1
  return j + 1
}

function parseStatement(text: string): Statement {
  if (text.startsWith('@')) {
    const m = /^@(\w+)/.exec(text)
    return { kind: m?.[1] ?? '', name: '', body: '', text }
  }
  const m = /^([\w-]+)\s*(?:"((?:[^"\\]|\\.)*)")?\s*/.exec(text)
  const kind = m?.[1] ?? ''
  const name = m?.[2] ?? ''
  const open = text.indexOf('{')
  const close = text.lastIndexOf('}')
  const body = open >= 0 && close > open ? text.slice(open + 1, close) : ''
  return { kind, name, body, text }
}

export function parseSyslogNgConfig(conf: string): Statement[] {
  return splitStatements(conf).map(parseStatement)
}

// The names a log path sends to (its nested `log { destination("…"); };` items and plain ones).
export function destinationsOf(log: Statement): string[] {
  return [...log.body.matchAll(/\bdestination\(\s*"?([^")\s]+)"?\s*\)/g)].map((m) => m[1]!)
}

// The names of filters/parsers/rewrites a log path refers to.
function referencedNames(log: Statement): string[] {
  return [...log.body.matchAll(/\b(?:filter|parser|rewrite)\(\s*"?([^")\s]+)"?\s*\)/g)].map((m) => m[1]!)
}

// `destination "output_<ns>_<name>"` / `"clusteroutput_<ns>_<name>"`: the name the operator gives an output.
export const syslogNgDestinationName = (
  kind: 'SyslogNGOutput' | 'SyslogNGClusterOutput',
  ns: string,
  name: string,
) => `${kind === 'SyslogNGOutput' ? 'output' : 'clusteroutput'}_${ns}_${name}`

export function destinationStatement(conf: string, name: string): Statement | undefined {
  return parseSyslogNgConfig(conf).find((s) => s.kind === 'destination' && s.name === name)
}

// The log paths that send to `destination`.
export function logPathsTo(conf: string, destination: string): Statement[] {
  return parseSyslogNgConfig(conf).filter((s) => s.kind === 'log' && destinationsOf(s).includes(destination))
}

// Keeps, in a log path, only the nested destination paths to `keep` (others may point anywhere).
function pruneLogPath(log: Statement, keep: Set<string>): string {
  const items = splitStatements(log.body).filter((item) => {
    const st = parseStatement(item)
    if (st.kind === 'log' || st.kind === 'destination') {
      const dests = st.kind === 'log' ? destinationsOf(st) : destinationsOf({ ...st, body: item })
      return dests.length === 0 || dests.some((d) => keep.has(d))
    }
    return true
  })
  return `log {\n${items.map((i) => `    ${i}`).join('\n')}\n};`
}

export interface SyslogNgHarnessOptions {
  port: number // where the operator's network() source listens instead of its port
  destinations: string[] // destination names to run (with every log path leading to them)
  url?: (url: string) => string // maps a rendered url() (an in-cluster Service URL, say)
  allowHosts?: string[] // besides loopback
  persistDir?: string // for disk buffers, if any
}

const LOOPBACK = ['127.0.0.1', 'localhost', '[::1]', '::1']

// The configuration to run: the operator's header and options, its source bound to 127.0.0.1:port,
// the chosen destinations, the log paths that reach them (pruned to them) and what those use.
export function syslogNgHarnessConfig(conf: string, o: SyslogNgHarnessOptions): string {
  const all = parseSyslogNgConfig(conf)
  const keep = new Set(o.destinations)
  for (const d of keep) {
    const st = all.find((s) => s.kind === 'destination' && s.name === d)
    if (!st) throw new Error(`syslog-ng config: no destination "${d}" in what the operator rendered`)
    // Only url() is checked against the allowed hosts: other drivers could send anywhere.
    if (!/^\s*http\(/.test(st.body))
      throw new Error(`destination "${d}": the harness runs http() destinations only`)
  }
  const logs = all.filter((s) => s.kind === 'log' && destinationsOf(s).some((d) => keep.has(d)))
  // syslog-ng opens no source that no log path uses: the runner would wait for it in vain.
  if (logs.length === 0)
    throw new Error(
      `syslog-ng config: no log path leads to ${[...keep].join(', ')} (not referenced by any flow yet?)`,
    )
  const used = new Set(logs.flatMap(referencedNames))
  const allowed = new Set([...LOOPBACK, ...(o.allowHosts ?? [])])
  const out: string[] = []
  for (const s of all) {
    if (s.kind === 'version' || s.kind === 'include' || s.kind === 'options') out.push(s.text)
    else if (s.kind === 'source') out.push(bindSource(s.text, o.port))
    else if (s.kind === 'destination' && keep.has(s.name)) out.push(rewriteUrls(s.text, o.url, allowed))
    else if ((s.kind === 'filter' || s.kind === 'parser' || s.kind === 'rewrite') && used.has(s.name))
      out.push(s.text)
  }
  out.push(...logs.map((l) => pruneLogPath(l, keep)))
  return `${out.join('\n\n')}\n`
}

// The operator's source listens on port(601) on every address: here, a free loopback port.
function bindSource(text: string, port: number): string {
  if (!/\bport\(\s*\d+\s*\)/.test(text)) throw new Error(`syslog-ng source without port(): ${text}`)
  return text.replace(/\bport\(\s*\d+\s*\)/, `port(${port}) ip("127.0.0.1")`)
}

function rewriteUrls(text: string, map: ((u: string) => string) | undefined, allowed: Set<string>): string {
  return text.replace(/\burl\(\s*"((?:[^"\\]|\\.)*)"\s*\)/g, (_m, url: string) => {
    const to = map ? map(url) : url
    let host = ''
    try {
      host = new URL(to).hostname
    } catch {
      throw new Error(`syslog-ng url ${JSON.stringify(to)} is not a URL`)
    }
    if (!allowed.has(host))
      throw new Error(`syslog-ng would send to ${to}: tests send only to loopback or the test host`)
    return `url("${to}")`
  })
}
