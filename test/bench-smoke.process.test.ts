// The benchmark's own logic (no timing): the workload has the promised shape and RBAC mix, the
// embedded send time survives the relay's framing, and the latency percentiles are right.
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { recordFrame } from '../controller/relay/frames.ts'
import { allowed, ruleKey, rulesFromLabels } from '../controller/relay/rbac.ts'
import { Histogram } from '../scripts/bench/histogram.ts'
import { productionNodeFlags } from '../scripts/bench/production-flags.ts'
import {
  BENCH_RULE_KEY,
  BENCH_USER,
  benchChunks,
  benchPods,
  MAX_RECORD_BYTES,
  MIN_RECORD_BYTES,
  stamp,
  stampOf,
} from '../scripts/bench/records.ts'

t.test(
  'records are 600–900-byte containerd-shaped JSON, about a third denied to the bench user',
  async (t) => {
    t.equal(ruleKey(BENCH_USER), BENCH_RULE_KEY)
    const pods = benchPods(60)
    const chunks = benchChunks(pods, 3, 1000)
    let denied = 0
    let total = 0
    const podNames = new Set<string>()
    for (const c of chunks) {
      const lines = c.body.toString('utf8').split('\n')
      t.equal(lines.pop(), '', 'NDJSON: every record ends in a newline')
      t.equal(lines.length, c.records)
      let chunkDenied = 0
      for (const line of lines) {
        const bytes = Buffer.byteLength(line)
        if (bytes < MIN_RECORD_BYTES || bytes > MAX_RECORD_BYTES) t.fail(`record of ${bytes} bytes`)
        const r = JSON.parse(line) as {
          stream: string
          logtag: string
          message: string
          kubernetes: { pod_name: string; namespace_name: string; labels: Record<string, string> }
          kubernetes_namespace: { name: string }
        }
        if (r.logtag !== 'F' || !['stdout', 'stderr'].includes(r.stream) || typeof r.message !== 'string')
          t.fail(`not containerd-shaped: ${line}`)
        if (r.kubernetes_namespace.name !== r.kubernetes.namespace_name) t.fail('namespace mismatch')
        podNames.add(`${r.kubernetes.namespace_name}/${r.kubernetes.pod_name}`)
        // The relay's own RBAC decides what the generator claims.
        if (!allowed(rulesFromLabels(r.kubernetes.labels), BENCH_RULE_KEY)) chunkDenied++
      }
      t.equal(chunkDenied, c.denied, 'the chunk knows how many records the listener is denied')
      denied += chunkDenied
      total += lines.length
    }
    t.ok(denied / total > 0.25 && denied / total < 0.42, `denied share ${denied / total}`)
    t.ok(podNames.size > 40, `records from ${podNames.size} pods`)
  },
)

t.test('the stamped send time is read back from the relay frame and the record stays valid', async (t) => {
  const [c] = benchChunks(benchPods(10), 1, 50)
  stamp(c!, 1_234_567_890_123)
  const lines = c!.body.toString('utf8').trimEnd().split('\n')
  let start = 0
  for (const [i, line] of lines.entries()) {
    const end = start + Buffer.byteLength(line)
    const frame = recordFrame(i + 1, c!.body, start, end)
    t.equal(stampOf(frame), 1_234_567_890_123)
    t.same((JSON.parse(frame.toString()) as { record: unknown }).record, JSON.parse(line))
    start = end + 1
  }
  t.equal(stampOf(Buffer.from('{"type":"denied","seq":3}')), -1, 'frames without a record have no stamp')
})

t.test(
  'percentiles match the exact ones within a bucket; max is exact; merge and JSON round trip',
  async (t) => {
    const values: number[] = []
    let x = 12345
    for (let i = 0; i < 20_000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31
      // mostly 0–30 ms, a tail up to 3 s
      values.push(i % 100 === 0 ? (x % 3_000_000) + 100_000 : x % 30_000)
    }
    const h = new Histogram()
    for (const v of values) h.record(v)
    const sorted = [...values].sort((a, b) => a - b)
    const exact = (q: number): number => sorted[Math.ceil(q * sorted.length) - 1]!
    for (const q of [0.5, 0.9]) {
      const got = h.percentile(q)
      t.ok(got >= exact(q) && got <= exact(q) + 10, `p${q * 100}: ${got} vs ${exact(q)}`)
    }
    const p999 = h.percentile(0.999)
    t.ok(
      p999 >= exact(0.999) && p999 <= exact(0.999) + 1000,
      `p99.9 (coarse range): ${p999} vs ${exact(0.999)}`,
    )
    t.equal(h.max, sorted.at(-1))
    t.equal(h.percentile(1), sorted.at(-1))
    t.equal(new Histogram().percentile(0.99), 0, 'empty')

    const a = new Histogram()
    const b = new Histogram()
    for (const [i, v] of values.entries()) (i % 2 ? a : b).record(v)
    const merged = Histogram.from(JSON.parse(JSON.stringify(a)))
    merged.merge(b.toJSON())
    t.equal(merged.count, h.count)
    t.equal(merged.max, h.max)
    t.equal(merged.percentile(0.99), h.percentile(0.99))
  },
)

t.test('the relay is benched with the Dockerfile ENTRYPOINT node flags, which node accepts', async (t) => {
  const flags = productionNodeFlags(new URL('../Dockerfile', import.meta.url).pathname)
  t.ok(flags.length > 0, 'the ENTRYPOINT carries node flags')
  for (const f of flags) t.match(f, /^--[a-z]/, `${f} is a flag`)
  const r = spawnSync(process.execPath, [...flags, '-e', '0'], { encoding: 'utf8' })
  t.equal(r.status, 0, `node ${flags.join(' ')} starts: ${r.stderr}`)
})
