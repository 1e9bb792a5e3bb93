// A fluentd-faithful sender for tests and the demo: it plays the part of logging-operator's
// fluentd for every http Output/ClusterOutput on the API server. Like a real config reload, an
// Output takes effect only after an activation delay (and again after each spec change); from
// then on, every flush interval, one buffer chunk is posted to `spec.http.endpoint` exactly as
// out_http would (docs/real-pipeline.md, tested with the real fluentd): one pod's records per chunk
// (chunk key `tag`), NDJSON or an array per `json_array`, gzip per `compress`, `headers` then
// Content-Type, Basic auth from the Secrets `auth` names (read when each chunk goes, as
// logging-operator renders their current values), POST or PUT.
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node'
import { KINDS, resourceOf } from '../api/kinds.ts'
import { encodeChunk, type FakePod, generateRecords, type MessageFn, samplePods } from './sample-records.ts'

interface SecretValue {
  value?: string
  valueFrom?: { secretKeyRef?: { name?: string; key?: string } }
}

interface HttpSpec {
  endpoint?: string
  auth?: { username?: SecretValue; password?: SecretValue }
  http_method?: string
  content_type?: string
  json_array?: boolean
  compress?: string
  headers?: Record<string, string>
}

interface OutputObject extends KubernetesObject {
  spec?: { http?: HttpSpec }
}

export interface SenderOptions {
  kc: KubeConfig
  namespace?: string // watch Outputs in this namespace only (default: all namespaces)
  clusterOutputs?: boolean // also watch ClusterOutputs (default true)
  activationDelayMs?: number // config reload delay before an Output receives chunks (default 2000)
  flushIntervalMs?: number // buffer flush_interval (default 1000)
  recordsPerChunk?: number // default 10
  pods?: FakePod[] // default samplePods()
  resolve?: (url: string) => string // e.g. map an in-cluster Service URL to 127.0.0.1:<port>
  message?: MessageFn // the log line of record i of a pod (default: "order placed" JSON)
  // Hosts (after resolve) the sender may post to, besides loopback. Outputs pointing anywhere else
  // (a user's Elasticsearch in a test Flow, say) are never contacted: tests talk only to
  // addresses on this machine.
  allowHosts?: string[]
  // Where no logging-operator runs (the demo without the real pipeline): also play its acceptance,
  // writing status.active on each Output as it activates it, as logging-operator does once a valid
  // flow routes to an Output. Never in tests of what logging-operator accepts: they run the real one.
  acceptOutputs?: boolean
}

interface PostResult {
  output: string // "<Kind>/<namespace>/<name>" (namespace empty for ClusterOutputs)
  url: string
  status: number // 0 when the request failed before an answer
  records: number
  lines: string[] // the records as posted, for byte-for-byte comparisons
}

export interface FluentdSender {
  posts: PostResult[]
  // Resolves once an Output has had `n` successful (2xx) posts.
  until(output: string, n: number, timeoutMs?: number): Promise<PostResult[]>
  stop(): Promise<void>
}

interface Active {
  spec: string // JSON of spec.http: a change means a reload (new activation delay)
  timer: NodeJS.Timeout
  counter: number
  nextPod: number
}

