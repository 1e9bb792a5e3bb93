// Which LogTap an object belongs to: written on everything the controller makes, and read back.
// The labels and annotation say so (tap name and uid), and they survive what owner references do
// not: the garbage collector strips the owner references of a tap deleted with
// `--cascade=orphan`, and the objects must still be recognised and released in the safe order.
// Objects made before the labels carried the uid are recognised by their controlling owner
// reference.
import { KINDS } from '../../../api/kinds.ts'
import {
  ANNOTATION_TAP_NAME,
  API_VERSION,
  KIND,
  LABEL_MANAGED_BY,
  LABEL_TAP,
  LABEL_TAP_UID,
  type LogTap,
  MANAGED_BY,
  type ObjectMeta,
  type OwnerReference,
} from '../../../api/logtap.ts'
import { tapLabelValue } from './naming.ts'

const LABEL_NAME = 'app.kubernetes.io/name'

function ownedLabels(tap: LogTap): Record<string, string> {
  return {
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_NAME]: MANAGED_BY,
    [LABEL_TAP]: tapLabelValue(tap.metadata.name ?? ''),
    [LABEL_TAP_UID]: tap.metadata.uid ?? '',
  }
}

// The metadata every object a tap makes carries: its labels and annotation (which tap owns it)
// and the tap as controlling owner (for the garbage collector and kubectl).
export function ownedMetadata(tap: LogTap, name: string): ObjectMeta {
  return {
    name,
    namespace: tap.metadata.namespace,
    labels: ownedLabels(tap),
    annotations: { [ANNOTATION_TAP_NAME]: tap.metadata.name ?? '' },
    ownerReferences: [tapOwnerReference(tap)],
  }
}

function tapOwnerReference(tap: LogTap): OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: tap.metadata.name ?? '',
    uid: tap.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  }
}

interface TapIdentity {
  name: string
  uid: string
}

function controllingTap(o: { metadata: ObjectMeta }): OwnerReference | undefined {
  return (o.metadata.ownerReferences ?? []).find(
    (r) =>
      r.kind === KINDS.LogTap.kind &&
      r.apiVersion.startsWith(`${KINDS.LogTap.group}/`) &&
      r.controller === true,
  )
}

// The tap incarnation (name, uid) that owns `o`, or undefined when it is not ours.
export function owningTap(o: { metadata: ObjectMeta }): TapIdentity | undefined {
  const labels = o.metadata.labels ?? {}
  const uid = labels[LABEL_TAP_UID]
  if (labels[LABEL_MANAGED_BY] === MANAGED_BY && uid) {
    const name = o.metadata.annotations?.[ANNOTATION_TAP_NAME] ?? labels[LABEL_TAP]
    if (name && labels[LABEL_TAP] === tapLabelValue(name)) return { name, uid }
  }
  const ref = controllingTap(o)
  return ref ? { name: ref.name, uid: ref.uid } : undefined
}

// The uid of the incarnation of tap `tapName` that owns `o`; undefined when no tap of that name does.
export function owningTapUid(o: { metadata: ObjectMeta }, tapName: string): string | undefined {
  const owner = owningTap(o)
  return owner?.name === tapName ? owner.uid : undefined
}
