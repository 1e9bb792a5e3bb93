// The whole of log-socket on the test control plane: the controller+relay program bound to the
// test host (so the API server's service proxy reaches its stream port through a Service named
// like the chart's) — startLogSocket — and, with startStack, the fluentd-faithful sender posting
// to the Outputs the controller makes. Used by the end-to-end tests and by the demo (which puts
// real fluentd in the sender's place when it can).
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node'
import pino, { type Logger } from 'pino'
import { KINDS, resourceOf } from '../api/kinds.ts'
import { type Program, startProgram } from '../controller/program/program.ts'
import type { TestCluster } from './cluster.ts'
import { freePort, kubeconfigYaml } from './control-plane.ts'
import { type FluentdSender, startFluentdSender } from './fluentd-sender.ts'
import type { FakePod, MessageFn } from './sample-records.ts'

// log-socket itself: the controller+relay program on the test host, behind its Service.
export interface LogSocket {
  namespace: string // where the relay Service lives and (with scope) which LogTaps are reconciled
  service: string
  ports: { ingest: number; stream: number; ops: number }
  program: Program
  ingestKey: Uint8Array
  ingestBaseUrl: string // what the controller puts in Outputs (an in-cluster Service URL)
  // Maps such a URL to where the relay really listens (fluentd would resolve the Service).
  resolve(url: string): string
  restartProgram(): Promise<void> // stop and start the program on the same ports (a relay restart)
  stop(): Promise<void>
}

export interface LogSocketOptions {
  namespace: string
  kc?: KubeConfig // the program's identity (default: admin)
  scope?: string // reconcile only this namespace's LogTaps (default: namespace)
  logger?: Logger
}

// log-socket plus the fluentd-faithful sender posting to every Output it makes. No logging-operator
// runs here: the stack also plays its part as far as the controller sees it, with a Logging that
// covers the scope (a Flow no Logging renders never gets a Ready tap) and the status.active the
// operator writes on an Output it accepted. Tests of what logging-operator accepts run the real one.
export interface Stack extends LogSocket {
  sender: FluentdSender
}

export interface StackOptions extends LogSocketOptions {
  pods?: FakePod[]
  message?: MessageFn
  recordsPerChunk?: number
  flushIntervalMs?: number
  activationDelayMs?: number
}

export async function startLogSocket(c: TestCluster, o: LogSocketOptions): Promise<LogSocket> {
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
  // fluentd would resolve the Service name in-cluster; here the relay listens on the test host.
  const resolve = (url: string) => url.replace(`//${service}.${o.namespace}.svc:`, `//${c.testHost.ip}:`)
  return {
    namespace: o.namespace,
    service,
    ports,
    get program() {
      return program
    },
    ingestKey,
    ingestBaseUrl,
    resolve,
    async restartProgram() {
      await program.stop()
      program = await start()
    },
    async stop() {
      await program.stop()
    },
  }
}

// A Logging over `scope` with no logging-operator behind it: with the fluentd-shaped sender's
// `acceptOutputs` (which writes the operator's acceptance on each Output), it stands in for the
// operator, so taps in `scope` become Ready. Resolves with its removal.
export async function standInLogging(c: TestCluster, scope: string): Promise<() => Promise<void>> {
  const custom = c.kc.makeApiClient(CustomObjectsApi)
  const logging = { ...resourceOf('Logging'), name: `log-socket-stand-in-${scope}` }
  await custom.createClusterCustomObject({
    ...logging,
    body: {
      apiVersion: KINDS.Logging.apiVersion,
      kind: 'Logging',
      metadata: { name: logging.name, labels: { 'app.kubernetes.io/part-of': 'log-socket-tests' } },
      spec: { controlNamespace: scope, watchNamespaces: [scope] },
    },
  })
  return async () => {
    await custom.deleteClusterCustomObject(logging).catch((err: { code?: number }) => {
      if (err.code !== 404) throw err
    })
  }
}

export async function startStack(c: TestCluster, o: StackOptions): Promise<Stack> {
  const scope = o.scope ?? o.namespace
  const removeLogging = await standInLogging(c, scope)
  const ls = await startLogSocket(c, o).catch(async (err) => {
    await removeLogging()
    throw err
  })
  const sender = await startFluentdSender({
    acceptOutputs: true,
    kc: c.kc,
    namespace: scope,
    clusterOutputs: true,
    activationDelayMs: o.activationDelayMs ?? 500,
    flushIntervalMs: o.flushIntervalMs ?? 300,
    recordsPerChunk: o.recordsPerChunk ?? 4,
    ...(o.pods ? { pods: o.pods } : {}),
    ...(o.message ? { message: o.message } : {}),
    resolve: ls.resolve,
    allowHosts: [c.testHost.ip],
  }).catch(async (err) => {
    await ls.stop()
    await removeLogging()
    throw err
  })
  return Object.assign(ls, {
    sender,
    async stop() {
      await sender.stop()
      await ls.program.stop()
      await removeLogging()
    },
  })
}

// A kubeconfig file for a bearer token on the test cluster (what a user of k8stail has).
export function writeTokenKubeconfig(c: TestCluster, dir: string, token: string, name = 'user'): string {
  const file = path.join(dir, `${name}.kubeconfig`)
  writeFileSync(file, kubeconfigYaml(c.server, c.caFile, token), { mode: 0o600 })
  return file
}
