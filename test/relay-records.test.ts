// Splitting posted bodies into records and reading routing/RBAC fields: the byte scanner must
// agree with JSON.parse on what is a valid record and on what it means.
import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import t from 'tap'
import { allowed, rulesFromLabels } from '../controller/relay/rbac.ts'
import {
  type BodyFormat,
  RecordCounter,
  type RecordMeta,
  recordMeta,
  splitRecords,
} from '../controller/relay/records.ts'

// The records the relay takes from a body (validated as the hub does), and how many it skips.
function split(text: string, format: BodyFormat): { records: string[]; malformed: number } {
  const body = Buffer.from(text)
  const records: string[] = []
  const malformed = splitRecords(body, format, (s, e) => {
    if (!recordMeta(body, s, e)) return false
    records.push(body.toString('utf8', s, e))
    return true
  })
  return { records, malformed }
}

t.test('NDJSON split', async (t) => {
  t.same(split('{"a":1}\n{"b":2}\n', 'ndjson').records, ['{"a":1}', '{"b":2}'])
  t.same(split('\r\n  {"a":1}\r\n\n\n{"b":"x\\ny"}', 'ndjson').records, ['{"a":1}', '{"b":"x\\ny"}'])
  t.same(split('', 'ndjson').records, [])
})

t.test('JSON array split (out_http json_array shape and friends)', async (t) => {
  t.same(split('[{"a":1}\n,{"b":2}\n]', 'json').records, ['{"a":1}', '{"b":2}'])
  t.same(split(' [ ] ', 'json'), { records: [], malformed: 0 })
  t.same(split('[{"s":"],[\\"{"},{"n":[1,[2]]}]', 'json').records, ['{"s":"],[\\"{"}', '{"n":[1,[2]]}'])
  t.same(split('[{"a":1},,{"b":2}]', 'json'), { records: ['{"a":1}', '{"b":2}'], malformed: 1 })
  t.same(
    split('[{"a":1},{"b":', 'json'),
    { records: ['{"a":1}'], malformed: 1 },
    'unterminated: the rest is one (malformed) element',
  )
  t.same(
    split('{"a":1}\n{"b":2}', 'json').records,
    ['{"a":1}', '{"b":2}'],
    'application/json without [ is read as lines',
  )
})

t.test('a malformed JSON array element is skipped without losing the elements after it', async (t) => {
  const want = { records: ['{"a":1}', '{"b":2}', '{"c":3}'], malformed: 1 }
  t.same(split('[{"a":1}\n,{bad\n,{"b":2}\n,{"c":3}\n]', 'json'), want, 'an unclosed brace')
  t.same(split('[{"a":1}\n,{"bad\n,{"b":2}\n,{"c":3}\n]', 'json'), want, 'an unclosed string')
  t.same(split('[{"a":1}\n,{"x":[1\n,{"b":2}\n,{"c":3}\n]', 'json'), want, 'an unclosed array')
  t.same(split('[{"a":1}\n,{"x":1}}\n,{"b":2}\n,{"c":3}\n]', 'json'), want, 'a stray closing brace')
  t.same(split('[{"a":1}\n,nope\n,{"b":2}\n,{"c":3}\n]', 'json'), want, 'not an object')
  t.same(
    split('{"a":1}\n{bad\n{"b":2}\n{"c":3}\n', 'ndjson'),
    want,
    'the same lines as NDJSON give the same answer',
  )
  t.same(
    split('[\n  {"a": 1,\n   "n": [1, 2]},\n  {"b": 2}\n]', 'json'),
    { records: ['{"a": 1,\n   "n": [1, 2]}', '{"b": 2}'], malformed: 0 },
    'pretty-printed elements spanning lines are still whole records',
  )
})

t.test('RecordCounter counts the records of a body as it arrives, whatever the cuts', async (t) => {
  const bodies: [string, number][] = [
    ['{"a":1}\n{"b":2}\n', 2],
    ['{"a":1}\n\n  \r\n{"b":2}', 2],
    ['[{"a":1}\n,{"b":2}\n,{"c":3}\n]', 3],
    ['[{"a":1}\n,{bad\n,{"c":3}\n]\n', 3],
    ['', 0],
    ['[]', 0],
  ]
  for (const [text, n] of bodies) {
    const b = Buffer.from(text)
    for (let cut = 0; cut <= b.length; cut++) {
      const c = new RecordCounter()
      c.push(b.subarray(0, cut))
      c.push(b.subarray(cut))
      t.equal(c.end(), n, `${JSON.stringify(text)} cut at ${cut}`, { diagnostic: false })
    }
  }
})

