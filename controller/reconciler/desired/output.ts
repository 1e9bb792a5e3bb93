// The output that feeds a LogTap, of the tapped flow's aggregator: an Output (Flow tap) or
// ClusterOutput (ClusterFlow tap) for fluentd, a SyslogNGOutput or SyslogNGClusterOutput for
// syslog-ng (syslog-ng-output.ts). Either posts NDJSON to the relay's ingest URL for this tap,
// authenticated with the tap's credential from its Secret (credential-secret.ts; the output names
// the Secret, never holds the credential).
//
// The fluentd Output's buffer is built so it can never hurt the tapped flow, which shares fluentd's `copy` with it:
// - a small memory buffer whose oldest chunk is dropped when full: the default overflow action
//   raises, and a raising `<store>` makes the stores after it miss those records;
// - no chunk keys (`tags: "[]"`) and a 1 s interval flush: with logging-operator's default keys
//   (tag, time) fluentd flushes once per 10-minute timekey plus a minute's wait;
// - bounded retries (logging-operator otherwise renders `retry_forever true`), so a relay that is
//   gone cannot hold buffer space forever;
// - nothing on disk, ever: out_http treats a non-2xx answer not in retryable_response_codes as an
//   unrecoverable error by default, and fluentd then writes the chunk to <root_dir>/backup/ on the
//   buffer volume, where nothing deletes it. The relay refuses what it will never take (403 wrong
//   credential, 404 tap gone, 413 too large, 415 …), and after a tap's deletion fluentd posts to it
//   until logging-operator's reload, a minute or more: so such answers only log an error and drop
//   the chunk, and no chunk is ever backed up.

import { AGGREGATORS, aggregatorOf, isClusterKind, KINDS } from '../../../api/kinds.ts'
import {
  FINALIZER_OUTPUT,
  type FlowKind,
  ingestPath,
  type LogTap,
  type OutputKind,
} from '../../../api/logtap.ts'
import type { KObject } from '../../kube/objects.ts'
import { CREDENTIAL_KEYS } from './credential-secret.ts'
import { tapObjectName } from './naming.ts'
import { ownedMetadata } from './ownership.ts'
import { syslogNgOutputSpec } from './syslog-ng-output.ts'

export interface OutputConfig {
  ingestBaseUrl: string // e.g. http://log-socket.log-socket.svc:10000
  ingestKey: Uint8Array
}

// A Flow routes to Outputs of its namespace; a ClusterFlow to ClusterOutputs (and so for syslog-ng).
export function outputKindFor(flowKind: FlowKind): OutputKind {
  const kinds = AGGREGATORS[aggregatorOf(flowKind) ?? 'fluentd']
  return isClusterKind(flowKind) ? kinds.clusterOutput : kinds.output
}

// The tap's ingest URL on the relay.
function ingestUrl(tap: LogTap, c: OutputConfig): string {
  const { namespace = '', name = '' } = tap.metadata
  return `${c.ingestBaseUrl.replace(/\/+$/, '')}${ingestPath(namespace, name)}`
}

export function outputKindOf(tap: LogTap): OutputKind {
  return outputKindFor(tap.spec.flow.kind)
}

function fluentdOutputSpec(tap: LogTap, c: OutputConfig): Record<string, unknown> {
  const name = tap.metadata.name ?? ''
  const secret = tapObjectName(name)
  const fromSecret = (key: string) => ({ valueFrom: { secretKeyRef: { name: secret, key } } })
  return {
    http: {
      endpoint: ingestUrl(tap, c),
      http_method: 'post',
      auth: {
        username: fromSecret(CREDENTIAL_KEYS.username),
        password: fromSecret(CREDENTIAL_KEYS.password),
      },
      format: { type: 'json' },
      json_array: false,
      open_timeout: 2,
      read_timeout: 5,
      reuse_connections: true,
      // 503 is the relay's back-pressure answer: retried, within the buffer's bounds. Any other
      // non-2xx is logged and the chunk dropped (not an unrecoverable error: no backup file).
      retryable_response_codes: [503],
      error_response_as_unrecoverable: false,
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
        // Whatever else fluentd finds unrecoverable is thrown away too, never written to disk.
        disable_chunk_backup: true,
      },
    },
  }
}

function outputSpec(tap: LogTap, loggingRef: string | undefined, c: OutputConfig): Record<string, unknown> {
  const spec =
    aggregatorOf(tap.spec.flow.kind) === 'syslogNG'
      ? syslogNgOutputSpec({
          url: ingestUrl(tap, c),
          user: tap.metadata.name ?? '',
          secret: tapObjectName(tap.metadata.name ?? ''),
        })
      : fluentdOutputSpec(tap, c)
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
      ...ownedMetadata(tap, tapObjectName(tap.metadata.name ?? '')),
      finalizers: [FINALIZER_OUTPUT],
    },
    spec: outputSpec(tap, loggingRef, c),
  }
}
