// Realistic records and out_http chunks (what real fluentd posts: docs/real-pipeline.md), for tests,
// the demo and the benchmark. A record is what fluent-bit's cri parser + kubernetes filter produce
// on containerd; a chunk is exactly the request body/headers fluentd's out_http builds from a
// buffer chunk.
import { createHash } from 'node:crypto'
import { gzipSync } from 'node:zlib'

export interface FakePod {
  namespace: string
  name: string
  labels: Record<string, string>
  container?: string
  node?: string
  // Defaults are derived from the names when absent.
  ip?: string
  annotations?: Record<string, string> | null // null: the pod has none
  image?: string
  imageDigest?: string
  containerId?: string
}

// A few pods: with an SA allow rule, a deny rule, only a policy, and no rbac labels at all.
export function samplePods(namespace = 'shop'): FakePod[] {
  return [
    {
      namespace,
      name: 'checkout-7d9c6b5f8-x2lqz',
      labels: { 'app.kubernetes.io/name': 'checkout', 'rbac/policy': 'allow' },
    },
    {
      namespace,
      name: 'payments-5c8d7f9b6-q7w2e',
      labels: {
        'app.kubernetes.io/name': 'payments',
        'rbac/policy': 'deny',
        [`rbac/${namespace}_viewer`]: 'allow',
      },
    },
    {
      namespace,
      name: 'ledger-6f7b9c8d5-z9k1m',
      labels: { 'app.kubernetes.io/name': 'ledger', 'rbac/policy': 'deny' },
    },
    { namespace, name: 'cache-0', labels: { 'app.kubernetes.io/name': 'cache' } },
  ]
}

function hex(seed: string, n: number): string {
  return createHash('sha256').update(seed).digest('hex').slice(0, n)
}

// One containerd-shaped record (field order as fluent-bit emits it).
export function containerdRecord(
  pod: FakePod,
  message: string,
  stream: 'stdout' | 'stderr' = 'stdout',
): Record<string, unknown> {
  const container = pod.container ?? pod.name.replace(/-[a-z0-9]+-[a-z0-9]+$/, '').replace(/-\d+$/, '')
  const id = pod.containerId ?? hex(`${pod.namespace}/${pod.name}`, 64)
  const annotations =
    pod.annotations === undefined
      ? { 'kubectl.kubernetes.io/restartedAt': '2026-05-01T10:00:00Z' }
      : pod.annotations
  return {
    stream,
    logtag: 'F',
    message,
    kubernetes: {
      pod_name: pod.name,
      namespace_name: pod.namespace,
      pod_id: `${id.slice(0, 8)}-${id.slice(8, 12)}-${id.slice(12, 16)}-${id.slice(16, 20)}-${id.slice(20, 32)}`,
      labels: pod.labels,
      ...(annotations ? { annotations } : {}),
      host: pod.node ?? 'worker-1',
      pod_ip: pod.ip ?? '10.244.1.17',
      container_name: container,
      docker_id: id,
      container_hash:
        pod.imageDigest ?? `registry.example.com/${pod.namespace}/${container}@sha256:${hex(container, 64)}`,
      container_image: pod.image ?? `registry.example.com/${pod.namespace}/${container}:1.4.2`,
    },
    kubernetes_namespace: {
      name: pod.namespace,
      labels: { 'kubernetes.io/metadata.name': pod.namespace },
    },
  }
}

export type MessageFn = (pod: FakePod, i: number) => string

const orderPlaced: MessageFn = (_pod, i) =>
  JSON.stringify({ level: 'info', msg: 'order placed', order_id: `A-${i}`, n: i })

// `n` records round-robin over `pods`, each message a JSON log line with a running counter.
export function generateRecords(
  pods: FakePod[],
  n: number,
  start = 0,
  message: MessageFn = orderPlaced,
): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = []
  for (let i = start; i < start + n; i++) {
    const pod = pods[i % pods.length]!
    out.push(containerdRecord(pod, message(pod, i)))
  }
  return out
}

export interface ChunkFormat {
  jsonArray?: boolean // Output spec.http.json_array
  compress?: 'text' | 'gzip' // Output spec.http.compress
  headers?: Record<string, string> // Output spec.http.headers
}

export interface Chunk {
  body: Buffer
  headers: Record<string, string>
  lines: string[] // the serialised records, as a listener should receive them
}

// The request out_http makes for one buffer chunk: headers first, then Content-Type; the body is
// NDJSON (`json_array: false`) or `[` + lines joined by `,` + `]` with each line keeping its
// newline; gzip of the whole body with Content-Encoding when `compress: gzip`.
export function encodeChunk(records: object[], f: ChunkFormat = {}): Chunk {
  const lines = records.map((r) => JSON.stringify(r))
  const text = f.jsonArray ? `[${lines.map((l) => `${l}\n`).join(',')}]` : lines.map((l) => `${l}\n`).join('')
  const raw = Buffer.from(text)
  const headers: Record<string, string> = { ...f.headers }
  headers['Content-Type'] = f.jsonArray ? 'application/json' : 'application/x-ndjson'
  if (f.compress === 'gzip') headers['Content-Encoding'] = 'gzip'
  return { body: f.compress === 'gzip' ? gzipSync(raw) : raw, headers, lines }
}
