// The LogTap API: defined once here as typebox schemas. The TypeScript types below and the CRD
// in crds/ (scripts/gen-crd.ts) are both derived from these schemas.
import Type, { type Static } from 'typebox'
import { FLOW_KINDS, type FlowKindName, KINDS, OUTPUT_KINDS, type OutputKindName } from './kinds.ts'
import { SelectionSpec } from './selection.ts'

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

// A DNS-1123 subdomain: what Kubernetes accepts as an object name.
const objectName = Type.String({
  minLength: 1,
  maxLength: 253,
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
})

// The flows a LogTap can tap (both aggregators'), and the outputs the controller makes for them.
export const FlowKind = Type.Enum([...FLOW_KINDS] as FlowKindName[])
export type FlowKind = Static<typeof FlowKind>
export const OutputKind = Type.Enum([...OUTPUT_KINDS] as OutputKindName[])
export type OutputKind = Static<typeof OutputKind>
// Part of the contract for every client that writes LogTaps (kubectl, GitOps, other tools), used here or not.
/** @public */
export const TapMode = Type.Enum(['inject', 'mirror'])
/** @public */
export type TapMode = Static<typeof TapMode>
/** @public */
export const TapLifetime = Type.Enum(['session', 'persistent'])
/** @public */
export type TapLifetime = Static<typeof TapLifetime>

export const LogTapSpec = Type.Object({
  flow: Type.Object(
    {
      kind: Type.Enum(FlowKind.enum, {
        default: 'Flow',
        description:
          'Flow taps a Flow in the LogTap namespace; ClusterFlow taps a ClusterFlow, and the LogTap must then live in the logging control namespace next to it. SyslogNGFlow and SyslogNGClusterFlow do the same for a Logging whose aggregator is syslog-ng.',
      }),
      name: { ...objectName, description: 'Name of the flow to tap.' },
    },
    {
      description: 'The logging-operator flow whose output records are streamed. Immutable.',
      'x-kubernetes-validations': [
        {
          rule: 'self == oldSelf',
          message: 'spec.flow is immutable: create a new LogTap to tap another flow',
        },
      ],
    },
  ),
  mode: Type.Enum(TapMode.enum, {
    default: 'inject',
    description:
      "inject adds the tap's output, last, to the flow's output refs; mirror never touches the flow and creates a copy of it (same match, filters and loggingRef) that feeds only the tap. Immutable.",
    'x-kubernetes-validations': [
      { rule: 'self == oldSelf', message: 'spec.mode is immutable: create a new LogTap to change it' },
    ],
  }),
  lifetime: Type.Enum(TapLifetime.enum, {
    default: 'persistent',
    description:
      'session: the tap is deleted when its heartbeat Lease (same name, same namespace) expires or never appears; persistent: it lives until deleted.',
  }),
  replay: Type.Integer({
    minimum: 0,
    maximum: 100000,
    default: 1000,
    description: 'How many recent records the relay keeps for clients that connect or reconnect.',
  }),
  selection: Type.Optional(SelectionSpec),
})
export type LogTapSpec = Static<typeof LogTapSpec>

export const ConditionStatus = Type.Enum(['True', 'False', 'Unknown'])
export type ConditionStatus = Static<typeof ConditionStatus>
export const Condition = Type.Object({
  type: Type.String({ minLength: 1, maxLength: 316 }),
  status: ConditionStatus,
  reason: Type.String({ minLength: 1, maxLength: 1024 }),
  message: Type.String({ maxLength: 32768 }),
  lastTransitionTime: Type.String({ format: 'date-time' }),
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
})
export type Condition = Static<typeof Condition>

export const LogTapStatus = Type.Object({
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  conditions: Type.Optional(Type.Array(Condition)),
  outputKind: Type.Optional(OutputKind),
  outputName: Type.Optional(
    Type.String({ description: 'The output (of kind outputKind) that feeds this tap.' }),
  ),
  mirrorFlowName: Type.Optional(
    Type.String({ description: 'mirror mode: the flow copy that feeds the tap.' }),
  ),
  streamPath: Type.Optional(
    Type.String({ description: 'WebSocket path of the stream on the relay service.' }),
  ),
  listeners: Type.Optional(
    Type.Integer({ minimum: 0, description: 'Clients streaming now, over all relay replicas.' }),
  ),
  recordsReceived: Type.Optional(
    Type.Integer({
      minimum: 0,
      description: 'Records the relay replicas received for this tap (the sum of status.relays).',
    }),
  ),
  lastRecordTime: Type.Optional(Type.String({ format: 'date-time' })),
  selection: Type.Optional(
    Type.String({ description: 'What spec.selection makes the relay do, in words (controller).' }),
  ),
  relays: Type.Optional(
    Type.Array(
      Type.Object({
        name: Type.String({ minLength: 1, maxLength: 253, description: 'The relay replica (its pod).' }),
        listeners: Type.Integer({ minimum: 0, description: 'Clients streaming from this replica now.' }),
        recordsReceived: Type.Integer({
          minimum: 0,
          description: 'Records this replica received for the tap since it started.',
        }),
        lastRecordTime: Type.Optional(Type.String({ format: 'date-time' })),
      }),
      {
        description:
          "Each relay replica's own counters, written by that replica; the controller sums them into listeners and recordsReceived and removes the entries of replicas that are gone.",
        // Entries merge by name under server-side apply: each replica owns its own.
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
      },
    ),
  ),
})
export type LogTapStatus = Static<typeof LogTapStatus>

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
