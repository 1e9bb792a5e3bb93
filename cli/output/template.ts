// -o template (--template): each record's envelope {type, seq, record} through a template for
// scripts: {{seq}}, {{record.kubernetes.pod_name}}, {{.record.message}} (a leading dot is allowed,
// as in kubectl's go-templates); a string is printed as is, anything else as JSON, a missing
// path as nothing. \t and \n in the template are a tab and a newline; a newline ends each record.
import { lookup } from '../../api/selection-eval.ts'
import type { OutputBatch } from './batch.ts'
import type { Printer } from './types.ts'

type Part = string | readonly string[] // text, or a path

const PLACEHOLDER = /\{\{\s*\.?([^{}]*?)\s*\}\}/g

// The template's parts, or an error message (for a usage error).
export function compileTemplate(text: string): Part[] | string {
  const parts: Part[] = []
  let at = 0
  const escapes = (s: string) => s.replace(/\\t/g, '\t').replace(/\\n/g, '\n')
  for (const m of text.matchAll(PLACEHOLDER)) {
    if (m.index > at) parts.push(escapes(text.slice(at, m.index)))
    const path = m[1]!
    if (!/^[A-Za-z0-9_@$-]+(\.[A-Za-z0-9_@$/-]+)*$/.test(path))
      return `invalid placeholder {{${path}}} (e.g. {{seq}}, {{record.kubernetes.pod_name}})`
    parts.push(path.split('.'))
    at = m.index + m[0].length
  }
  const rest = text.slice(at)
  if (rest.includes('{{')) return 'unterminated {{ in the template'
  if (rest) parts.push(escapes(rest))
  return parts
}

function renderTemplate(parts: readonly Part[], envelope: unknown): string {
  let s = ''
  for (const p of parts) {
    if (typeof p === 'string') s += p
    else {
      const v = lookup(envelope, p)
      if (v !== undefined) s += typeof v === 'string' ? v : JSON.stringify(v)
    }
  }
  return s
}

export function templatePrinter(out: OutputBatch, template: string): Printer {
  const parts = compileTemplate(template)
  if (typeof parts === 'string') throw new Error(parts) // checked with the options
  return {
    record(seq, bytes) {
      out.text(`${renderTemplate(parts, { type: 'record', seq, record: JSON.parse(bytes.toString()) })}\n`)
      return true
    },
    message() {},
  }
}
