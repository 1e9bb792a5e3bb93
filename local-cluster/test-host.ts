// A test host the API server's service proxy can reach. Endpoint addresses may not be loopback or
// link-local, so the run creates its own network namespace and veth pair (root only) and tests
// bind their servers to the host-side veth address, which the Pod, Service and Endpoints name.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import type { KubeConfig } from '@kubernetes/client-node'

export interface TestHostState {
  netns: string
  hostIf: string
  ip: string // host side of the veth: servers bind here
  peerIp: string // inside the namespace
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

export function createTestHost(): TestHostState {
  if (process.getuid?.() !== 0) {
    throw new Error('the service-proxy test host needs root (ip netns add); run the tests as root')
  }
  const id = randomBytes(3).toString('hex')
  const netns = `lsock-${id}`
  const hostIf = `lsk${id}h`
  const peerIf = `lsk${id}n`
  // 10.250.<a>.<4b>/30: a private /30 of our own, chosen at random to keep parallel runs apart.
  const a = randomBytes(1)[0]!
  const b = randomBytes(1)[0]! % 64
  const ipBase = `10.250.${a}.${b * 4}`
  const hostIp = `10.250.${a}.${b * 4 + 1}`
  const peerIp = `10.250.${a}.${b * 4 + 2}`
  const state: TestHostState = { netns, hostIf, ip: hostIp, peerIp }
  try {
    ip('netns', 'add', netns)
    ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', peerIf)
    ip('link', 'set', peerIf, 'netns', netns)
    ip('addr', 'add', `${hostIp}/30`, 'dev', hostIf)
    ip('link', 'set', hostIf, 'up')
    ip('netns', 'exec', netns, 'ip', 'addr', 'add', `${peerIp}/30`, 'dev', peerIf)
    ip('netns', 'exec', netns, 'ip', 'link', 'set', peerIf, 'up')
    ip('netns', 'exec', netns, 'ip', 'link', 'set', 'lo', 'up')
  } catch (err) {
    removeTestHost(state)
    throw new Error(`creating test host ${netns} (${ipBase}/30) failed: ${(err as Error).message}`)
  }
  return state
}

export function removeTestHost(state: TestHostState): void {
  try {
    ip('link', 'del', state.hostIf) // removes the peer too
  } catch {
    // already gone
  }
  try {
    ip('netns', 'del', state.netns)
  } catch {
    // already gone
  }
}

export function netnsExists(name: string): boolean {
  return ip('netns', 'list')
    .split('\n')
    .some((l) => l.split(' ')[0] === name)
}

export interface ExposeOptions {
  namespace: string
  name: string
  port: number // the Service port
  targetPort: number // where the server listens on the test host's ip
}

// Registers a Running Pod with the test host's IP, a selector-less Service and its Endpoints and
// EndpointSlice, so /api/v1/namespaces/NS/services/NAME:PORT/proxy/... reaches ip:targetPort.
export async function exposeService(kc: KubeConfig, host: TestHostState, o: ExposeOptions): Promise<void> {
  const { CoreV1Api, DiscoveryV1Api } = await import('@kubernetes/client-node')
  const core = kc.makeApiClient(CoreV1Api)
  const discovery = kc.makeApiClient(DiscoveryV1Api)
  const podName = `${o.name}-testhost`
  const labels = { 'app.kubernetes.io/name': o.name, 'app.kubernetes.io/part-of': 'log-socket-tests' }
  const pod = await core.createNamespacedPod({
    namespace: o.namespace,
    body: {
      metadata: { name: podName, labels },
      spec: { containers: [{ name: 'server', image: 'log-socket-test-host' }] },
    },
  })
  const now = new Date()
  await core.replaceNamespacedPodStatus({
    namespace: o.namespace,
    name: podName,
    body: {
      ...pod,
      status: {
        phase: 'Running',
        podIP: host.ip,
        podIPs: [{ ip: host.ip }],
        hostIP: host.ip,
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }],
        startTime: now,
      },
    },
  })
  await core.createNamespacedService({
    namespace: o.namespace,
    body: {
      metadata: { name: o.name, labels },
      spec: { ports: [{ name: 'http', port: o.port, targetPort: o.targetPort, protocol: 'TCP' }] },
    },
  })
  const targetRef = { kind: 'Pod', name: podName, namespace: o.namespace, uid: pod.metadata!.uid! }
  await core.createNamespacedEndpoints({
    namespace: o.namespace,
    body: {
      metadata: { name: o.name, labels },
      subsets: [{ addresses: [{ ip: host.ip, targetRef }], ports: [{ name: 'http', port: o.targetPort }] }],
    },
  })
  await discovery.createNamespacedEndpointSlice({
    namespace: o.namespace,
    body: {
      metadata: { name: `${o.name}-testhost`, labels: { ...labels, 'kubernetes.io/service-name': o.name } },
      addressType: 'IPv4',
      endpoints: [{ addresses: [host.ip], conditions: { ready: true }, targetRef }],
      ports: [{ name: 'http', port: o.targetPort, protocol: 'TCP' }],
    },
  })
}
