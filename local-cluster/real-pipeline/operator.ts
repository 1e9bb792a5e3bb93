// The real logging-operator manager, run against a local control plane: its own CRDs applied first
// (server-side: they are newer than the reference copies the control plane starts with), then the
// manager in its own process group, recorded by PID so teardown (or the next run's reaper) kills
// exactly it.
//
// It must not disturb tests that do not want it. It watches Loggings, Flows and Outputs in every
// namespace, and a Logging with no watchNamespaces makes it write the status of every Flow and
// Output in the cluster. So it runs as a ServiceAccount that may read everything but write nowhere:
// a test that wants it creates its Logging through logging.ts, which grants it write access to that
// Logging and to the namespaces the Logging watches and controls, nothing else. Other tests'
// Loggings then only earn "forbidden" lines in its log.
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { CoreV1Api, type KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node'
import { freePort, isAlive, kubeconfigYaml, runsBinary } from '../control-plane.ts'
import { buildManager, locateParts } from './parts.ts'

export interface OperatorState {
  pid: number // also its process group id
  manager: string // the binary; the reaper checks a PID's command line against it
  workDir: string
  logFile: string
  kubeconfigPath: string // the operator's own (restricted) identity
  metricsPort: number
}

// Where the operator's identity lives, and the ClusterRoles tests bind to grant it write access.
export const OPERATOR_NAMESPACE = 'log-socket-logging-operator'
export const OPERATOR_SERVICE_ACCOUNT = 'logging-operator'
export const WRITER_CLUSTER_ROLE = 'log-socket-test:logging-operator:writer'
const READER_CLUSTER_ROLE = 'log-socket-test:logging-operator:reader'

type Kubectl = (args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>

export interface StartOperatorOptions {
  kc: KubeConfig // admin
  server: string
  caFile: string
  kubectl: Kubectl // as admin, for the server-side apply
  loggingCrds?: string // the CRD folder the control plane started with: no apply when it is the operator's
  log?: (line: string) => void
  onStarted?: (state: OperatorState) => void // e.g. register it before waiting for it
}

export async function startOperator(o: StartOperatorOptions): Promise<OperatorState> {
  const log = o.log ?? (() => {})
  const t0 = Date.now()
  const manager = await buildManager(log)
  if (o.loggingCrds !== locateParts().crdDir) {
    await applyOperatorCrds(o.kubectl)
    log(`logging-operator CRDs applied in ${Date.now() - t0} ms`)
  }
  const token = await operatorIdentity(o.kc)
  const workDir = mkdtempSync(path.join(tmpdir(), 'log-socket-operator-'))
  const kubeconfigPath = path.join(workDir, 'kubeconfig')
  writeFileSync(kubeconfigPath, kubeconfigYaml(o.server, o.caFile, token), { mode: 0o600 })
  const logFile = path.join(workDir, 'manager.log')
  const metricsPort = await freePort()
  const fd = openSync(logFile, 'a')
  let child: ChildProcess
  try {
    child = spawn(manager, [`--metrics-addr=127.0.0.1:${metricsPort}`, '--enable-leader-election=false'], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, KUBECONFIG: kubeconfigPath, ENABLE_WEBHOOKS: 'false' },
    })
  } finally {
    closeSync(fd)
  }
  child.unref()
  if (!child.pid) {
    rmSync(workDir, { recursive: true, force: true })
    throw new Error(`could not start ${manager}`)
  }
  const state: OperatorState = { pid: child.pid, manager, workDir, logFile, kubeconfigPath, metricsPort }
  o.onStarted?.(state)
  try {
    await waitForLog(state, /"Starting workers".*"controller":"logging"/, 60_000)
  } catch (err) {
    const tail = describeOperatorLog(state)
    await stopOperator(state)
    throw new Error(`logging-operator failed to start: ${(err as Error).message}\n${tail}`)
  }
  log(`logging-operator running (pid ${state.pid}) ${Date.now() - t0} ms after the build check`)
  return state
}

