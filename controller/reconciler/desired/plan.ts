// What the controller does against the API, as data: the pure core returns a Plan, the executor
// (../actions.ts) runs it.
import type { OutputKind } from '../../../api/logtap.ts'
import type { KObject, ObjRef } from '../../kube/objects.ts'
import type { RefField } from './flows.ts'

export type Action =
  | { type: 'AddTapFinalizer' }
  | { type: 'ApplyOutput'; object: KObject; existingUid?: string }
  // The tap's credential Secret.
  | { type: 'ApplySecret'; object: KObject; existingUid?: string }
  // A Secret of a previous tap of this name whose Output is gone (exactly that incarnation).
  | { type: 'DeleteSecret'; namespace: string; name: string; uid: string }
  // `observed`: the flow as the caches had it (the patch's first try).
  | { type: 'Attach'; flow: ObjRef; field: RefField; output: ObjRef; observed?: KObject }
  // `omittedFilters`: the source's filters the copy leaves out (told in the step's Event).
  | {
      type: 'ApplyMirrorFlow'
      object: KObject
      existingUid?: string
      output: ObjRef
      omittedFilters: string[]
    }
  | { type: 'Detach'; flow: ObjRef; fields: RefField[]; output: ObjRef }
  | { type: 'DeleteMirrorFlow'; flow: ObjRef }
  | { type: 'ReleaseOutput'; output: ObjRef }
  | { type: 'DeleteOutput'; output: ObjRef }
  | { type: 'RemoveTapFinalizer' }
  | { type: 'DeleteTap'; reason: string; message: string }
  // The sweep's repair: a ref of ours to an output that exists in none of the namespaces it could
  // be in (checked live first).
  | {
      type: 'RemoveDanglingRef'
      flow: ObjRef
      field: RefField
      output: { kind: OutputKind; name: string; namespaces: string[] }
    }

// A plan is a list of stages run one after the other. The actions of one stage do not depend on
// each other and run together; the next stage starts only when all of them succeeded.
type Stage = readonly Action[]
export type Plan = readonly Stage[]

// Each action a stage of its own: strictly one after the other.
export function oneByOne(actions: readonly Action[]): Plan {
  return actions.map((a) => [a])
}

// A stage of the actions that are wanted (none: no stage).
export function together(...actions: (Action | undefined)[]): Plan {
  const stage = actions.filter((a): a is Action => a !== undefined)
  return stage.length > 0 ? [stage] : []
}
