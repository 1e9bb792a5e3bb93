// -o json: every envelope as received (sequence numbers included), one per line.
import { recordBytes } from '../relay-client.ts'
import { project, selected } from './filter.ts'
import type { Printer, PrinterOptions, Sink } from './types.ts'

export function jsonPrinter(out: Sink, o: PrinterOptions): Printer {
  return (msg, frame) => {
    if (msg.type === 'record') {
      if (!selected(recordBytes(frame).toString(), o)) return false
      if (o.fields) out.write(`${JSON.stringify({ ...msg, record: project(msg.record, o.fields) })}\n`)
      else out.write(Buffer.concat([frame, Buffer.from('\n')]))
      return true
    }
    if (msg.type === 'denied' && !selected(msg.message, o)) return false
    out.write(Buffer.concat([frame, Buffer.from('\n')]))
    return false
  }
}
