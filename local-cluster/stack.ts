// The whole of log-socket on the test control plane: the controller+relay program bound to the
// test host (so the API server's service proxy reaches its stream port through a Service named
// like the chart's), and the fluentd-faithful sender posting to the Outputs the controller makes.
// Used by the end-to-end tests and by the demo.
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import type { KubeConfig } from '@kubernetes/client-node'
import pino, { type Logger } from 'pino'
import { type Program, startProgram } from '../controller/program/program.ts'
import type { TestCluster } from './cluster.ts'
import { freePort, kubeconfigYaml } from './control-plane.ts'
import { type FluentdSender, startFluentdSender } from './fluentd-sender.ts'
import type { FakePod, MessageFn } from './sample-records.ts'

export interface Stack {
  namespace: string // where the relay Service lives and (with scope) which LogTaps are reconciled
  service: string
  ports: { ingest: number; stream: number; ops: number }
  program: Program
  sender: FluentdSender
  ingestKey: Uint8Array
  restartProgram(): Promise<void> // stop and start the program on the same ports (a relay restart)
  stop(): Promise<void>
}

export interface StackOptions {
  namespace: string
  kc?: KubeConfig // the program's identity (default: admin)
  scope?: string // reconcile only this namespace's LogTaps (default: namespace)
  pods?: FakePod[]
  message?: MessageFn
  recordsPerChunk?: number
  flushIntervalMs?: number
  activationDelayMs?: number
  logger?: Logger
}

export async function startStack(c: TestCluster, o: StackOptions): Promise<Stack> {
  const service = 'log-socket'
  const ports = { ingest: await freePort(), stream: await freePort(), ops: await freePort() }
  const ingestKey = randomBytes(32)
  const logger = o.logger ?? pino({ level: process.env.LOG_SOCKET_TEST_LOG ?? 'silent' })
  const ingestBaseUrl = `http://${service}.${o.namespace}.svc:${ports.ingest}`
  const start = () =>
    startProgram(
      {
        host: c.testHost.ip,
        ingestPort: ports.ingest,
        streamPort: ports.stream,
        opsPort: ports.ops,
        ingestBaseUrl,
        ingestKey,
        leaderElect: false,
        namespace: o.namespace,
        identity: 'test',
      },
      o.kc ?? c.kc,
      logger,
      { watchNamespace: o.scope ?? o.namespace, sweepIntervalMs: 5_000 },
    )
  let program = await start()
  await c.testHost.exposeService({
    namespace: o.namespace,
    name: service,
    port: 10001,
    targetPort: ports.stream,
  })
  const sender = await startFluentdSender({
    kc: c.kc,
    namespace: o.scope ?? o.namespace,
    clusterOutputs: true,
    activationDelayMs: o.activationDelayMs ?? 500,
    flushIntervalMs: o.flushIntervalMs ?? 300,
    recordsPerChunk: o.recordsPerChunk ?? 4,
    ...(o.pods ? { pods: o.pods } : {}),
    ...(o.message ? { message: o.message } : {}),
    // fluentd would resolve the Service name in-cluster; here the relay listens on the test host.
    resolve: (url) => url.replace(`//${service}.${o.namespace}.svc:`, `//${c.testHost.ip}:`),
    allowHosts: [c.testHost.ip],
  })
  return {
    namespace: o.namespace,
    service,
    ports,
    get program() {
      return program
    },
    sender,
    ingestKey,
    async restartProgram() {
      await program.stop()
      program = await start()
    },
    async stop() {
      await sender.stop()
      await program.stop()
    },
  }
}

// A kubeconfig file for a bearer token on the test cluster (what a user of k8stail has).
export function writeTokenKubeconfig(c: TestCluster, dir: string, token: string, name = 'user'): string {
  const file = path.join(dir, `${name}.kubeconfig`)
  writeFileSync(file, kubeconfigYaml(c.server, c.caFile, token), { mode: 0o600 })
  return file
}
