// -o raw: the original's format. One record per line, exactly the bytes the relay sent (those
// fluentd posted, or the relay's projection for --fields), moved from the frame to the output
// without decoding; a denied record becomes the original's error object (properly JSON-encoded).
import type { OutputBatch } from './batch.ts'
import type { Printer } from './types.ts'

export function rawPrinter(out: OutputBatch): Printer {
  return {
    record(_seq, bytes) {
      out.line(bytes)
      return true
    },
    message(msg) {
      if (msg.type !== 'denied') return
      out.text(`${JSON.stringify({ error: msg.message })}\n`)
    },
  }
}
