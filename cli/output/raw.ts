// -o raw: the original's format. One record per line, exactly the bytes fluentd posted, moved
// from the frame to the output without decoding unless a filter needs the text; a denied record
// becomes the original's error object (properly JSON-encoded this time).
import type { OutputBatch } from './batch.ts'
import { project, selected } from './filter.ts'
import type { Printer, PrinterOptions } from './types.ts'

export function rawPrinter(out: OutputBatch, o: PrinterOptions): Printer {
  const filtered = o.grep !== undefined || o.exclude !== undefined
  return {
    record(_seq, bytes) {
      if (!filtered && !o.fields) {
        out.line(bytes)
        return true
      }
      const text = bytes.toString()
      if (!selected(text, o)) return false
      if (o.fields) out.text(`${JSON.stringify(project(JSON.parse(text), o.fields))}\n`)
      else out.line(bytes)
      return true
    },
    message(msg) {
      if (msg.type !== 'denied') return
      const line = JSON.stringify({ error: msg.message })
      if (selected(line, o)) out.text(`${line}\n`)
    },
  }
}
