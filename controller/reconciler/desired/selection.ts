// The SelectionValid condition: does spec.selection parse (the CRD schema checks its shape and
// sizes; the expression language needs the parser the relay uses). An invalid selection keeps
// the tap from being Ready: the relay refuses its streams.
import { Conditions, type LogTap } from '../../../api/logtap.ts'
import { describeSelection, parseSelection, SelectionError } from '../../../api/selection.ts'
import type { ConditionInput } from './conditions.ts'

export interface TapSelectionVerdict {
  condition: ConditionInput
  text?: string // what the selection does, for status.selection (kubectl get -o wide)
}

// undefined when the tap has no selection.
export function tapSelection(tap: LogTap): TapSelectionVerdict | undefined {
  const spec = tap.spec.selection
  if (spec === undefined) return undefined
  try {
    const text = describeSelection(parseSelection(spec))
    return {
      condition: { type: Conditions.SelectionValid, status: 'True', reason: 'Valid', message: text },
      text,
    }
  } catch (err) {
    if (!(err instanceof SelectionError)) throw err
    const message = err.describe((p) => (p ? `spec.selection.${p}` : 'spec.selection'))
    return {
      condition: { type: Conditions.SelectionValid, status: 'False', reason: 'InvalidSelection', message },
    }
  }
}