// The meaning, computed the obvious way: JSON.parse the whole record.
function reference(text: string): RecordMeta | null {
  let rec: unknown
  try {
    rec = JSON.parse(text)
  } catch {
    return null
  }
  if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) return null
  const k = (rec as { kubernetes?: unknown }).kubernetes
  if (k === null || typeof k !== 'object' || Array.isArray(k)) return { pod: '', rules: null }
  const { pod_name: pod, namespace_name: ns, labels } = k as Record<string, unknown>
  const p = typeof pod === 'string' ? pod : ''
  return { pod: p && typeof ns === 'string' && ns ? `${ns}/${p}` : p, rules: rulesFromLabels(labels) }
}

// Like the ranges splitRecords hands out: JSON whitespace trimmed.
function meta(text: string): RecordMeta | null {
  const b = Buffer.from(text.replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, ''))
  return recordMeta(b, 0, b.length)
}

const norm = (m: RecordMeta | null) =>
  m ? { pod: m.pod, rules: m.rules ? [...m.rules].sort() : null } : null

t.test('hand-picked records', async (t) => {
  const cases = [
    '{}',
    '{"kubernetes":null}',
    '{"kubernetes":{"labels":{"rbac/policy":"allow"}},"kubernetes":{"pod_name":"p"}}',
    '{"kub\\u0065rnetes":{"pod_name":"p","namespace_name":"n","labels":{"rbac\\/policy":"\\u0061llow"}}}',
    '{"kubernetes":{"labels":{"rbac/a":"allow","rbac/a":5}}}',
    '{"kubernetes":{"labels":{"rbac/a":"allow"},"labels":"x"}}',
    '{"a":[1,-0.5e+3,true,false,null,{"b":"\\t"}],"kubernetes":{"pod_name":"p\\"q"}}',
    '{"a":01}',
    '{"a":1.}',
    '{"a":"\t"}',
    '{"a":"\\x"}',
    '{"a":tru}',
    '{"a":1,}',
    '{"a" 1}',
    '{"a":1} x',
    `${'{"a":'.repeat(300)}1${'}'.repeat(300)}`,
  ]
  for (const c of cases) {
    const want = norm(reference(c))
    // Nesting beyond MAX_DEPTH is refused on purpose (JSON.parse would accept it).
    if (c.startsWith('{"a":{"a":{')) t.equal(meta(c), null, 'too deep: skipped')
    else t.same(norm(meta(c)), want, c.slice(0, 80))
  }
  t.equal(meta('{"a":"\xff"}'.replace('\xff', '\u00ff')) !== null, true, 'non-ASCII text is fine')
  const bad = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])
  t.equal(recordMeta(bad, 0, bad.length), null, 'invalid UTF-8 is skipped')
})

const labelKey = fc.oneof(
  fc.constantFrom('rbac/policy', 'rbac/shop_viewer', 'rbac/alice', 'app', 'rbac/'),
  fc.string({ maxLength: 6 }).map((s) => `rbac/${s}`),
)
const verdict = fc.oneof(fc.constantFrom('allow', 'deny', 'Allow'), fc.jsonValue({ maxDepth: 1 }))
const kube = fc.record(
  {
    pod_name: fc.oneof(fc.string({ maxLength: 8 }), fc.integer()),
    namespace_name: fc.oneof(fc.constant('shop'), fc.string({ maxLength: 4 })),
    labels: fc.oneof(fc.dictionary(labelKey, verdict, { maxKeys: 5 }), fc.jsonValue({ maxDepth: 1 })),
  },
  { requiredKeys: [] },
)
const record = fc.record(
  {
    message: fc.string(),
    kubernetes: fc.oneof(kube, fc.jsonValue({ maxDepth: 2 })),
    extra: fc.jsonValue({ maxDepth: 3 }),
  },
  { requiredKeys: [] },
)
// Spellings JSON allows that a byte-level shortcut could miss.
const respell = (s: string, r: number) =>
  r === 1
    ? s.replaceAll('"kubernetes"', '"kub\\u0065rnetes"')
    : r === 2
      ? s.replaceAll('"rbac/', '"rbac\\/').replaceAll('"allow"', '"\\u0061llow"')
      : r === 3
        ? s.replace('{', '{"kubernetes":{"labels":{"rbac/policy":"allow"}},')
        : s

t.test('property: the scanner means what JSON.parse means', async (t) => {
  fc.assert(
    fc.property(record, fc.integer({ min: 0, max: 3 }), (rec, r) => {
      const text = respell(JSON.stringify(rec), r)
      return isDeepStrictEqual(norm(meta(text)), norm(reference(text)))
    }),
    { numRuns: 1500 },
  )
  t.pass('structured records agree')
})

