// The benchmark's workload: containerd-shaped records, as logging-operator's fluentd posts them,
// of 600–900 bytes from varied pods and labels, about a third of them denied to the bench listener, encoded as
// out_http NDJSON chunks. Each record's `message` (an application's JSON log line, so escaped)
// starts with a fixed-width send timestamp that the load generator overwrites in place just
// before posting; clients read it back from the frame to measure post → arrival latency.
import { containerdRecord, type FakePod } from '../../local-cluster/sample-records.ts'

// The listener's identity, and the rule key its username maps to (rbac.ts ruleKey).
export const BENCH_USER = 'system:serviceaccount:bench:viewer'
export const BENCH_RULE_KEY = 'bench_viewer'

// As it appears in the serialised record: inside the escaped `message` string.
const TS_MARKER = Buffer.from('"bench_ts=')
const TS_DIGITS = 16 // microseconds of the monotonic clock, zero-padded

export const MIN_RECORD_BYTES = 600
export const MAX_RECORD_BYTES = 900

// Monotonic microseconds; CLOCK_MONOTONIC is system-wide on Linux, so comparable across processes.
export function nowMicros(): number {
  return Number(process.hrtime.bigint() / 1000n)
}

// Small deterministic PRNG (mulberry32) so every run posts the same stream.
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface BenchPod {
  namespace: string
  name: string
  container: string
  node: string
  ip: string
  labels: Record<string, string>
  annotations?: Record<string, string>
  image: string
  imageDigest: string
  containerId: string // docker_id: one container per pod here, so constant per pod (as in reality)
  denied: boolean // what the relay's RBAC decides for BENCH_USER (rbac.ts semantics)
}

const APPS = [
  'checkout',
  'payments',
  'ledger',
  'cart',
  'search',
  'catalog',
  'auth',
  'mailer',
  'gateway',
  'cache',
]
const NAMESPACES = ['shop', 'billing', 'platform', 'edge', 'data']
const TEAMS = ['payments', 'storefront', 'sre', 'data-eng']

// RBAC label shapes and the verdict each gives bench_viewer; weights make ~1/3 denied.
const RBAC_SHAPES: { labels: Record<string, string>; denied: boolean; weight: number }[] = [
  { labels: { 'rbac/policy': 'allow' }, denied: false, weight: 4 },
  { labels: { 'rbac/policy': 'deny', [`rbac/${BENCH_RULE_KEY}`]: 'allow' }, denied: false, weight: 2 },
  { labels: { 'rbac/policy': 'deny' }, denied: true, weight: 1 },
  { labels: { 'rbac/policy': 'allow', [`rbac/${BENCH_RULE_KEY}`]: 'deny' }, denied: true, weight: 1 },
  { labels: {}, denied: true, weight: 1 },
]

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)]!
}

function alnum(rnd: () => number, n: number): string {
  const abc = 'bcdfghjklmnpqrstvwxz2456789'
  let s = ''
  for (let i = 0; i < n; i++) s += abc[Math.floor(rnd() * abc.length)]
  return s
}

function hexOf(rnd: () => number, n: number): string {
  let s = ''
  for (let i = 0; i < n; i++) s += Math.floor(rnd() * 16).toString(16)
  return s
}