async function applyOperatorCrds(kubectl: Kubectl): Promise<void> {
  const { crdDir } = locateParts()
  for (const args of [
    ['apply', '--server-side', '--force-conflicts', '--field-manager=log-socket-local-cluster', '-f', crdDir],
    ['wait', '--for=condition=Established', '--timeout=90s', '-f', crdDir],
  ]) {
    const r = await kubectl(args)
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr || r.stdout}`)
  }
}

// Read everything (the manager's caches list and watch cluster-wide), write nothing but the
// cluster-scoped RBAC a fluentd Logging gets; write access elsewhere comes from grants (logging.ts).
async function operatorIdentity(kc: KubeConfig): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api)
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api)
  const exists = (err: unknown) => (err as { code?: number }).code === 409
  const create = async (f: () => Promise<unknown>) => {
    try {
      await f()
    } catch (err) {
      if (!exists(err)) throw err
    }
  }
  const labels = {
    'app.kubernetes.io/name': 'logging-operator',
    'app.kubernetes.io/part-of': 'log-socket-tests',
  }
  await create(() => core.createNamespace({ body: { metadata: { name: OPERATOR_NAMESPACE, labels } } }))
  await create(() =>
    core.createNamespacedServiceAccount({
      namespace: OPERATOR_NAMESPACE,
      body: { metadata: { name: OPERATOR_SERVICE_ACCOUNT, labels } },
    }),
  )
  await create(() =>
    rbac.createClusterRole({
      body: {
        metadata: { name: READER_CLUSTER_ROLE, labels },
        rules: [
          { apiGroups: ['*'], resources: ['*'], verbs: ['get', 'list', 'watch'] },
          {
            apiGroups: ['rbac.authorization.k8s.io'],
            resources: ['clusterroles', 'clusterrolebindings'],
            verbs: ['create', 'update', 'patch', 'delete'],
          },
        ],
      },
    }),
  )
  await create(() =>
    rbac.createClusterRole({
      body: {
        metadata: { name: WRITER_CLUSTER_ROLE, labels },
        rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['create', 'update', 'patch', 'delete'] }],
      },
    }),
  )
  await create(() =>
    rbac.createClusterRoleBinding({
      body: {
        metadata: { name: READER_CLUSTER_ROLE, labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: READER_CLUSTER_ROLE },
        subjects: [{ kind: 'ServiceAccount', name: OPERATOR_SERVICE_ACCOUNT, namespace: OPERATOR_NAMESPACE }],
      },
    }),
  )
  const tr = await core.createNamespacedServiceAccountToken({
    namespace: OPERATOR_NAMESPACE,
    name: OPERATOR_SERVICE_ACCOUNT,
    body: { spec: { audiences: [], expirationSeconds: 7 * 24 * 3600 } },
  })
  if (!tr.status?.token) throw new Error('TokenRequest for the logging-operator returned no token')
  return tr.status.token
}

async function waitForLog(state: OperatorState, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (!isAlive(state.pid)) throw new Error('the manager exited')
    if (pattern.test(readLog(state))) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${pattern} in ${state.logFile}`)
}

function readLog(state: OperatorState): string {
  try {
    return readFileSync(state.logFile, 'utf8')
  } catch {
    return ''
  }
}

// The log's last lines, each cut short (its JSON lines carry whole stack traces).
export function describeOperatorLog(state: OperatorState, lines = 30): string {
  const text = readLog(state).trimEnd()
  const tail = text
    ? text
        .split('\n')
        .slice(-lines)
        .map((l) => (l.length > 600 ? `${l.slice(0, 600)}…` : l))
        .join('\n')
    : '(no log)'
  return `--- last lines of the logging-operator (${state.logFile}) ---\n${tail}`
}

export async function stopOperator(state: OperatorState): Promise<void> {
  signal(state, 'SIGTERM')
  const deadline = Date.now() + 10_000
  while (isAlive(state.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  signal(state, 'SIGKILL')
  rmSync(state.workDir, { recursive: true, force: true })
}

export function stopOperatorSync(state: OperatorState): void {
  signal(state, 'SIGKILL')
  rmSync(state.workDir, { recursive: true, force: true })
}

function signal(state: OperatorState, sig: NodeJS.Signals): void {
  if (!runsBinary(state.pid, state.manager)) return
  try {
    process.kill(-state.pid, sig)
  } catch {
    // already gone
  }
}