t.test('property: corrupted records are skipped exactly when JSON.parse rejects them', async (t) => {
  const edit = fc.record({
    at: fc.nat(),
    del: fc.nat({ max: 3 }),
    ins: fc.constantFrom('', '"', '\\', ',', '}', '{', ']', ':', '0', 'e', '-', ' ', '\n', 'x', '\t'),
  })
  fc.assert(
    fc.property(record, fc.array(edit, { minLength: 1, maxLength: 3 }), (rec, edits) => {
      let text = JSON.stringify(rec)
      for (const e of edits) {
        const at = e.at % (text.length + 1)
        text = text.slice(0, at) + e.ins + text.slice(at + e.del)
      }
      const got = meta(text)
      const want = reference(text)
      return isDeepStrictEqual(norm(got), norm(want))
    }),
    { numRuns: 3000 },
  )
  t.pass('corruptions agree')
  t.equal(allowed(meta('{"kubernetes":{"labels":{"rbac/policy":"allow"}}}')!.rules, 'x'), true)
})

// recordMeta reads the body around a record (no view of it per record): what follows a record's
// range must never change the verdict, however the record is broken.
t.test('property: a record means the same whatever bytes follow it in the body', async (t) => {
  const edit = fc.record({
    at: fc.nat(),
    del: fc.nat({ max: 3 }),
    ins: fc.constantFrom('', '"', '\\', ',', '}', '{', '[', ':', '0', ' ', 'x'),
  })
  const after = fc.oneof(
    record.map((r) => `\n${JSON.stringify(r)}`),
    fc.constantFrom('\n', '\n,', '}', '"}', ']}', ',"a":1}', '\n{"x":"y"}}'),
    fc.string({ maxLength: 20 }),
  )
  fc.assert(
    fc.property(record, fc.array(edit, { maxLength: 2 }), after, (rec, edits, tail) => {
      let text = JSON.stringify(rec)
      for (const e of edits) {
        const at = e.at % (text.length + 1)
        text = text.slice(0, at) + e.ins + text.slice(at + e.del)
      }
      text = text.replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, '')
      const alone = Buffer.from(text)
      const inBody = Buffer.from(text + tail)
      return isDeepStrictEqual(
        norm(recordMeta(inBody, 0, alone.length)),
        norm(recordMeta(alone, 0, alone.length)),
      )
    }),
    { numRuns: 3000 },
  )
  t.pass('trailing bytes never change a verdict')
})

// A `kubernetes` member seen before is recognised by its bytes and not scanned again: what
// surrounds those bytes in a new record must still be judged exactly as JSON.parse judges it.
t.test('a kubernetes member seen before means the same in any record', async (t) => {
  const member = '{"pod_name":"p","namespace_name":"n","labels":{"rbac/policy":"allow"}}'
  t.same(norm(meta(`{"kubernetes":${member}}`)), norm(reference(`{"kubernetes":${member}}`)), 'first sight')
  const cases = [
    `{"kubernetes":${member}}`,
    `{"a":1,"kubernetes":${member} ,"b":[2]}`,
    `{"kubernetes":${member}x}`,
    `{"kubernetes":${member}`,
    `{"kubernetes":${member}}}`,
    `{"kubernetes":${member},}`,
    `{"kubernetes":${member.slice(0, -1)}}`,
    `{"kubernetes":${member.slice(0, -2)},"x":{}}}`,
    `{"kubernetes":${member},"kubernetes":5}`,
    `{"kubernetes":${member},"kubernetes":{"pod_name":"q"}}`,
    `{"kubernetes":5,"kubernetes":${member}}`,
    `{"other":${member}}`,
  ]
  for (const c of cases) t.same(norm(meta(c)), norm(reference(c)), c)

  fc.assert(
    fc.property(
      record,
      fc.array(fc.record({ at: fc.nat(), ins: fc.constantFrom('', '}', '"', ',', 'x') })),
      (rec, edits) => {
        const text = JSON.stringify({
          ...rec,
          kubernetes: { pod_name: 'p', labels: { 'rbac/policy': 'allow' }, ...(rec.kubernetes as object) },
        })
        meta(text) // now known
        let edited = text
        for (const e of edits) {
          const at = e.at % (edited.length + 1)
          edited = edited.slice(0, at) + e.ins + edited.slice(at)
        }
        return isDeepStrictEqual(norm(meta(edited)), norm(reference(edited)))
      },
    ),
    { numRuns: 2000 },
  )
  t.pass('edited records around known members agree')
})
