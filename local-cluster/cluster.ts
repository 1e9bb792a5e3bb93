// The test-facing view of the run's control plane. `npm test` (test/support/run-tests.ts) starts
// one control plane for the whole run and passes its state file in LOG_SOCKET_TEST_CLUSTER; a test
// file run on its own (`tap test/x.test.ts`) starts a private one that dies with the process.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node'
import {
  type ControlPlaneState,
  ensureBinaries,
  pinnedVersion,
  startControlPlane,
  stopControlPlane,
  stopControlPlaneSync,
} from './control-plane.ts'
import { loggingOperatorCrds } from './logging-operator-crds.ts'
import { locateParts } from './real-pipeline/parts.ts'
import { type PipelineState, stopPipeline, stopPipelineSync } from './real-pipeline/pipeline.ts'
import { reapStale, register, unregister } from './run-registry.ts'
import {
  createTestHost,
  type ExposeOptions,
  exposeService,
  removeTestHost,
  type TestHostState,
} from './test-host.ts'

export interface ClusterState {
  controlPlane: ControlPlaneState
  testHost: TestHostState
  registration?: string // see run-registry.ts
  loggingCrds?: string // the folder of logging-operator CRDs installed at start (absent: our own)
  pipeline?: PipelineState // the real logging-operator, when started (real-pipeline/pipeline.ts)
}

interface TestHost {
  ip: string
  exposeService(o: ExposeOptions): Promise<void>
}

export interface TestCluster {
  server: string
  kubeconfigPath: string
  caFile: string
  kc: KubeConfig
  version: string
  newNamespace(prefix?: string): Promise<string>
  serviceAccountToken(namespace: string, name: string, expirationSeconds?: number): Promise<string>
  kubeConfigForToken(token: string): KubeConfig
  kubectl(
    args: string[],
    opts?: { input?: string },
  ): Promise<{ code: number; stdout: string; stderr: string }>
  testHost: TestHost
  registration?: string
  loggingCrds?: string
  pipeline?: PipelineState
}

export const CLUSTER_ENV = 'LOG_SOCKET_TEST_CLUSTER'
const repoRoot = path.resolve(import.meta.dirname, '..')

// The logging-operator CRDs: the folder LOG_SOCKET_LOGGING_CRDS names (when set, it alone counts);
// else the real logging-operator's own (newer, and what it needs when the run starts it); else
// ../shared/logging-operator-crds beside the repo; undefined when there are none.
function loggingCrdDir(): string | undefined {
  const explicit = process.env.LOG_SOCKET_LOGGING_CRDS
  const dirs = explicit
    ? [explicit]
    : [locateParts().crdDir, path.resolve(repoRoot, '..', 'shared', 'logging-operator-crds')]
  return dirs.find(existsDir)
}

function existsDir(dir: string): boolean {
  try {
    return readdir(dir).length > 0
  } catch {
    return false
  }
}

function readdir(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.yaml'))
}

export interface CrdSources {
  files: string[]
  objects: object[]
  logging: string // where the logging-operator kinds come from, for the log
}

// Our LogTap CRD plus logging-operator's kinds: its own CRDs when present, else the minimal
// structural ones this repository carries (local-cluster/logging-operator-crds.ts).
export function crdSources(): CrdSources {
  const own = path.join(repoRoot, 'crds')
  const files = existsDir(own) ? readdir(own).map((f) => path.join(own, f)) : []
  const logging = loggingCrdDir()
  if (logging)
    return { files: [...readdir(logging).map((f) => path.join(logging, f)), ...files], objects: [], logging }
  return {
    files,
    objects: loggingOperatorCrds(),
    logging: 'the minimal CRDs in local-cluster/logging-operator-crds.ts',
  }
}

export async function startCluster(log?: (line: string) => void): Promise<ClusterState> {
  reapStale(log)
  const testHost = createTestHost()
  try {
    const crds = crdSources()
    log?.(`logging-operator CRDs: ${crds.logging}`)
    const controlPlane = await startControlPlane({
      binDir: ensureBinaries(),
      version: pinnedVersion(),
      crdFiles: crds.files,
      crds: crds.objects,
      log,
    })
    return {
      controlPlane,
      testHost,
      registration: register(controlPlane, testHost),
      ...(crds.objects.length ? {} : { loggingCrds: crds.logging }),
    }
  } catch (err) {
    removeTestHost(testHost)
    throw err
  }
}

