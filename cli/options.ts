// Flags in, one frozen TailOptions out: every bad value becomes a usage error here, at the edge,
// so nothing below has to re-check them.
import { AGGREGATORS, FLOW_KINDS } from '../api/kinds.ts'
import type { FlowKind } from '../api/logtap.ts'

import {
  parseFieldList,
  parseSelection,
  SelectionError,
  type SelectionPart,
  type SelectionSpec,
} from '../api/selection.ts'
import { parsePath } from '../api/selection-syntax.ts'
import { usageError } from './errors.ts'
import { compileTemplate } from './output/template.ts'

export type OutputMode = 'raw' | 'pretty' | 'json' | 'logfmt' | 'template'

export interface TailOptions {
  flowNamespace: string
  flowName: string
  flowKind: FlowKind // Flow unless -c, --syslog-ng or --kind say otherwise
  token: string | undefined
  serviceNamespace: string
  service: string
  port: string
  serviceScheme: 'http' | 'https'
  listenAddr: string | undefined
  kubeconfig: string | undefined
  context: string | undefined
  output: OutputMode
  template: string | undefined // -o template
  rawMessage: boolean // pretty/logfmt: a JSON message as it is
  // What the relay applies before sending (--where, --grep, --exclude, --fields, --sample,
  // --sample-by, --pod-rate), validated here; undefined: everything.
  selection: SelectionSpec | undefined
  fields: string[][] | undefined // --fields as key paths, for pretty's key=value display
  forMs: number | undefined
  count: number | undefined
  attach: string | undefined
  tail: number | undefined
  reconnect: boolean
  leaseDurationSeconds: number
  verbosity: number
}

