// Argument fragments shared by commands (nuxt/cli style), declared once with their help text.
import type { ArgDef } from 'citty'

// Where the relay is and how to reach it (the original's flags, same names and defaults).
export const relayArgs = {
  token: {
    type: 'string',
    alias: 't',
    description: 'Token the relay checks (default: the kubeconfig user token)',
  },
  namespace: {
    type: 'string',
    alias: 'n',
    default: 'log-socket',
    description: 'Namespace of the relay Service',
  },
  service: { type: 'string', alias: 's', default: 'log-socket', description: 'Name of the relay Service' },
  port: { type: 'string', alias: 'p', default: '10001', description: 'Relay Service port (number or name)' },
  'service-scheme': {
    type: 'string',
    valueHint: 'http|https',
    description: 'Scheme the API server uses to reach the relay pod (default http)',
  },
  'listen-addr': {
    type: 'string',
    valueHint: 'addr',
    description: 'Connect straight to the relay (ws://, wss://; wss:// if no scheme), not via the API server',
  },
} as const satisfies Record<string, ArgDef>

// Which cluster and user, like kubectl.
export const kubeconfigArgs = {
  kubeconfig: {
    type: 'string',
    valueHint: 'file',
    description: 'Kubeconfig file (default: $KUBECONFIG, ~/.kube/config)',
  },
  context: {
    type: 'string',
    valueHint: 'name',
    description: 'Kubeconfig context (default: the current context)',
  },
} as const satisfies Record<string, ArgDef>

// What to print.
export const outputArgs = {
  output: {
    type: 'string',
    alias: 'o',
    valueHint: 'raw|pretty|json|logfmt|template',
    description:
      'raw: records as posted; pretty: time pod [level] message; json: envelopes; logfmt; template (default: pretty on a TTY, else raw)',
  },
  template: {
    type: 'string',
    valueHint: 'text',
    description:
      "Each record's envelope through a template, e.g. '{{seq}} {{record.kubernetes.pod_name}} {{record.message}}'",
  },
  'raw-message': {
    type: 'boolean',
    description: 'Show a JSON message as it is (pretty and logfmt read its level, message and fields)',
  },
} as const satisfies Record<string, ArgDef>

// What the relay sends: applied on the server, before records cross the network (docs/selection.md).
export const selectionArgs = {
  where: {
    type: 'string',
    valueHint: 'expr',
    description:
      "Only records where this holds, e.g. 'level in [error, warn] && kubernetes.labels.app == web'",
  },
  grep: {
    type: 'string',
    valueHint: 'regex',
    description: 'Only records whose JSON text matches this regex',
  },
  exclude: {
    type: 'string',
    valueHint: 'regex',
    description: 'Leave out records whose JSON text matches this regex',
  },
  fields: {
    type: 'string',
    valueHint: 'a.b,c',
    description: 'Only these record fields (projected by the relay)',
  },
  sample: {
    type: 'string',
    valueHint: 'N%',
    description: 'Keep N% of the records (what is left out is reported)',
  },
  'sample-by': {
    type: 'string',
    valueHint: 'field',
    description: 'With --sample: keep or leave out records with the same value of this field together',
  },
  'pod-rate': {
    type: 'string',
    valueHint: 'n',
    description: 'At most n records per second from any one pod',
  },
} as const satisfies Record<string, ArgDef>

export const verbosityArgs = {
  verbosity: {
    type: 'string',
    alias: 'v',
    valueHint: 'n',
    description: 'Diagnostics on stderr: 1 steps, 2 stacks',
  },
} as const satisfies Record<string, ArgDef>
