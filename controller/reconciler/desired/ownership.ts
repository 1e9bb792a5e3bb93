// Which LogTap owns an object: the controlling owner reference the controller writes on every
// Output and mirror flow it makes (never on a user's object).
import { KINDS } from '../../../api/kinds.ts'
import type { ObjectMeta, OwnerReference } from '../../../api/logtap.ts'

export function controllingTap(o: { metadata: ObjectMeta }): OwnerReference | undefined {
  return (o.metadata.ownerReferences ?? []).find(
    (r) =>
      r.kind === KINDS.LogTap.kind &&
      r.apiVersion.startsWith(`${KINDS.LogTap.group}/`) &&
      r.controller === true,
  )
}

// The uid of the incarnation of tap `tapName` that owns `o`; undefined when no tap of that name does.
export function owningTapUid(o: { metadata: ObjectMeta }, tapName: string): string | undefined {
  const owner = controllingTap(o)
  return owner?.name === tapName ? owner.uid : undefined
}
