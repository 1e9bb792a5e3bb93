import type { StreamMessage } from '../../api/stream-protocol.ts'
import type { FilterOptions } from './filter.ts'

export interface Sink {
  write(chunk: string | Uint8Array): unknown
}

export interface PrinterOptions extends FilterOptions {
  color: boolean // pretty only: decided once from the TTY and NO_COLOR
}

// Prints one stream message; returns true when it printed a record (what --count counts).
export type Printer = (msg: StreamMessage, frame: Buffer) => boolean
