// The Output (Flow tap) or ClusterOutput (ClusterFlow tap) that feeds a LogTap: an http output
// posting NDJSON to the relay's ingest URL for this tap. Its buffer is built so it can never hurt
// the tapped flow, which shares fluentd's `copy` with it:
// - a small memory buffer whose oldest chunk is dropped when full: the default overflow action
//   raises, and a raising `<store>` makes the stores after it miss those records;
// - no chunk keys (`tags: "[]"`) and a 1 s interval flush: with logging-operator's default keys
//   (tag, time) fluentd flushes once per 10-minute timekey plus a minute's wait;
// - bounded retries (logging-operator otherwise renders `retry_forever true`), so a relay that is
//   gone cannot hold buffer space forever.

import { tapCredential } from '../../../api/credential.ts'
import { KINDS } from '../../../api/kinds.ts'
import {
  API_VERSION,
  FINALIZER_OUTPUT,
  type FlowKind,
  INGEST_TOKEN_HEADER,
  ingestPath,
  KIND,
  LABEL_MANAGED_BY,
  LABEL_TAP,
  type LogTap,
  MANAGED_BY,
  type OutputKind,
  type OwnerReference,
} from '../../../api/logtap.ts'
import type { KObject } from '../../kube/objects.ts'
import { tapLabelValue, tapObjectName } from './naming.ts'

export interface OutputConfig {
  ingestBaseUrl: string // e.g. http://log-socket.log-socket.svc:10000
  ingestKey: Uint8Array
}

const LABEL_NAME = 'app.kubernetes.io/name'

// A Flow routes to Outputs of its namespace; a ClusterFlow to ClusterOutputs.
export function outputKindFor(flowKind: FlowKind): OutputKind {
  return flowKind === 'ClusterFlow' ? 'ClusterOutput' : 'Output'
}

export function outputKindOf(tap: LogTap): OutputKind {
  return outputKindFor(tap.spec.flow.kind)
}

export function ownedLabels(tap: LogTap): Record<string, string> {
  return {
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_NAME]: MANAGED_BY,
    [LABEL_TAP]: tapLabelValue(tap.metadata.name ?? ''),
  }
}

export function tapOwnerReference(tap: LogTap): OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: tap.metadata.name ?? '',
    uid: tap.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  }
}

function outputSpec(tap: LogTap, loggingRef: string | undefined, c: OutputConfig): Record<string, unknown> {
  const ns = tap.metadata.namespace ?? ''
  const name = tap.metadata.name ?? ''
  const spec: Record<string, unknown> = {
    http: {
      endpoint: `${c.ingestBaseUrl.replace(/\/+$/, '')}${ingestPath(ns, name)}`,
      http_method: 'post',
      headers: { [INGEST_TOKEN_HEADER]: tapCredential(c.ingestKey, ns, name, tap.metadata.uid ?? '') },
      format: { type: 'json' },
      json_array: false,
      open_timeout: 2,
      read_timeout: 5,
      reuse_connections: true,
      // 503 is the relay's back-pressure answer; anything else non-2xx drops the chunk.
      retryable_response_codes: [503],
      buffer: {
        type: 'memory',
        tags: '[]',
        flush_mode: 'interval',
        flush_interval: '1s',
        chunk_limit_size: '1m',
        total_limit_size: '8m',
        overflow_action: 'drop_oldest_chunk',
        retry_forever: false,
        retry_max_times: 3,
        retry_timeout: '30s',
        retry_wait: '1s',
        retry_max_interval: '5s',
      },
    },
  }
  if (loggingRef) spec['loggingRef'] = loggingRef
  return spec
}

// The whole object as the controller applies it (server-side apply: only fields we own).
export function desiredOutput(tap: LogTap, loggingRef: string | undefined, c: OutputConfig): KObject {
  const kind = outputKindOf(tap)
  return {
    apiVersion: KINDS[kind].apiVersion,
    kind,
    metadata: {
      name: tapObjectName(tap.metadata.name ?? ''),
      namespace: tap.metadata.namespace,
      labels: ownedLabels(tap),
      ownerReferences: [tapOwnerReference(tap)],
      finalizers: [FINALIZER_OUTPUT],
    },
    spec: outputSpec(tap, loggingRef, c),
  }
}
