// -o logfmt: one logfmt line per record: time, pod, container, then the message's level, msg and
// fields when it is a JSON object (else msg=the message), or the --fields as key=value.
import { lookup } from '../../api/selection-eval.ts'
import type { OutputBatch } from './batch.ts'
import { logfmt, structuredLine } from './structured.ts'
import type { Printer, PrinterOptions } from './types.ts'

const MESSAGE_KEYS = ['message', 'log', 'msg']
const TIME_KEYS = ['time', '@timestamp', 'timestamp', 'ts']

function logfmtLine(record: unknown, o: PrinterOptions): string {
  const r = typeof record === 'object' && record !== null ? (record as Record<string, unknown>) : {}
  const k = (typeof r.kubernetes === 'object' && r.kubernetes !== null ? r.kubernetes : {}) as Record<
    string,
    unknown
  >
  const pairs: [string, unknown][] = []
  const time = TIME_KEYS.find((t) => r[t] !== undefined)
  if (time) pairs.push(['time', r[time]])
  if (k.namespace_name !== undefined) pairs.push(['namespace', k.namespace_name])
  if (k.pod_name !== undefined) pairs.push(['pod', k.pod_name])
  if (k.container_name !== undefined) pairs.push(['container', k.container_name])
  if (o.fields) {
    for (const p of o.fields) {
      const v = lookup(record, p)
      if (v !== undefined) pairs.push([p.join('.'), v])
    }
    return logfmt(pairs)
  }
  const key = MESSAGE_KEYS.find((m) => typeof r[m] === 'string')
  const text = key ? (r[key] as string).replace(/\r?\n$/, '') : undefined
  const line = text === undefined || o.rawMessage ? undefined : structuredLine(text)
  if (line) {
    if (line.level !== undefined) pairs.push(['level', line.level])
    if (line.message !== undefined) pairs.push(['msg', line.message])
    pairs.push(...line.fields)
  } else if (text !== undefined) pairs.push(['msg', text])
  return logfmt(pairs)
}

export function logfmtPrinter(out: OutputBatch, o: PrinterOptions): Printer {
  return {
    record(_seq, bytes) {
      out.text(`${logfmtLine(JSON.parse(bytes.toString()), o)}\n`)
      return true
    },
    message(msg) {
      if (msg.type === 'denied')
        out.text(
          `${logfmt([
            ['error', msg.message],
            ['count', msg.count],
          ])}\n`,
        )
    },
  }
}
