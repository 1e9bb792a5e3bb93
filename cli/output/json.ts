// -o json: every envelope as received (sequence numbers included), one per line, copied as it
// came (the relay has already applied the selection).
import type { OutputBatch } from './batch.ts'
import type { Printer } from './types.ts'

export function jsonPrinter(out: OutputBatch): Printer {
  return {
    record(_seq, _bytes, frame) {
      out.line(frame)
      return true
    },
    message(_msg, frame) {
      out.line(frame)
    },
  }
}
