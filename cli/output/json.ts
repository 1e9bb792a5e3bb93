// -o json: every envelope as received (sequence numbers included), one per line. A record's
// frame is copied as it came; its record is decoded only for --grep/--exclude and parsed only
// for --fields.
import type { OutputBatch } from './batch.ts'
import { project, selected } from './filter.ts'
import type { Printer, PrinterOptions } from './types.ts'

export function jsonPrinter(out: OutputBatch, o: PrinterOptions): Printer {
  const filtered = o.grep !== undefined || o.exclude !== undefined
  return {
    record(seq, bytes, frame) {
      if (!filtered && !o.fields) {
        out.line(frame)
        return true
      }
      const text = bytes.toString()
      if (!selected(text, o)) return false
      if (o.fields) {
        const record = JSON.stringify(project(JSON.parse(text), o.fields))
        out.text(`{"type":"record","seq":${seq},"record":${record}}\n`)
      } else out.line(frame)
      return true
    },
    message(msg, frame) {
      if (msg.type === 'denied' && !selected(msg.message, o)) return
      out.line(frame)
    },
  }
}
