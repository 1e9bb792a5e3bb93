// The LogTap API: its place in the API, names and the object's shape. The spec and status are
// defined once as typebox schemas in logtap-schema.ts (the CRD and these types derive from them).
import { KINDS } from './kinds.ts'
import type { LogTapSpec, LogTapStatus } from './logtap-schema.ts'

// LogTap's place in the API (its row of the kinds table), by the names the CRD generator, the CLI
// and the relay use.
export const {
  group: GROUP,
  version: VERSION,
  apiVersion: API_VERSION,
  kind: KIND,
  plural: PLURAL,
} = KINDS.LogTap
export const SINGULAR = 'logtap'
export const SHORT_NAMES = ['ltap']
// kubectl expands a category before it looks for a resource of that name, so a category must never
// be a kind's name: `logging` made `kubectl get logging` list LogTaps instead of Loggings.
// `logging-all` is logging-operator's own (every kind of the logging pipeline, now with taps).
export const CATEGORIES = ['log-socket', 'logging-all']

// The schema's types that code outside api/ names (the rest through LogTap).
export type { Condition, ConditionStatus, FlowKind, OutputKind } from './logtap-schema.ts'

export interface ObjectMeta {
  name?: string
  namespace?: string
  uid?: string
  generation?: number
  resourceVersion?: string
  creationTimestamp?: string | Date
  deletionTimestamp?: string | Date
  labels?: Record<string, string>
  annotations?: Record<string, string>
  finalizers?: string[]
  ownerReferences?: OwnerReference[]
}

export interface OwnerReference {
  apiVersion: string
  kind: string
  name: string
  uid: string
  controller?: boolean
  blockOwnerDeletion?: boolean
}

export interface LogTap {
  apiVersion: typeof API_VERSION
  kind: typeof KIND
  metadata: ObjectMeta
  spec: LogTapSpec
  status?: LogTapStatus
}

// Condition types, one constant each.
export const Conditions = {
  FlowFound: 'FlowFound',
  OutputReady: 'OutputReady',
  Attached: 'Attached',
  Accepted: 'Accepted', // logging-operator took the tap's output into its configuration
  Ready: 'Ready',
  SelectionValid: 'SelectionValid', // only on a LogTap with a spec.selection
} as const

// Labels on everything log-socket creates. They, not owner references, say which tap an object
// belongs to: the garbage collector strips owner references (`kubectl delete --cascade=orphan`),
// and an object of ours must still be recognised and released then. The tap's name may be longer
// than a label value: LABEL_TAP holds it shortened (for selectors), ANNOTATION_TAP_NAME in full.
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by'
export const MANAGED_BY = 'log-socket'
export const LABEL_TAP = `${GROUP}/tap`
export const LABEL_TAP_UID = `${GROUP}/tap-uid`
export const ANNOTATION_TAP_NAME = `${GROUP}/tap-name`

// Finalizers: on the LogTap (ordered cleanup of refs, then outputs) and on each Output it owns
// (an Output is never removed while a flow may still reference it).
export const FINALIZER_TAP = `${GROUP}/cleanup`
export const FINALIZER_OUTPUT = `${GROUP}/unreferenced`

export const FIELD_MANAGER_CONTROLLER = 'log-socket-controller'
// The relay totals (status.listeners, recordsReceived, lastRecordTime), written by the leading
// controller from status.relays.
export const FIELD_MANAGER_RELAY = 'log-socket-relay'
export const FIELD_MANAGER_CLI = 'k8stail'

// The field manager of one relay replica's status.relays entry: one manager per replica, so
// replicas never overwrite each other's counters.
export function relayFieldManager(replica: string): string {
  return `${FIELD_MANAGER_RELAY}-${replica}`.slice(0, 128)
}

export function streamPath(namespace: string, name: string): string {
  return `/taps/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`
}

export function ingestPath(namespace: string, name: string): string {
  return `/ingest/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`
}

// Until 0.1: the header fluentd sent the per-tap credential in, written into the Output's spec where
// anyone who may read Outputs could see it. Now fluentd sends HTTP Basic auth from a Secret; the
// relay still accepts this header for a short while after it starts (see the ingest routes).
export const LEGACY_INGEST_TOKEN_HEADER = 'x-log-socket-tap-token'
// The header clients send their Kubernetes token in (the API server proxy strips Authorization).
export const CLIENT_TOKEN_HEADER = 'x-authorization'
