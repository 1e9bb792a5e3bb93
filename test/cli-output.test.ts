// Output modes: raw is byte-identical to what fluentd posted; pretty with and without colour; json
// envelopes; --grep/--exclude/--fields.
import t from 'tap'
import type { StreamMessage } from '../api/stream-protocol.ts'
import { recordBytes } from '../cli/frame.ts'
import { createPrinter, OutputBatch, type PrinterOptions, useColor } from '../cli/output/index.ts'
import { formatTime, podColour, prettyParts } from '../cli/output/pretty.ts'

// A record as fluentd's json formatter might write it: odd spacing, escapes, a number JSON.parse
// cannot keep exactly, non-ASCII text. None of it may change on the way to stdout.
const POSTED = [
  '{"log":"GET /healthz 200\\n","stream":"stdout","time":"2026-11-27T05:00:01.123456789Z","kubernetes":{"namespace_name":"shop","pod_name":"web-7d9f","container_name":"nginx","labels":{"app":"web"}}}',
  '{ "log" : "caf\\u00e9 \\/ naïve ✓", "big": 12345678901234567890, "kubernetes": {"namespace_name":"shop","pod_name":"api-1"} }',
  '{"message":"error: disk full","time":1764219601.5,"kubernetes":{"namespace_name":"ops","pod_name":"db-0","container_name":"pg"}}',
]

const ESC = String.fromCharCode(27)

// The relay splices the posted bytes in as the last member (controller/api/stream.ts).
function frameOf(seq: number, posted: string): [StreamMessage, Buffer] {
  const frame = Buffer.from(`{"type":"record","seq":${seq},"record":${posted}}`)
  return [JSON.parse(frame.toString()) as StreamMessage, frame]
}
function notice(msg: StreamMessage): [StreamMessage, Buffer] {
  return [msg, Buffer.from(JSON.stringify(msg))]
}
const denied = notice({
  type: 'denied',
  seq: 4,
  pod: 'secret/vault-0',
  count: 3,
  message: 'Permission denied to access vault-0 logs for system:serviceaccount:shop:viewer',
})
const dropped = notice({ type: 'dropped', count: 7, fromSeq: 5, toSeq: 11, reason: 'slow-consumer' })
const hello = notice({
  type: 'hello',
  tap: 'shop/t',
  epoch: 'e1',
  user: 'u',
  lastSeq: 3,
  replayFrom: 1,
  resumed: false,
})

function run(mode: 'raw' | 'pretty' | 'json', o: Partial<PrinterOptions> = {}) {
  const chunks: Buffer[] = []
  const out = new OutputBatch({ write: (c) => chunks.push(Buffer.from(c)) })
  const print = createPrinter(mode, out, { color: false, ...o })
  const counted = [hello, ...POSTED.map((p, i) => frameOf(i + 1, p)), denied, dropped].map(([m, f]) => {
    if (m.type === 'record') return print.record(m.seq, recordBytes(f), f)
    print.message(m, f)
    return false
  })
  void out.flush()
  return { out: Buffer.concat(chunks), counted: counted.filter(Boolean).length }
}

t.test('recordBytes returns the posted bytes exactly', async (t) => {
  for (const posted of POSTED) t.equal(recordBytes(frameOf(1, posted)[1]).toString(), posted)
  t.equal(recordBytes(Buffer.from('{"type":"record","seq":1,"record": {"a":1} }\n')).toString(), '{"a":1}')
})

t.test('raw: byte-identical records, denied as the original error object', async (t) => {
  const { out, counted } = run('raw')
  const expected = `${POSTED.join('\n')}\n{"error":"Permission denied to access vault-0 logs for system:serviceaccount:shop:viewer"}\n`
  t.ok(out.equals(Buffer.from(expected)), 'stdout is exactly the posted records, one per line')
  t.equal(counted, 3, 'only records count for --count')
})

t.test('json: the envelopes as received', async (t) => {
  const lines = run('json').out.toString().trimEnd().split('\n')
  t.equal(lines.length, 6)
  t.same(JSON.parse(lines[0]!), hello[0])
  t.equal(lines[2], `{"type":"record","seq":2,"record":${POSTED[1]}}`, 'records keep their bytes and seq')
  t.match(JSON.parse(lines[4]!), { type: 'denied', seq: 4, count: 3 })
  t.match(JSON.parse(lines[5]!), { type: 'dropped', count: 7 })
})

