// Several relay replicas on the test control plane, as a StatefulSet behind a Service would run
// them: one process each (local-cluster/replica-process.ts), each with a Pod `<service>-<i>` that
// carries the test host's IP (so the API server's pod proxy reaches it), one selector-less Service
// and, per replica, an EndpointSlice and an Endpoints subset naming its ports. With no kubelet
// here, this module plays the kubelet's readiness probe and the EndpointSlice controller: it polls
// each replica's /readyz and marks its endpoint ready or not, terminating while it is being
// stopped. fluentd's posts go, round robin, to the replicas whose endpoint is ready, as kube-proxy
// would send them.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { CoreV1Api, DiscoveryV1Api } from '@kubernetes/client-node'
import type { TestCluster } from './cluster.ts'
import { freePort } from './control-plane.ts'
import type { ReplicaProcessParams } from './replica-process.ts'
import { registerProcess, unregisterProcess } from './run-registry.ts'

const repoRoot = path.resolve(import.meta.dirname, '..')
const nodeBin = path.join(repoRoot, 'node_modules', '.bin', 'node')
export const STREAM_SERVICE_PORT = 10001
const INGEST_SERVICE_PORT = 10000
const PROBE_MS = 250

interface Replica {
  name: string // its pod's
  ports: { ingest: number; stream: number; ops: number }
  child: ChildProcess | undefined // undefined while stopped
  ready: boolean // as the last probe saw it (what its endpoint says)
  terminating: boolean
}

export interface ReplicaSet {
  namespace: string
  service: string
  replicas: Replica[]
  ingestBaseUrl: string // what the Outputs point at (the Service)
  // Where a post to the Service goes now: a ready replica's ingest address, round robin.
  route(url: string): string
  kill(i: number): Promise<void> // SIGKILL: no drain, its ring is gone; readiness then fails
  terminate(i: number): Promise<void> // SIGTERM as a pod deletion sends it; resolves once it exited
  start(i: number): Promise<void> // (again), under the same pod name and ports; resolves when ready
  // The replicas' ready states changed as the EndpointSlices say (seen by the API server).
  untilReady(names: string[], timeoutMs?: number): Promise<void>
  stop(): Promise<void>
}

export interface ReplicaSetOptions {
  namespace: string
  service?: string // default log-socket
  count: number
  shutdownDelayMs?: number // default 2000
  logLevel?: string
}

