// -o pretty: `HH:MM:SS.mmm namespace/pod/container message`, one colour per pod (stable across
// runs), denied notices dimmed.
import { styleText } from 'node:util'
import { lookup } from '../../api/selection-eval.ts'
import { droppedNotice, sampledNotice } from '../relay-client.ts'
import type { OutputBatch } from './batch.ts'
import { logfmt, structuredLine } from './structured.ts'
import type { Printer, PrinterOptions } from './types.ts'

type Colour = Parameters<typeof styleText>[0]
const PALETTE: Colour[] = [
  'cyan',
  'green',
  'yellow',
  'blue',
  'magenta',
  'red',
  'cyanBright',
  'greenBright',
  'yellowBright',
  'blueBright',
  'magentaBright',
]

// FNV-1a: the same pod gets the same colour in every run.
export function podColour(pod: string): Colour {
  let h = 0x811c9dc5
  for (let i = 0; i < pod.length; i++) {
    h ^= pod.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return PALETTE[h % PALETTE.length]!
}

const TIME_KEYS = ['time', '@timestamp', 'timestamp', 'ts']
const MESSAGE_KEYS = ['message', 'log', 'msg']

// Consecutive records mostly carry (or arrive at) the same time: the last answer is kept.
let lastTime: unknown
let lastText = ''

export function formatTime(value: unknown): string {
  if (value === lastTime) return lastText
  const text = timeText(value)
  lastTime = value
  lastText = text
  return text
}

function timeText(value: unknown): string {
  if (typeof value === 'number') {
    // epoch seconds (fluentd) or milliseconds
    const d = new Date(value < 1e12 ? value * 1000 : value)
    return Number.isNaN(d.getTime()) ? String(value) : d.toISOString().slice(11, 23)
  }
  if (typeof value === 'string') {
    const d = new Date(value)
    return Number.isNaN(d.getTime()) ? value : d.toISOString().slice(11, 23)
  }
  return '--:--:--.---'
}

export interface PrettyParts {
  time: string
  source: string // namespace/pod/container
  pod: string // namespace/pod, for the colour
  message: string
  level?: string // from a structured message (undefined with rawMessage)
}

// `arrived` (epoch ms): when the record reached us, shown when the record carries no time of its
// own (containerd records do not: fluent-bit's cri parser consumes it as the event time).
// A message that is a JSON object becomes its level, message and key=value fields, unless
// `rawMessage`.
export function prettyParts(
  record: unknown,
  fields?: string[][],
  arrived?: number,
  rawMessage = false,
): PrettyParts {
  const r =
    typeof record === 'object' && record !== null && !Array.isArray(record)
      ? (record as Record<string, unknown>)
      : {}
  const k = (r.kubernetes ?? {}) as Record<string, unknown>
  const ns = str(k.namespace_name) ?? '-'
  const pod = str(k.pod_name) ?? '-'
  const container = str(k.container_name)
  let own: unknown
  for (const key of TIME_KEYS) {
    own = r[key]
    if (own !== undefined) break
  }
  const time = formatTime(own ?? arrived)
  let message: string
  let level: string | undefined
  if (fields) {
    message = fields.map((p) => `${p.join('.')}=${show(lookup(record, p))}`).join(' ')
  } else if (record !== r) {
    message = JSON.stringify(record)
  } else {
    const key = MESSAGE_KEYS.find((m) => typeof r[m] === 'string')
    if (key) {
      message = (r[key] as string).replace(/\r?\n$/, '')
      const line = rawMessage ? undefined : structuredLine(message)
      if (line) {
        level = line.level
        message = [line.message, line.fields.length ? logfmt(line.fields) : undefined]
          .filter((x) => x !== undefined)
          .join(' ')
      }
    } else {
      const { kubernetes: _k, ...rest } = r
      message = JSON.stringify(rest)
    }
  }
  const source = `${ns}/${pod}${container ? `/${container}` : ''}`
  return { time, source, pod: `${ns}/${pod}`, message, ...(level !== undefined ? { level } : {}) }
}

// Each record is decoded once and parsed once.
export function prettyPrinter(out: OutputBatch, o: PrinterOptions): Printer {
  const style = (format: Colour, text: string) =>
    o.color ? styleText(format, text, { validateStream: false }) : text
  return {
    record(_seq, bytes) {
      const p = prettyParts(JSON.parse(bytes.toString()), o.fields, Date.now(), o.rawMessage)
      const level = p.level === undefined ? '' : `${style(levelColour(p.level), p.level.toUpperCase())} `
      out.text(`${style('gray', p.time)} ${style(podColour(p.pod), p.source)} ${level}${p.message}\n`)
      return true
    },
    message(msg, _frame, replica) {
      if (msg.type === 'denied') {
        const times = msg.count > 1 ? ` (${msg.count} records)` : ''
        out.text(`${style('dim', `! ${msg.message}${times}`)}\n`)
      } else if (msg.type === 'dropped') {
        const from = replica ? `replica ${replica}: ` : ''
        out.text(`${style('dim', `! ${from}${droppedNotice(msg)}`)}\n`)
      } else if (msg.type === 'sampled') {
        const from = replica ? `replica ${replica}: ` : ''
        out.text(`${style('dim', `~ ${from}${sampledNotice(msg)}`)}\n`)
      }
    },
  }
}

// Red for errors, yellow for warnings, green for info, grey for debug and trace.
function levelColour(level: string): Colour {
  const l = level.toLowerCase()
  if (/^(err|error|fatal|crit|critical|panic|emerg|alert|[0-3])$/.test(l)) return 'red'
  if (/^(warn|warning|4)$/.test(l)) return 'yellow'
  if (/^(info|notice|[56])$/.test(l)) return 'green'
  return 'gray'
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

function show(v: unknown): string {
  if (v === undefined) return '-'
  if (typeof v !== 'string') return JSON.stringify(v)
  const line = v.replace(/\r?\n$/, '')
  return /[\r\n]/.test(line) ? JSON.stringify(line) : line // one record, one line
}