export async function stopCluster(state: ClusterState): Promise<void> {
  if (state.pipeline) await stopPipeline(state.pipeline, state.registration)
  await stopControlPlane(state.controlPlane)
  removeTestHost(state.testHost)
  unregister(state.registration)
}

// For exit and signal handlers, where nothing asynchronous runs.
export function stopClusterSync(state: ClusterState): void {
  if (state.pipeline) stopPipelineSync(state.pipeline, state.registration)
  stopControlPlaneSync(state.controlPlane)
  removeTestHost(state.testHost)
  unregister(state.registration)
}

let cached: Promise<TestCluster> | undefined

export function getCluster(): Promise<TestCluster> {
  cached ??= load()
  return cached
}

async function load(): Promise<TestCluster> {
  const file = process.env[CLUSTER_ENV]
  let state: ClusterState
  if (file) {
    state = JSON.parse(readFileSync(file, 'utf8'))
  } else {
    const own = await startCluster()
    state = own
    process.on('exit', () => stopClusterSync(own))
    // A test file killed by tap's timeout gets SIGTERM: clean up before going.
    for (const [sig, code] of [
      ['SIGTERM', 143],
      ['SIGINT', 130],
      ['SIGHUP', 129],
    ] as const) {
      process.once(sig, () => {
        stopClusterSync(own)
        process.exit(code)
      })
    }
    // Processes this file starts (a test's child test file, say) share it, as under `npm test`.
    const stateFile = path.join(own.controlPlane.workDir, 'cluster.json')
    writeFileSync(stateFile, JSON.stringify(own))
    process.env[CLUSTER_ENV] = stateFile
  }
  return view(state)
}

export function view(state: ClusterState): TestCluster {
  const cp = state.controlPlane
  const kc = new KubeConfig()
  kc.loadFromFile(cp.kubeconfigPath)
  const core = kc.makeApiClient(CoreV1Api)
  return {
    server: cp.server,
    kubeconfigPath: cp.kubeconfigPath,
    caFile: cp.caFile,
    kc,
    version: cp.version,
    async newNamespace(prefix = 't') {
      const name = `${prefix
        .toLowerCase()
        .replace(/[^a-z0-9-]/g, '-')
        .slice(0, 40)}-${randomBytes(3).toString('hex')}`
      await core.createNamespace({ body: { metadata: { name, labels: { 'log-socket.dev/test': 'true' } } } })
      return name
    },
    async serviceAccountToken(namespace, name, expirationSeconds = 3600) {
      try {
        await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } })
      } catch (err) {
        if ((err as { code?: number }).code !== 409) throw err
      }
      const tr = await core.createNamespacedServiceAccountToken({
        namespace,
        name,
        body: { spec: { audiences: [], expirationSeconds } },
      })
      if (!tr.status?.token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`)
      return tr.status.token
    },
    kubeConfigForToken(token) {
      const k = new KubeConfig()
      k.loadFromOptions({
        clusters: [{ name: 'test', server: cp.server, caFile: cp.caFile, skipTLSVerify: false }],
        users: [{ name: 'user', token }],
        contexts: [{ name: 'test', cluster: 'test', user: 'user' }],
        currentContext: 'test',
      })
      return k
    },
    kubectl(args, opts = {}) {
      return new Promise((resolve) => {
        const child = execFile(
          path.join(cp.binDir, 'kubectl'),
          [`--kubeconfig=${cp.kubeconfigPath}`, ...args],
          { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
          (err, stdout, stderr) => {
            const code = err ? ((err as { code?: number }).code ?? 1) : 0
            resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr })
          },
        )
        child.stdin?.end(opts.input ?? '')
      })
    },
    testHost: {
      ip: state.testHost.ip,
      exposeService: (o) => exposeService(kc, state.testHost, o),
    },
    ...(state.registration ? { registration: state.registration } : {}),
    ...(state.loggingCrds ? { loggingCrds: state.loggingCrds } : {}),
    ...(state.pipeline ? { pipeline: state.pipeline } : {}),
  }
}