export async function startReplicaSet(c: TestCluster, o: ReplicaSetOptions): Promise<ReplicaSet> {
  const core = c.kc.makeApiClient(CoreV1Api)
  const discovery = c.kc.makeApiClient(DiscoveryV1Api)
  const service = o.service ?? 'log-socket'
  const ns = o.namespace
  const ip = c.testHost.ip
  const dir = mkdtempSync(path.join(tmpdir(), 'log-socket-replicas-'))
  const ingestKeyFile = path.join(dir, 'ingest-key')
  writeFileSync(ingestKeyFile, randomBytes(32), { mode: 0o600 })
  const ingestBaseUrl = `http://${service}.${ns}.svc:${INGEST_SERVICE_PORT}`
  const labels = { 'app.kubernetes.io/name': service, 'app.kubernetes.io/part-of': 'log-socket-tests' }
  const replicas: Replica[] = []
  for (let i = 0; i < o.count; i++) {
    const ports = { ingest: await freePort(), stream: await freePort(), ops: await freePort() }
    replicas.push({ name: `${service}-${i}`, ports, child: undefined, ready: false, terminating: false })
  }

  await core.createNamespacedService({
    namespace: ns,
    body: {
      metadata: { name: service, labels },
      spec: {
        ports: [
          { name: 'http-ingest', port: INGEST_SERVICE_PORT, protocol: 'TCP' },
          { name: 'http-stream', port: STREAM_SERVICE_PORT, protocol: 'TCP' },
        ],
      },
    },
  })
  const uids = new Map<string, string>()
  for (const r of replicas) {
    const pod = await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: r.name, labels },
        spec: { containers: [{ name: 'relay', image: 'log-socket-test-host' }] },
      },
    })
    uids.set(r.name, pod.metadata!.uid!)
    const now = new Date()
    await core.replaceNamespacedPodStatus({
      namespace: ns,
      name: r.name,
      body: {
        ...pod,
        status: {
          phase: 'Running',
          podIP: ip,
          podIPs: [{ ip }],
          hostIP: ip,
          conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }],
          startTime: now,
        },
      },
    })
  }
  const targetRef = (r: Replica) => ({ kind: 'Pod', name: r.name, namespace: ns, uid: uids.get(r.name)! })
  const portsOf = (r: Replica) => [
    { name: 'http-ingest', port: r.ports.ingest, protocol: 'TCP' },
    { name: 'http-stream', port: r.ports.stream, protocol: 'TCP' },
  ]
  const sliceBody = (r: Replica) => ({
    metadata: {
      name: r.name,
      labels: {
        ...labels,
        'kubernetes.io/service-name': service,
        'endpointslice.kubernetes.io/managed-by': 'log-socket-tests',
      },
    },
    addressType: 'IPv4',
    endpoints: [
      {
        addresses: [ip],
        conditions: { ready: r.ready, serving: r.ready, terminating: r.terminating },
        targetRef: targetRef(r),
      },
    ],
    ports: portsOf(r),
  })
  // The legacy Endpoints too (one subset per replica: their ports differ), not mirrored to slices.
  const endpointsBody = () => ({
    metadata: {
      name: service,
      labels: { ...labels, 'endpointslice.kubernetes.io/skip-mirror': 'true' },
    },
    subsets: replicas.map((r) => ({
      ...(r.ready
        ? { addresses: [{ ip, targetRef: targetRef(r) }] }
        : { notReadyAddresses: [{ ip, targetRef: targetRef(r) }] }),
      ports: portsOf(r),
    })),
  })
  for (const r of replicas)
    await discovery.createNamespacedEndpointSlice({ namespace: ns, body: sliceBody(r) })
  await core.createNamespacedEndpoints({ namespace: ns, body: endpointsBody() })

  // Writes are serialised: the probe loop and kill()/terminate() both publish.
  let publishing = Promise.resolve()
  const publish = (r: Replica): Promise<void> => {
    publishing = publishing.then(async () => {
      await discovery.replaceNamespacedEndpointSlice({ namespace: ns, name: r.name, body: sliceBody(r) })
      const current = await core.readNamespacedEndpoints({ namespace: ns, name: service })
      await core.replaceNamespacedEndpoints({
        namespace: ns,
        name: service,
        body: { ...endpointsBody(), metadata: { ...endpointsBody().metadata, ...current.metadata } },
      })
    })
    return publishing
  }
  const probe = async (r: Replica): Promise<boolean> => {
    if (!r.child || r.terminating) return false
    try {
      const res = await fetch(`http://${ip}:${r.ports.ops}/readyz`, { signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer()
      return res.ok
    } catch {
      return false
    }
  }
  let probing = true
  const loop = (async () => {
    while (probing) {
      for (const r of replicas) {
        const ready = await probe(r)
        if (ready !== r.ready) {
          r.ready = ready
          await publish(r).catch(() => {})
        }
      }
      await new Promise((res) => setTimeout(res, PROBE_MS))
    }
  })()

  const registration = (c as { registration?: string }).registration
  const start = async (i: number): Promise<void> => {
    const r = replicas[i]!
    const params: ReplicaProcessParams = {
      kubeconfig: c.kubeconfigPath,
      host: ip,
      ports: r.ports,
      ingestBaseUrl,
      ingestKeyFile,
      namespace: ns,
      service,
      replica: r.name,
      shutdownDelayMs: o.shutdownDelayMs ?? 2000,
      ...(o.logLevel ? { logLevel: o.logLevel } : {}),
    }
    const child = spawn(
      nodeBin,
      [path.join(repoRoot, 'local-cluster', 'replica-process.ts'), JSON.stringify(params)],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
        detached: true, // its own process group, as the run registry's reaper expects
      },
    )
    r.child = child
    r.terminating = false
    registerProcess(registration, { name: `${ns}/${r.name}`, pid: child.pid!, binary: nodeBin })
    child.once('exit', () => {
      if (r.child === child) r.child = undefined
      unregisterProcess(registration, `${ns}/${r.name}`)
    })
    await until(`${r.name} ready`, 60_000, () => r.ready)
  }
  const exited = (child: ChildProcess) =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((res) => child.once('exit', () => res()))

  let next = 0
  const set: ReplicaSet = {
    namespace: ns,
    service,
    replicas,
    ingestBaseUrl,
    route(url) {
      const ready = replicas.filter((r) => r.ready)
      const r = ready[next++ % Math.max(ready.length, 1)]
      // None ready: the Service has no endpoints; the post fails as it would (connection refused).
      const port = r ? r.ports.ingest : 1
      return url.replace(`//${service}.${ns}.svc:${INGEST_SERVICE_PORT}`, `//${ip}:${port}`)
    },
    async kill(i) {
      const r = replicas[i]!
      const child = r.child
      if (!child) return
      child.kill('SIGKILL')
      await exited(child)
    },
    async terminate(i) {
      const r = replicas[i]!
      const child = r.child
      if (!child) return
      // A pod being deleted: its endpoint turns terminating (not ready) as SIGTERM is sent.
      r.terminating = true
      r.ready = false
      await publish(r)
      child.kill('SIGTERM')
      await exited(child)
    },
    start,
    async untilReady(names, timeoutMs = 30_000) {
      await until(`ready replicas ${names.join(',')}`, timeoutMs, () =>
        replicas.every((r) => r.ready === names.includes(r.name)),
      )
    },
    async stop() {
      probing = false
      await loop
      await Promise.all(
        replicas.map(async (r) => {
          if (!r.child) return
          const child = r.child
          child.kill('SIGKILL')
          await exited(child)
        }),
      )
      rmSync(dir, { recursive: true, force: true })
    },
  }
  try {
    for (let i = 0; i < o.count; i++) await start(i)
  } catch (err) {
    await set.stop()
    throw err
  }
  return set
}

async function until(what: string, ms: number, f: () => boolean): Promise<void> {
  const deadline = Date.now() + ms
  while (!f()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
