// Output refs on logging-operator flows, and the mirror flow. A user's Flow is edited only with
// JSON patches that (1) test the exact list they change, so a concurrent edit makes the patch fail
// and be recomputed instead of being overwritten, and (2) add or remove only our own entry.
import { AGGREGATORS, aggregatorOf, isClusterKind, KINDS } from '../../../api/kinds.ts'
import type { FlowKind, LogTap, OutputKind } from '../../../api/logtap.ts'
import type { JsonPatchOp, KObject } from '../../kube/objects.ts'
import {
  allowsClusterResourcesAnywhere,
  controlNamespaceOf,
  sameLogging,
  watchesNamespace,
} from './loggings.ts'
import { outputKindFor } from './output.ts'
import { ownedMetadata } from './ownership.ts'

export type RefField = 'localOutputRefs' | 'globalOutputRefs'

// Where a flow of this kind lists outputs of that kind: local outputs in a (SyslogNG)Flow's
// localOutputRefs (a cluster flow has none), cluster outputs in any flow's globalOutputRefs, and
// never an output of the other aggregator.
export function refFieldFor(flowKind: FlowKind, outputKind: OutputKind): RefField | undefined {
  const aggregator = aggregatorOf(flowKind)
  if (!aggregator || aggregator !== aggregatorOf(outputKind)) return undefined
  const kinds = AGGREGATORS[aggregator]
  if (outputKind === kinds.output) return flowKind === kinds.flow ? 'localOutputRefs' : undefined
  return 'globalOutputRefs'
}

export function refsIn(flow: KObject, field: RefField): string[] {
  const v = flow.spec?.[field]
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
}

// Does `flow` route records to `output`? A (SyslogNG)Flow names outputs of its own namespace in
// localOutputRefs; any flow names cluster outputs of its aggregator in globalOutputRefs, and those
// are the ones of the control namespace of the flow's Logging: so a Flow in any namespace a
// Logging watches may route to a ClusterOutput of that Logging's control namespace (and a
// SyslogNGFlow to a SyslogNGClusterOutput). `loggings` undefined (not known): every flow naming it
// may. Flows of the output's own namespace that name it always count.
export function routesTo(
  flow: KObject,
  output: { kind: OutputKind; namespace: string; name: string },
  loggings: readonly KObject[] | undefined,
): boolean {
  const ns = flow.metadata.namespace ?? ''
  const field = refFieldFor(flow.kind as FlowKind, output.kind)
  if (!field || !refsIn(flow, field).includes(output.name)) return false
  if (field === 'localOutputRefs') return ns === output.namespace
  if (ns === output.namespace || loggings === undefined) return true
  return loggings.some(
    (l) =>
      sameLogging(l, flow) &&
      (allowsClusterResourcesAnywhere(l) ||
        (!isClusterKind(flow.kind) && controlNamespaceOf(l) === output.namespace && watchesNamespace(l, ns))),
  )
}

// The output lists of `flow` that may name an output of `kind`.
export function refFieldsFor(flow: KObject, kind: OutputKind): RefField[] {
  const field = refFieldFor(flow.kind as FlowKind, kind)
  return field ? [field] : []
}

// Appends `name` last to the flow's list; null when it is already there.
export function attachPatch(flow: KObject, field: RefField, name: string): JsonPatchOp[] | null {
  const current = flow.spec?.[field]
  if (Array.isArray(current)) {
    if (current.includes(name)) return null
    return [
      { op: 'test', path: `/spec/${field}`, value: current },
      { op: 'add', path: `/spec/${field}/-`, value: name },
    ]
  }
  // No list yet: guard the whole object instead.
  const rv = flow.metadata.resourceVersion
  if (!rv) throw new Error('flow without resourceVersion')
  const guard: JsonPatchOp = { op: 'test', path: '/metadata/resourceVersion', value: rv }
  if (flow.spec === undefined) return [guard, { op: 'add', path: '/spec', value: { [field]: [name] } }]
  return [guard, { op: 'add', path: `/spec/${field}`, value: [name] }]
}

// Removes every occurrence of `name` from the given lists, leaving all other entries in place;
// null when there is none.
export function detachPatch(flow: KObject, fields: readonly RefField[], name: string): JsonPatchOp[] | null {
  const ops: JsonPatchOp[] = []
  for (const field of fields) {
    const current = flow.spec?.[field]
    if (!Array.isArray(current) || !current.includes(name)) continue
    ops.push({ op: 'test', path: `/spec/${field}`, value: current })
    // Highest index first so earlier removals do not shift later ones.
    for (let i = current.length - 1; i >= 0; i--) {
      if (current[i] === name) ops.push({ op: 'remove', path: `/spec/${field}/${i}` })
    }
  }
  return ops.length > 0 ? ops : null
}

// Fields of the tapped flow a mirror must not copy: the output lists (the mirror feeds only the
// tap), a custom fluentd label (two flows with one label would break the whole config), and a
// syslog-ng flow's per-output metrics (the copy would count every record a second time).
const NOT_MIRRORED = new Set([
  'localOutputRefs',
  'globalOutputRefs',
  'outputRefs',
  'flowLabel',
  'includeLabelInRouter',
  'outputMetrics',
])

// Filters whose only effect is outside the record: in the copy they would act a second time for
// every record (stdout prints it twice, prometheus counts it twice) and change nothing the tap
// shows. Every other filter is copied, so the tap sees what the flow's outputs see; see the README
// for what running them twice means (throttle keeps counters of its own, and so on).
const SIDE_EFFECT_FILTERS = ['stdout', 'prometheus'] as const

export function mirrorUnsupportedReason(flow: KObject): string | undefined {
  if (typeof flow.spec?.['flowLabel'] === 'string' && flow.spec['flowLabel'] !== '') {
    return `${flow.kind} ${flow.metadata.name} sets flowLabel; a copy would duplicate that fluentd label, so mirror mode cannot tap it (use mode: inject)`
  }
  return undefined
}

const filterType = (f: unknown): string | undefined =>
  f !== null && typeof f === 'object' ? Object.keys(f)[0] : undefined

// The filters of `source` the mirror leaves out, by type, in order, each once.
export function omittedFilters(source: KObject): string[] {
  const filters = source.spec?.['filters']
  if (!Array.isArray(filters)) return []
  const types = filters.map(filterType).filter((t): t is string => t !== undefined)
  return [...new Set(types.filter((t) => (SIDE_EFFECT_FILTERS as readonly string[]).includes(t)))]
}

export function mirrorFlowSpec(
  source: KObject,
  outputKind: OutputKind,
  outputName: string,
): Record<string, unknown> {
  const spec: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(source.spec ?? {})) {
    if (NOT_MIRRORED.has(k)) continue
    if (k === 'filters' && Array.isArray(v)) {
      const kept = v.filter(
        (f) => !(SIDE_EFFECT_FILTERS as readonly (string | undefined)[]).includes(filterType(f)),
      )
      if (kept.length > 0) spec[k] = structuredClone(kept)
      continue
    }
    spec[k] = structuredClone(v)
  }
  const field = refFieldFor(source.kind as FlowKind, outputKind)
  if (field) spec[field] = [outputName]
  return spec
}

export function desiredMirrorFlow(tap: LogTap, source: KObject, name: string, outputName: string): KObject {
  const kind = source.kind as FlowKind
  const outputKind = outputKindFor(kind)
  return {
    apiVersion: KINDS[kind].apiVersion,
    kind,
    metadata: ownedMetadata(tap, name),
    spec: mirrorFlowSpec(source, outputKind, outputName),
  }
}
