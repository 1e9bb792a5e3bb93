// The Secret that holds a tap's ingest credential, which the tap's Output references through the
// http output's `auth` (logging-operator renders it into fluentd's own configuration Secret, which
// only the operator and fluentd read). Readers of the Output see the Secret's name, never the
// credential.
//
// Owned twice: by the tap (controlling owner) and by the Output that uses it. The garbage
// collector deletes an object only once every owner is gone, so the Secret lives exactly while the
// tap or its Output does: it outlives every flow reference to the Output (logging-operator cannot
// render a referenced Output whose Secret is missing, and would stop rendering the whole Logging),
// and needs no finalizer, no watch and no delete of ours. It is created a stage before the Output,
// owned by the tap alone until the Output has a uid (the next reconcile adds it): the operator
// renders every Output it sees and fails a Logging's whole render while a named Secret is missing. The annotation
// logging.banzaicloud.io/<loggingRef> makes logging-operator re-render when it changes (a new
// ingest key, say).
import { tapCredential } from '../../../api/credential.ts'
import { KINDS } from '../../../api/kinds.ts'
import type { LogTap, OutputKind } from '../../../api/logtap.ts'
import { jsonEqual, type KObject } from '../../kube/objects.ts'
import { tapObjectName } from './naming.ts'
import { ownedMetadata } from './ownership.ts'

export const CREDENTIAL_KEYS = { username: 'username', password: 'password' } as const

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')

// What logging-operator's Secret watch looks for; the empty loggingRef is spelled `default`.
function operatorWatchAnnotation(loggingRef: string | undefined): string {
  return `logging.banzaicloud.io/${loggingRef || 'default'}`
}

export function desiredCredentialSecret(
  tap: LogTap,
  loggingRef: string | undefined,
  output: { kind: OutputKind; name: string; uid: string } | undefined, // undefined: not created yet
  ingestKey: Uint8Array,
): KObject {
  const { namespace = '', name = '', uid = '' } = tap.metadata
  const meta = ownedMetadata(tap, tapObjectName(name))
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      ...meta,
      annotations: { ...meta.annotations, [operatorWatchAnnotation(loggingRef)]: 'watched' },
      ownerReferences: [
        ...(meta.ownerReferences ?? []),
        ...(output
          ? [
              {
                apiVersion: KINDS[output.kind].apiVersion,
                kind: output.kind,
                name: output.name,
                uid: output.uid,
              },
            ]
          : []),
      ],
    },
    type: 'Opaque',
    data: {
      [CREDENTIAL_KEYS.username]: b64(name),
      [CREDENTIAL_KEYS.password]: b64(tapCredential(ingestKey, namespace, name, uid)),
    },
  }
}

// `live` carries everything `want` says (other labels, annotations or owners may be there too).
export function secretAsWanted(live: KObject, want: KObject): boolean {
  const has = (a: Record<string, string> | undefined, b: Record<string, string> | undefined) =>
    Object.entries(b ?? {}).every(([k, v]) => a?.[k] === v)
  const owners = live.metadata.ownerReferences ?? []
  return (
    has(live.metadata.labels, want.metadata.labels) &&
    has(live.metadata.annotations, want.metadata.annotations) &&
    (want.metadata.ownerReferences ?? []).every((w) =>
      owners.some((o) => o.uid === w.uid && o.kind === w.kind),
    ) &&
    jsonEqual(live.data, want.data)
  )
}

// Does Secret `live` hold a password (the executor's check before anything routes to the Output)?
export function holdsCredential(live: KObject): boolean {
  const p = live.data?.[CREDENTIAL_KEYS.password]
  return typeof p === 'string' && p.length > 0
}