// The flag values as citty hands them over (strings and booleans, possibly undefined).
export interface RawTailArgs {
  flow?: string | undefined
  token?: string | undefined
  clusterflow?: boolean | undefined
  'syslog-ng'?: boolean | undefined
  kind?: string | undefined
  namespace?: string | undefined
  service?: string | undefined
  port?: string | undefined
  'service-scheme'?: string | undefined
  'listen-addr'?: string | undefined
  kubeconfig?: string | undefined
  context?: string | undefined
  output?: string | undefined
  template?: string | undefined
  'raw-message'?: boolean | undefined
  grep?: string | undefined
  exclude?: string | undefined
  fields?: string | undefined
  where?: string | undefined
  sample?: string | undefined
  'sample-by'?: string | undefined
  'pod-rate'?: string | undefined
  for?: string | undefined
  count?: string | undefined
  attach?: string | undefined
  tail?: string | undefined
  reconnect?: boolean | undefined
  'lease-duration'?: string | undefined
  verbosity?: string | undefined
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

function parseFlowRef(ref: string | undefined): { namespace: string; name: string } {
  if (!ref)
    throw usageError('no flow given: ns/name expected, e.g. k8stail default/flow1 (see k8stail --help)')
  const parts = ref.split('/')
  const [namespace, name] = parts
  if (parts.length !== 2 || !namespace || !name) {
    throw usageError(`invalid flow reference "${ref}": ns/name expected, e.g. default/flow1`)
  }
  if (!DNS_LABEL.test(namespace) || namespace.length > 63) {
    throw usageError(`invalid namespace "${namespace}" in "${ref}"`)
  }
  if (!DNS_SUBDOMAIN.test(name) || name.length > 253)
    throw usageError(`invalid flow name "${name}" in "${ref}"`)
  return { namespace, name }
}

// -c picks the cluster flow, --syslog-ng the syslog-ng aggregator's; --kind names the kind itself
// (any case) and cannot be combined with them.
function parseFlowKind(a: RawTailArgs): FlowKind {
  const cluster = a.clusterflow === true
  const syslogNg = a['syslog-ng'] === true
  if (a.kind !== undefined) {
    if (cluster || syslogNg)
      throw usageError('--kind names the flow kind by itself: leave out -c/--clusterflow and --syslog-ng')
    const kind = FLOW_KINDS.find((k) => k.toLowerCase() === a.kind!.trim().toLowerCase())
    if (!kind) throw usageError(`--kind must be one of ${FLOW_KINDS.join(', ')}, got "${a.kind}"`)
    return kind
  }
  const kinds = AGGREGATORS[syslogNg ? 'syslogNG' : 'fluentd']
  return cluster ? kinds.clusterFlow : kinds.flow
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

// Go-style durations ("90s", "5m", "1h30m", "500ms"); a bare number means seconds.
export function parseDuration(text: string, flag: string): number {
  const t = text.trim()
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000)
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy
  let total = 0
  let matched = 0
  for (let m = re.exec(t); m; m = re.exec(t)) {
    total += Number(m[1]) * UNITS[m[2]!]!
    matched = re.lastIndex
  }
  if (t === '' || matched !== t.length) {
    throw usageError(`${flag}: invalid duration "${text}" (e.g. 30s, 5m, 1h30m)`)
  }
  return Math.round(total)
}

function parseCount(text: string, flag: string, min: number): number {
  if (!/^\d+$/.test(text.trim())) throw usageError(`${flag}: a whole number expected, got "${text}"`)
  const n = Number(text)
  if (n < min) throw usageError(`${flag}: must be at least ${min}, got ${n}`)
  return n
}

// The flag each part of a selection comes from, for error messages.
const FLAG_OF: Record<SelectionPart, string> = {
  grep: '--grep',
  exclude: '--exclude',
  where: '--where',
  fields: '--fields',
  sample: '--sample',
  'sample.percent': '--sample',
  'sample.by': '--sample-by',
  podRate: '--pod-rate',
  '': 'selection',
}

// "10%", "10", "0.5%": a share in percent.
function parsePercent(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*%?\s*$/.exec(text)
  if (!m) throw usageError(`--sample: a percentage expected (e.g. 10%), got "${text}"`)
  return Number(m[1])
}

// The selection flags as the SelectionSpec sent to the relay, checked here with the relay's own
// parser so a mistake is reported before anything is created.
function parseSelectionFlags(a: RawTailArgs): SelectionSpec | undefined {
  const spec: SelectionSpec = {}
  const given = (v: string | undefined): v is string => v !== undefined && v !== ''
  try {
    if (given(a.where)) spec.where = a.where
    if (given(a.grep)) spec.grep = a.grep
    if (given(a.exclude)) spec.exclude = a.exclude
    if (given(a.fields)) spec.fields = parseFieldList(a.fields)
    if (given(a.sample) || given(a['sample-by'])) {
      if (!given(a.sample))
        throw usageError('--sample-by needs --sample (e.g. --sample 10% --sample-by trace_id)')
      spec.sample = {
        percent: parsePercent(a.sample),
        ...(given(a['sample-by']) ? { by: a['sample-by'] } : {}),
      }
    }
    if (given(a['pod-rate'])) spec.podRate = parseCount(a['pod-rate'], '--pod-rate', 1)
    if (Object.keys(spec).length === 0) return undefined
    parseSelection(spec)
    return spec
  } catch (err) {
    if (err instanceof SelectionError) throw usageError(err.describe((p) => FLAG_OF[p]))
    throw err
  }
}

export function parseTailOptions(a: RawTailArgs, stdoutIsTTY: boolean): TailOptions {
  const flow = parseFlowRef(a.flow)
  const template = a.template || undefined
  const output = a.output ?? (template !== undefined ? 'template' : stdoutIsTTY ? 'pretty' : 'raw')
  if (!['raw', 'pretty', 'json', 'logfmt', 'template'].includes(output)) {
    throw usageError(`-o/--output must be raw, pretty, json, logfmt or template, got "${output}"`)
  }
  if (output === 'template' && template === undefined) throw usageError('-o template needs --template')
  if (template !== undefined && output !== 'template')
    throw usageError(`--template goes with -o template, not -o ${output}`)
  const compiled = template === undefined ? [] : compileTemplate(template)
  if (typeof compiled === 'string') throw usageError(`--template: ${compiled}`)
  const scheme = a['service-scheme'] ?? 'http'
  if (scheme !== 'http' && scheme !== 'https') {
    throw usageError(`--service-scheme must be http or https, got "${scheme}"`)
  }
  const leaseMs = parseDuration(a['lease-duration'] ?? '30s', '--lease-duration')
  if (leaseMs < 10_000 || leaseMs > 3_600_000) throw usageError('--lease-duration must be between 10s and 1h')
  const attach = a.attach || undefined
  if (attach !== undefined && (!DNS_SUBDOMAIN.test(attach) || attach.length > 253)) {
    throw usageError(`--attach: invalid LogTap name "${attach}"`)
  }
  // `-v` alone counts as 1; the original took an integer.
  const verbosity = a.verbosity === undefined ? 0 : a.verbosity === '' ? 1 : parseCount(a.verbosity, '-v', 0)
  const selection = parseSelectionFlags(a)
  const forMs = a.for ? parseDuration(a.for, '--for') : undefined
  if (forMs !== undefined && forMs <= 0) throw usageError('--for must be longer than 0')
  return Object.freeze({
    flowNamespace: flow.namespace,
    flowName: flow.name,
    flowKind: parseFlowKind(a),
    token: a.token || undefined,
    serviceNamespace: a.namespace || 'log-socket',
    service: a.service || 'log-socket',
    port: a.port || '10001',
    serviceScheme: scheme,
    listenAddr: a['listen-addr'] || undefined,
    kubeconfig: a.kubeconfig || undefined,
    context: a.context || undefined,
    output: output as OutputMode,
    template,
    rawMessage: a['raw-message'] === true,
    selection,
    fields: selection?.fields?.map((f) => [...parsePath(f).keys]),
    forMs,
    count: a.count ? parseCount(a.count, '--count', 1) : undefined,
    attach,
    tail: a.tail ? parseCount(a.tail, '--tail', 0) : undefined,
    reconnect: a.reconnect !== false,
    leaseDurationSeconds: Math.round(leaseMs / 1000),
    verbosity,
  })
}
