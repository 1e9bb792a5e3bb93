// What the relay reports to each LogTap's status (through a rate-limited writer in production:
// kube/status-writer.ts).

export interface TapCounters {
  listeners: number
  recordsReceived: number
  lastRecordTime?: string
}

export type StatusSink = (tap: { namespace: string; name: string; uid: string }, c: TapCounters) => void