t.test('pretty without colour', async (t) => {
  const raw = run('pretty').out.toString()
  const lines = raw.split('\n')
  t.match(lines[1], /^\d\d:\d\d:\d\d\.\d\d\d shop\/api-1 /, 'a record without a time shows when it arrived')
  const text = [lines[0], lines[1]!.replace(/^\S+/, 'ARRIVED'), ...lines.slice(2)].join('\n')
  t.equal(
    text,
    [
      '05:00:01.123 shop/web-7d9f/nginx GET /healthz 200',
      'ARRIVED shop/api-1 café / naïve ✓',
      '05:00:01.500 ops/db-0/pg error: disk full',
      '! Permission denied to access vault-0 logs for system:serviceaccount:shop:viewer (3 records)',
      '! 7 records may be missing (slow-consumer, seq 5-11)',
      '',
    ].join('\n'),
  )
  t.notOk(text.includes(ESC), 'no escape codes')
})

t.test('pretty with colour: a stable colour per pod, notices dimmed', async (t) => {
  const text = run('pretty', { color: true }).out.toString()
  const lines = text.split('\n')
  const [time, source, ...rest] = lines[0]!.split(' ')
  t.equal(time, `${ESC}[90m05:00:01.123${ESC}[39m`, 'time in grey')
  t.match(source, new RegExp(`^${ESC}\\[\\d+mshop/web-7d9f/nginx${ESC}\\[39m$`), 'source in the pod colour')
  t.equal(rest.join(' '), 'GET /healthz 200', 'message as is')
  t.ok(lines[3]!.startsWith(`${ESC}[2m! Permission denied`), 'denied dimmed')
  t.ok(lines[4]!.startsWith(`${ESC}[2m! 7 records may be missing`), 'dropped dimmed')
  t.equal(podColour('shop/web-7d9f'), podColour('shop/web-7d9f'))
  const colours = new Set(['a/1', 'a/2', 'a/3', 'b/1', 'b/2', 'c/x', 'd/y', 'e/z'].map(podColour))
  t.ok(colours.size >= 4, 'different pods get different colours')
})

t.test('NO_COLOR and TTY decide colour', async (t) => {
  t.equal(useColor(true, {}), true)
  t.equal(useColor(false, {}), false)
  t.equal(useColor(true, { NO_COLOR: '1' }), false)
  t.equal(useColor(true, { NO_COLOR: '' }), true, 'an empty NO_COLOR does not count (no-color.org)')
  t.equal(useColor(true, { TERM: 'dumb' }), false)
})

t.test('--grep and --exclude on the record text', async (t) => {
  const grep = run('raw', { grep: /"namespace_name":"shop"/ })
  t.equal(grep.out.toString(), `${POSTED[0]}\n${POSTED[1]}\n`, 'the denied line does not match: left out')
  t.equal(grep.counted, 2)
  const exclude = run('raw', { exclude: /healthz|denied/i })
  t.equal(exclude.out.toString(), `${POSTED[1]}\n${POSTED[2]}\n`)
  t.equal(
    run('json', { grep: /disk/ })
      .out.toString()
      .split('\n')
      .filter((l) => l.includes('"record"')).length,
    1,
  )
  t.equal(
    run('pretty', { grep: /disk/ }).out.toString().split('\n')[0],
    '05:00:01.500 ops/db-0/pg error: disk full',
  )
})

t.test('--fields projection', async (t) => {
  const fields = [['kubernetes', 'pod_name'], ['log']]
  const raw = run('raw', { fields }).out.toString().split('\n')
  t.equal(raw[0], '{"kubernetes":{"pod_name":"web-7d9f"},"log":"GET /healthz 200\\n"}')
  t.equal(raw[2], '{"kubernetes":{"pod_name":"db-0"}}', 'missing fields are left out')
  const json = JSON.parse(run('json', { fields }).out.toString().split('\n')[1]!)
  t.same(json, {
    type: 'record',
    seq: 1,
    record: { kubernetes: { pod_name: 'web-7d9f' }, log: 'GET /healthz 200\n' },
  })
  const pretty = run('pretty', { fields }).out.toString().split('\n')
  t.equal(pretty[0], '05:00:01.123 shop/web-7d9f/nginx kubernetes.pod_name=web-7d9f log=GET /healthz 200')
  t.equal(pretty[2], '05:00:01.500 ops/db-0/pg kubernetes.pod_name=db-0 log=-')
})

t.test('pretty parts of unusual records', async (t) => {
  t.match(prettyParts({ a: 1 }), { source: '-/-', message: '{"a":1}' })
  t.match(prettyParts('just a string'), { message: '"just a string"' })
  t.equal(formatTime('yesterday'), 'yesterday')
  t.equal(formatTime(1764219601500), '05:00:01.500')
})