export async function startFluentdSender(o: SenderOptions): Promise<FluentdSender> {
  const custom = o.kc.makeApiClient(CustomObjectsApi)
  const core = o.kc.makeApiClient(CoreV1Api)
  // A Secret value as the operator's secret loader resolves it (from the Output's namespace).
  const secretValue = async (namespace: string, v: SecretValue | undefined): Promise<string | undefined> => {
    if (v?.value !== undefined) return v.value
    const ref = v?.valueFrom?.secretKeyRef
    if (!ref?.name || !ref.key) return undefined
    try {
      const secret = await core.readNamespacedSecret({ namespace, name: ref.name })
      const data = secret.data?.[ref.key]
      return data === undefined ? undefined : Buffer.from(data, 'base64').toString('utf8')
    } catch {
      return undefined
    }
  }
  const pods = o.pods ?? samplePods()
  const per = o.recordsPerChunk ?? 10
  const resolve = o.resolve ?? ((u: string) => u)
  const active = new Map<string, Active>()
  const posts: PostResult[] = []
  const waiters = new Set<() => void>()
  let stopped = false
  const allowed = new Set(['127.0.0.1', 'localhost', '[::1]', ...(o.allowHosts ?? [])])
  const mayPost = (url: string): boolean => {
    try {
      return allowed.has(new URL(url).hostname)
    } catch {
      return false
    }
  }

  async function post(key: string, namespace: string, spec: HttpSpec, a: Active): Promise<void> {
    // Each Output cycles through every pod, as each store of fluentd's copy gets every record.
    const pod = pods[a.nextPod++ % pods.length]!
    const chunk = encodeChunk(generateRecords([pod], per, a.counter, o.message), {
      jsonArray: spec.json_array === true,
      compress: spec.compress === 'gzip' ? 'gzip' : 'text',
      ...(spec.headers ? { headers: spec.headers } : {}),
    })
    a.counter += per
    if (spec.content_type) chunk.headers['Content-Type'] = spec.content_type
    if (spec.auth) {
      const user = (await secretValue(namespace, spec.auth.username)) ?? ''
      const password = (await secretValue(namespace, spec.auth.password)) ?? ''
      chunk.headers['Authorization'] = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
    }
    const url = resolve(spec.endpoint!)
    let status = 0
    try {
      const res = await fetch(url, {
        method: (spec.http_method ?? 'post').toUpperCase(),
        headers: chunk.headers,
        body: new Uint8Array(chunk.body),
      })
      status = res.status
      await res.arrayBuffer()
    } catch {
      status = 0
    }
    if (stopped) return
    posts.push({ output: key, url, status, records: per, lines: chunk.lines })
    for (const w of waiters) w()
  }

  async function accept(kind: string, obj: OutputObject): Promise<void> {
    try {
      await custom.patchNamespacedCustomObjectStatus(
        {
          ...resourceOf(kind === 'Output' ? 'Output' : 'ClusterOutput'),
          namespace: obj.metadata?.namespace ?? '',
          name: obj.metadata?.name ?? '',
          body: { status: { active: true, problemsCount: 0 } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
    } catch {
      // gone meanwhile
    }
  }

  function upsert(kind: string, obj: OutputObject): void {
    const key = `${kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name}`
    const http = obj.spec?.http
    const spec = JSON.stringify(http ?? null)
    const prev = active.get(key)
    if (prev?.spec === spec) return
    if (prev) clearTimeout(prev.timer)
    if (!http?.endpoint || !mayPost(resolve(http.endpoint))) {
      active.delete(key)
      return
    }
    const a: Active = {
      spec,
      counter: prev?.counter ?? 0,
      nextPod: prev?.nextPod ?? 0,
      timer: undefined as unknown as NodeJS.Timeout,
    }
    // Like fluentd after a config reload: nothing until the new config is live, then one chunk
    // per flush interval, never two requests of one Output in flight at once.
    const loop = async () => {
      if (stopped || active.get(key) !== a) return
      if (o.acceptOutputs && a.counter === 0) await accept(kind, obj)
      await post(key, obj.metadata?.namespace ?? '', http, a)
      if (!stopped && active.get(key) === a) a.timer = setTimeout(loop, o.flushIntervalMs ?? 1000)
    }
    a.timer = setTimeout(loop, o.activationDelayMs ?? 2000)
    active.set(key, a)
  }

  function remove(kind: string, obj: OutputObject): void {
    const key = `${kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name}`
    const a = active.get(key)
    if (a) clearTimeout(a.timer)
    active.delete(key)
  }

  const informers: { stop(): Promise<void> | void; start(): Promise<void> }[] = []
  const watch = (kind: string, path: string, list: () => Promise<unknown>) => {
    const inf = makeInformer<OutputObject>(o.kc, path, list as never)
    inf.on('add', (obj) => upsert(kind, obj))
    inf.on('update', (obj) => upsert(kind, obj))
    inf.on('delete', (obj) => remove(kind, obj))
    inf.on('error', () => {
      if (!stopped) setTimeout(() => void inf.start(), 1000)
    })
    informers.push(inf)
  }
  const base = `/apis/${KINDS.Output.apiVersion}`
  const { Output, ClusterOutput } = KINDS
  if (o.namespace) {
    const namespace = o.namespace
    watch('Output', `${base}/namespaces/${namespace}/${Output.plural}`, () =>
      custom.listNamespacedCustomObject({ ...resourceOf('Output'), namespace }),
    )
  } else {
    watch('Output', `${base}/${Output.plural}`, () => custom.listClusterCustomObject(resourceOf('Output')))
  }
  if (o.clusterOutputs !== false)
    watch('ClusterOutput', `${base}/${ClusterOutput.plural}`, () =>
      custom.listClusterCustomObject(resourceOf('ClusterOutput')),
    )
  await Promise.all(informers.map((i) => i.start()))

  return {
    posts,
    until(output, n, timeoutMs = 20_000) {
      return new Promise((res, rej) => {
        const ok = () => posts.filter((p) => p.output === output && p.status >= 200 && p.status < 300)
        const check = () => {
          const got = ok()
          if (got.length < n) return
          waiters.delete(check)
          clearTimeout(timer)
          res(got)
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          const seen = posts.filter((p) => p.output === output).map((p) => p.status)
          rej(
            new Error(
              `${output}: ${ok().length}/${n} successful posts (statuses ${seen.join(',') || 'none'})`,
            ),
          )
        }, timeoutMs)
        waiters.add(check)
        check()
      })
    },
    async stop() {
      stopped = true
      for (const a of active.values()) clearTimeout(a.timer)
      active.clear()
      await Promise.all(informers.map((i) => i.stop()))
    },
  }
}
