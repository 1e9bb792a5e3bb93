// -o json: every envelope as received (sequence numbers included), one per line, copied as it
// came (the relay has already applied the selection). From a relay running as replicas, each
// envelope starts with the replica it came from, `{"replica":"<name>",…`: sequence numbers are per
// replica.
import type { OutputBatch } from './batch.ts'
import type { Printer } from './types.ts'

const LBRACE = 0x7b

export function jsonPrinter(out: OutputBatch): Printer {
  // The frame (a JSON object) as one line, with the replica as its first member when there is one.
  const envelope = (frame: Buffer, replica: string | undefined): void => {
    if (replica === undefined || frame[0] !== LBRACE) {
      out.line(frame)
      return
    }
    out.text(`{"replica":${JSON.stringify(replica)},`)
    out.line(frame.subarray(1))
  }
  return {
    record(_seq, _bytes, frame, replica) {
      envelope(frame, replica)
      return true
    },
    message(_msg, frame, replica) {
      envelope(frame, replica)
    },
  }
}
