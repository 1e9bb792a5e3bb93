// Structured application logs: a record's `message`/`log` that is itself a JSON object (what most
// services write) is read as level, message and the other fields, for pretty and logfmt output.
const LEVEL_KEYS = ['level', 'severity', 'lvl', 'loglevel', 'log.level']
const MSG_KEYS = ['msg', 'message', 'event', 'text']

export interface StructuredLine {
  level: string | undefined
  message: string | undefined
  fields: [string, unknown][] // the rest, in the line's order
}

// The line's parts, or undefined when it is not a JSON object.
export function structuredLine(text: string): StructuredLine | undefined {
  const s = text.trim()
  if (s[0] !== '{' || s.at(-1) !== '}') return undefined
  let v: unknown
  try {
    v = JSON.parse(s)
  } catch {
    return undefined
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined
  const o = v as Record<string, unknown>
  const levelKey = LEVEL_KEYS.find((k) => typeof o[k] === 'string' || typeof o[k] === 'number')
  const msgKey = MSG_KEYS.find((k) => typeof o[k] === 'string')
  return {
    level: levelKey === undefined ? undefined : String(o[levelKey]),
    message: msgKey === undefined ? undefined : (o[msgKey] as string),
    fields: Object.entries(o).filter(([k]) => k !== levelKey && k !== msgKey),
  }
}

// logfmt: key=value, the value quoted when it holds a space, a quote, = or is empty; objects and
// arrays as JSON (quoted).
function logfmtValue(v: unknown): string {
  const s = typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v)
  return s === '' || /[\s"=\\]/.test(s) || /[^\x20-\x7e\u00a0-\uffff]/.test(s) ? JSON.stringify(s) : s
}

export function logfmt(pairs: readonly (readonly [string, unknown])[]): string {
  return pairs.map(([k, v]) => `${k}=${logfmtValue(v)}`).join(' ')
}
