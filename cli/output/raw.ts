// -o raw: the original's format. One record per line, exactly the bytes fluentd posted; a denied
// record becomes the original's error object (properly JSON-encoded this time).
import { recordBytes } from '../relay-client.ts'
import { project, selected } from './filter.ts'
import type { Printer, PrinterOptions, Sink } from './types.ts'

const NL = Buffer.from('\n')

export function rawPrinter(out: Sink, o: PrinterOptions): Printer {
  return (msg, frame) => {
    if (msg.type === 'record') {
      const bytes = recordBytes(frame)
      if (!selected(bytes.toString(), o)) return false
      if (o.fields) out.write(`${JSON.stringify(project(msg.record, o.fields))}\n`)
      else out.write(Buffer.concat([bytes, NL]))
      return true
    }
    if (msg.type === 'denied') {
      const line = JSON.stringify({ error: msg.message })
      if (selected(line, o)) out.write(`${line}\n`)
    }
    return false
  }
}
