// -o json: every envelope as received (sequence numbers included), one per line. A record's
// frame is copied as it came; its record is decoded only for --grep/--exclude and parsed only
// for --fields. From a relay running as replicas, each envelope starts with the replica it came
// from, `{"replica":"<name>",…`: sequence numbers are per replica.
import type { OutputBatch } from './batch.ts'
import { project, selected } from './filter.ts'
import type { Printer, PrinterOptions } from './types.ts'

const LBRACE = 0x7b

export function jsonPrinter(out: OutputBatch, o: PrinterOptions): Printer {
  const filtered = o.grep !== undefined || o.exclude !== undefined
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
    record(seq, bytes, frame, replica) {
      if (!filtered && !o.fields) {
        envelope(frame, replica)
        return true
      }
      const text = bytes.toString()
      if (!selected(text, o)) return false
      if (o.fields) {
        const record = JSON.stringify(project(JSON.parse(text), o.fields))
        const from = replica === undefined ? '' : `"replica":${JSON.stringify(replica)},`
        out.text(`{${from}"type":"record","seq":${seq},"record":${record}}\n`)
      } else envelope(frame, replica)
      return true
    },
    message(msg, frame, replica) {
      if (msg.type === 'denied' && !selected(msg.message, o)) return
      envelope(frame, replica)
    },
  }
}