export function benchPods(count: number, seed = 7): BenchPod[] {
  const rnd = prng(seed)
  const total = RBAC_SHAPES.reduce((a, s) => a + s.weight, 0)
  const pods: BenchPod[] = []
  for (let i = 0; i < count; i++) {
    const app = APPS[i % APPS.length]!
    const namespace = NAMESPACES[i % NAMESPACES.length]!
    const hash = alnum(rnd, 9)
    // Deterministic spread of RBAC shapes over pods (weighted round robin).
    const slot = (i * 7) % total
    let acc = 0
    const shape = RBAC_SHAPES.find((s) => {
      acc += s.weight
      return slot < acc
    })!
    const labels: Record<string, string> = {
      'app.kubernetes.io/name': app,
      'pod-template-hash': hash,
      ...(rnd() < 0.4
        ? { 'app.kubernetes.io/version': `1.${Math.floor(rnd() * 20)}.${Math.floor(rnd() * 9)}` }
        : {}),
      ...(rnd() < 0.4 ? { team: pick(rnd, TEAMS) } : {}),
      ...shape.labels,
    }
    pods.push({
      namespace,
      name: `${app}-${hash}-${alnum(rnd, 5)}`,
      container: app,
      node: `worker-${1 + Math.floor(rnd() * 6)}`,
      ip: `10.244.${Math.floor(rnd() * 8)}.${2 + Math.floor(rnd() * 250)}`,
      labels,
      ...(rnd() < 0.15
        ? { annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-05-01T10:00:00Z' } }
        : {}),
      image: `ghcr.io/acme/${app}:1.4.2`,
      imageDigest: `sha256:${hexOf(rnd, 64)}`,
      containerId: hexOf(rnd, 64),
      denied: shape.denied,
    })
  }
  return pods
}

const LEVELS = ['info', 'info', 'info', 'debug', 'warn', 'error']
const MSGS = [
  'order placed',
  'payment authorised',
  'cache miss',
  'request served',
  'retrying upstream',
  'slow query',
]

// One record as fluent-bit's cri parser + kubernetes filter emit it, padded (the application's
// `detail` field) to `size` bytes when its fixed part is shorter; the timestamp slot is zeroed.
function benchRecord(pod: BenchPod, n: number, rnd: () => number, size: number): string {
  // A logfmt application line; `detail` pads it.
  const head = `bench_ts=${'0'.repeat(TS_DIGITS)} level=${pick(rnd, LEVELS)} msg="${pick(rnd, MSGS)}"`
  const tail = ` status=${pick(rnd, [200, 200, 200, 201, 404, 500])} took=${Math.round(rnd() * 5000) / 10}ms n=${n}`
  const fake: FakePod = { ...pod, annotations: pod.annotations ?? null }
  const build = (message: string): string =>
    JSON.stringify(containerdRecord(fake, message, n % 5 === 4 ? 'stderr' : 'stdout'))
  const bare = build(head + tail)
  const pad = size - bare.length - ' detail=""'.length - 2 // the quotes are escaped in the record
  return pad > 0 ? build(`${head}${tail} detail="${'x'.repeat(pad)}"`) : bare
}

export interface BenchChunk {
  body: Buffer // NDJSON, as out_http sends with json_array false
  records: number
  tsOffsets: Uint32Array // where each record's timestamp digits start in `body`
  denied: number // records the bench listener will be denied
}

// `chunks` chunks of `perChunk` records over `pods`, sizes uniform in [600, 900].
export function benchChunks(pods: BenchPod[], chunks: number, perChunk: number, seed = 11): BenchChunk[] {
  const rnd = prng(seed)
  const out: BenchChunk[] = []
  let n = 0
  for (let c = 0; c < chunks; c++) {
    const lines: string[] = []
    let denied = 0
    for (let i = 0; i < perChunk; i++) {
      const pod = pods[Math.floor(rnd() * pods.length)]!
      if (pod.denied) denied++
      const size = MIN_RECORD_BYTES + Math.floor(rnd() * (MAX_RECORD_BYTES - MIN_RECORD_BYTES + 1))
      lines.push(benchRecord(pod, n++, rnd, size))
    }
    const body = Buffer.from(lines.map((l) => `${l}\n`).join(''))
    const tsOffsets = new Uint32Array(perChunk)
    let from = 0
    for (let i = 0; i < perChunk; i++) {
      const at = body.indexOf(TS_MARKER, from)
      tsOffsets[i] = at + TS_MARKER.length
      from = at + TS_MARKER.length
    }
    out.push({ body, records: perChunk, tsOffsets, denied })
  }
  return out
}

// Writes `micros` into every record's timestamp slot of the chunk (in place).
export function stamp(chunk: BenchChunk, micros: number): void {
  const digits = String(micros).padStart(TS_DIGITS, '0')
  for (let i = 0; i < chunk.tsOffsets.length; i++) chunk.body.write(digits, chunk.tsOffsets[i]!, 'latin1')
}

// The send timestamp embedded in a frame (or record), or -1 when it carries none.
export function stampOf(frame: Buffer): number {
  const at = frame.indexOf(TS_MARKER)
  if (at < 0) return -1
  let v = 0
  const end = at + TS_MARKER.length + TS_DIGITS
  if (end > frame.length) return -1
  for (let i = at + TS_MARKER.length; i < end; i++) {
    const d = frame[i]! - 0x30
    if (d < 0 || d > 9) return -1
    v = v * 10 + d
  }
  return v
}
