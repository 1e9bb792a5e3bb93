// The live LogTap being reconciled, with what follows from its spec (kinds, the names of the objects
// it owns), computed once per decision.
import type { FlowKind, LogTap, OutputKind } from '../../../api/logtap.ts'
import { tapObjectName } from './naming.ts'
import { outputKindOf } from './output.ts'

export interface TapContext {
  tap: LogTap
  namespace: string
  name: string
  uid: string
  flowKind: FlowKind
  outputKind: OutputKind
  objectName: string // its Output's name, and in mirror mode its flow copy's
  mirror: boolean
}

export function tapContext(tap: LogTap, namespace: string, name: string): TapContext {
  return {
    tap,
    namespace,
    name,
    uid: tap.metadata.uid ?? '',
    flowKind: tap.spec.flow.kind,
    outputKind: outputKindOf(tap),
    objectName: tapObjectName(tap.metadata.name ?? ''),
    mirror: tap.spec.mode === 'mirror',
  }
}
