// The LogTap spec and status, defined once as typebox schemas: the TypeScript types (re-exported by
// logtap.ts) and the CRD in crds/ (scripts/gen-crd.ts) both derive from them. Only the CRD
// generator loads this module at run time: the relay and k8stail never load typebox.
import Type, { type Static } from 'typebox'
import { FLOW_KINDS, type FlowKindName, OUTPUT_KINDS, type OutputKindName } from './kinds.ts'
import { SelectionSpec } from './selection-schema.ts'

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
