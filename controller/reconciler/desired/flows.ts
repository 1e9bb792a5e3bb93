// Output refs on logging-operator flows, and the mirror flow. A user's Flow is edited only with
// JSON patches that (1) test the exact list they change, so a concurrent edit makes the patch fail
// and be recomputed instead of being overwritten, and (2) add or remove only our own entry.
import { KINDS } from '../../../api/kinds.ts'
import type { FlowKind, LogTap, OutputKind } from '../../../api/logtap.ts'
import type { JsonPatchOp, KObject } from '../../kube/objects.ts'
import { outputKindFor, ownedLabels, tapOwnerReference } from './output.ts'

export type RefField = 'localOutputRefs' | 'globalOutputRefs'

// Where a flow of this kind lists outputs of that kind (a ClusterFlow has no local refs).
export function refFieldFor(flowKind: FlowKind, outputKind: OutputKind): RefField | undefined {
  if (outputKind === 'Output') return flowKind === 'Flow' ? 'localOutputRefs' : undefined
  return 'globalOutputRefs'
}

export function refsIn(flow: KObject, field: RefField): string[] {
  const v = flow.spec?.[field]
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
}

// Does `flow` (same namespace as the output) route records to output `name` of `outputKind`?
export function references(flow: KObject, outputKind: OutputKind, name: string): boolean {
  const field = refFieldFor(flow.kind as FlowKind, outputKind)
  return field !== undefined && refsIn(flow, field).includes(name)
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
// tap) and a custom fluentd label (two flows with one label would break the whole config).
const NOT_MIRRORED = new Set([
  'localOutputRefs',
  'globalOutputRefs',
  'outputRefs',
  'flowLabel',
  'includeLabelInRouter',
])

export function mirrorUnsupportedReason(flow: KObject): string | undefined {
  if (typeof flow.spec?.['flowLabel'] === 'string' && flow.spec['flowLabel'] !== '') {
    return `${flow.kind} ${flow.metadata.name} sets flowLabel; a copy would duplicate that fluentd label, so mirror mode cannot tap it (use mode: inject)`
  }
  return undefined
}

export function mirrorFlowSpec(
  source: KObject,
  outputKind: OutputKind,
  outputName: string,
): Record<string, unknown> {
  const spec: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(source.spec ?? {})) {
    if (!NOT_MIRRORED.has(k)) spec[k] = structuredClone(v)
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
    metadata: {
      name,
      namespace: tap.metadata.namespace,
      labels: ownedLabels(tap),
      ownerReferences: [tapOwnerReference(tap)],
    },
    spec: mirrorFlowSpec(source, outputKind, outputName),
  }
}
