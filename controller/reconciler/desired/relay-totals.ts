// The LogTap's relay counters: each relay replica writes its own entry of status.relays; the
// leading controller sums them into the printed columns (status.listeners, recordsReceived,
// lastRecordTime) and removes the entries of replicas that are gone. Pure: what to write, from
// the tap's status and the replicas that exist.
import type { LogTap } from '../../../api/logtap.ts'
import type { JsonPatchOp } from '../../kube/objects.ts'

type Status = NonNullable<LogTap['status']>
type RelayEntry = NonNullable<Status['relays']>[number]

export interface RelayTotals {
  listeners: number
  recordsReceived: number
  lastRecordTime?: string
}

// `live`: the replicas that exist (undefined: not known, every entry counts and none is pruned).
// Listeners count only on live replicas (a dead replica's listeners are gone); records count on
// every entry still there, so the total does not drop the moment a replica dies.
export function relayTotals(status: LogTap['status'], live: ReadonlySet<string> | undefined): RelayTotals {
  let listeners = 0
  let recordsReceived = 0
  let lastRecordTime: string | undefined
  for (const e of status?.relays ?? []) {
    if (!live || live.has(e.name)) listeners += e.listeners
    recordsReceived += e.recordsReceived
    if (e.lastRecordTime && (!lastRecordTime || Date.parse(e.lastRecordTime) > Date.parse(lastRecordTime)))
      lastRecordTime = e.lastRecordTime
  }
  return { listeners, recordsReceived, ...(lastRecordTime ? { lastRecordTime } : {}) }
}

// Whether the printed totals already say `t` (a tap without any entry has nothing to sum).
export function totalsCurrent(status: LogTap['status'], t: RelayTotals): boolean {
  if (!status?.relays?.length) return true
  return (
    status.listeners === t.listeners &&
    status.recordsReceived === t.recordsReceived &&
    status.lastRecordTime === t.lastRecordTime
  )
}

// The JSON patch that removes the entries of `gone` replicas, each guarded by a test of its name
// (the list may have changed since it was read: then the patch fails and is built again), from
// the last index down so earlier indexes stay valid. null: nothing to remove.
export function pruneRelays(status: LogTap['status'], gone: ReadonlySet<string>): JsonPatchOp[] | null {
  const ops: JsonPatchOp[] = []
  const relays: RelayEntry[] = status?.relays ?? []
  for (let i = relays.length - 1; i >= 0; i--) {
    const name = relays[i]!.name
    if (!gone.has(name)) continue
    ops.push({ op: 'test', path: `/status/relays/${i}/name`, value: name })
    ops.push({ op: 'remove', path: `/status/relays/${i}` })
  }
  return ops.length ? ops : null
}
