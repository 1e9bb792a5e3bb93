// What the relay needs to know about LogTaps, without depending on how it is learned
// (an informer in production, a plain map in unit tests).
import type { Selection } from '../../api/selection.ts'

export interface TapInfo {
  namespace: string
  name: string
  uid: string
  replay: number // spec.replay: records kept for clients that connect or reconnect
  deleting: boolean // deletionTimestamp is set
  selection?: TapSelection // spec.selection, when it has one
}

// A LogTap's own selection, parsed; `key` changes when the spec's selection does.
export type TapSelection =
  | { key: string; selection: Selection; error?: undefined }
  | { key: string; error: string; selection?: undefined } // invalid: streams are refused with it

export interface TapDirectory {
  get(namespace: string, name: string): TapInfo | undefined
  // Called when a tap disappears (deleted) so the relay can close its streams and free its buffers.
  onRemoved(listener: (namespace: string, name: string) => void): void
  // True once the first list has completed; /readyz reports it.
  synced(): boolean
}
