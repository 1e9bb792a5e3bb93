// Plain shapes of the Kubernetes objects the controller reads and writes. The core works on these
// (JSON as the API server returns it), never on client library classes.
import type { FlowKind, ObjectMeta, OutputKind } from '../../api/logtap.ts'

export interface KObject {
  apiVersion?: string
  kind?: string
  metadata: ObjectMeta
  spec?: Record<string, unknown>
  status?: Record<string, unknown>
  // Secrets
  type?: string
  data?: Record<string, string>
}

// A namespaced object reference; uid pins one incarnation of the object.
export interface ObjRef {
  kind: OutputKind | FlowKind
  namespace: string
  name: string
  uid?: string
}

export function refOf(o: KObject): ObjRef {
  return {
    kind: o.kind as ObjRef['kind'],
    namespace: o.metadata.namespace ?? '',
    name: o.metadata.name ?? '',
    uid: o.metadata.uid,
  }
}

export function describeRef(r: ObjRef): string {
  return `${r.kind} ${r.namespace}/${r.name}`
}

export function isDeleting(o: { metadata: ObjectMeta }): boolean {
  return o.metadata.deletionTimestamp !== undefined && o.metadata.deletionTimestamp !== null
}

export function hasFinalizer(o: { metadata: ObjectMeta }, f: string): boolean {
  return (o.metadata.finalizers ?? []).includes(f)
}

// A JSON patch operation (RFC 6902), as the controller sends them: `test` guards, then edits.
export type JsonPatchOp =
  | { op: 'test'; path: string; value: unknown }
  | { op: 'add'; path: string; value: unknown }
  | { op: 'remove'; path: string }

export function toMillis(t: string | Date | undefined | null): number | undefined {
  if (t === undefined || t === null) return undefined
  const ms = t instanceof Date ? t.getTime() : Date.parse(t)
  return Number.isFinite(ms) ? ms : undefined
}

// Structural equality of JSON values (object key order does not matter).
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const bb = b as unknown[]
    return a.length === bb.length && a.every((x, i) => jsonEqual(x, bb[i]))
  }
  const ao = a as Record<string, unknown>
  const bo = b as Record<string, unknown>
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined)
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined)
  return ak.length === bk.length && ak.every((k) => jsonEqual(ao[k], bo[k]))
}
