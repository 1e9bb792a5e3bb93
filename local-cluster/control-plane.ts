// Starts and stops a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)
// on loopback for the integration tests. Every process runs in its own process group and is
// recorded by PID in the state, so teardown kills exactly what the run started.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'

export interface ControlPlaneState {
  workDir: string
  server: string
  adminToken: string
  caFile: string
  kubeconfigPath: string
  binDir: string
  version: string
  pids: Record<string, number> // process name → PID (also its process group id)
  logs: Record<string, string> // process name → log file
}

export interface StartOptions {
  binDir: string
  version: string
  crdFiles: string[] // CRD YAML files installed before the controller-manager starts
  crds?: object[] // and CRD objects, likewise
  log?: (line: string) => void
}

const repoRoot = path.resolve(import.meta.dirname, '..')

// The Kubernetes version pinned in local-cluster/control-plane-binaries.sh, the one place it is set.
export function pinnedVersion(): string {
  const script = readFileSync(path.join(repoRoot, 'local-cluster', 'control-plane-binaries.sh'), 'utf8')
  const m = /^K8S_VERSION=(\S+)$/m.exec(script)
  if (!m?.[1]) throw new Error('K8S_VERSION not found in local-cluster/control-plane-binaries.sh')
  return m[1]
}

// Runs the build script (a cache hit after the first time) and returns the folder of binaries.
export function ensureBinaries(): string {
  const out = execFileSync('bash', [path.join(repoRoot, 'local-cluster', 'control-plane-binaries.sh')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  })
  const dir = out.trim().split('\n').pop()
  if (!dir || !existsSync(path.join(dir, 'kube-apiserver'))) {
    throw new Error(`control-plane-binaries.sh printed no usable folder (got ${JSON.stringify(dir)})`)
  }
  return dir
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

function launch(state: ControlPlaneState, name: string, bin: string, args: string[]): ChildProcess {
  const logFile = path.join(state.workDir, `${name}.log`)
  const fd = openSync(logFile, 'a')
  // detached: its own process group, so teardown can signal the group and nothing else.
  const child = spawn(path.join(state.binDir, bin), args, { detached: true, stdio: ['ignore', fd, fd] })
  closeSync(fd)
  child.unref()
  if (!child.pid) throw new Error(`could not start ${bin}`)
  state.pids[name] = child.pid
  state.logs[name] = logFile
  return child
}

interface HttpResult {
  status: number
  body: string
}

export function httpsRequest(
  url: string,
  o: { ca?: string; token?: string; method?: string; body?: string; contentType?: string } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {}
    if (o.token) headers.authorization = `Bearer ${o.token}`
    if (o.contentType) headers['content-type'] = o.contentType
    const req = https.request(
      url,
      { method: o.method ?? 'GET', ca: o.ca, headers, timeout: 30_000 },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d) => {
          body += d
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      },
    )
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)))
    req.on('error', reject)
    req.end(o.body)
  })
}

async function waitFor(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      if (await probe()) return
    } catch (err) {
      last = err
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? `: ${last}` : ''}`)
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

// True while `pid` runs a command under `binary` (a path or folder): never a process that reused the number.
export function runsBinary(pid: number, binary: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith(binary)
  } catch {
    return false
  }
}

function tail(file: string, lines = 25): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

function describeLogs(state: ControlPlaneState): string {
  return Object.entries(state.logs)
    .map(([name, file]) => `--- last lines of ${name} (${file}) ---\n${tail(file)}`)
    .join('\n')
}

export async function startControlPlane(o: StartOptions): Promise<ControlPlaneState> {
  const log = o.log ?? (() => {})
  const workDir = mkdtempSync(path.join(tmpdir(), 'log-socket-cp-'))
  const state: ControlPlaneState = {
    workDir,
    server: '',
    adminToken: randomBytes(24).toString('hex'),
    caFile: path.join(workDir, 'pki', 'apiserver.crt'),
    kubeconfigPath: path.join(workDir, 'kubeconfig'),
    binDir: o.binDir,
    version: o.version,
    pids: {},
    logs: {},
  }
  const started = Date.now()
  try {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const saKey = path.join(workDir, 'sa.key')
    writeFileSync(saKey, privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 })
    const tokens = path.join(workDir, 'tokens.csv')
    writeFileSync(tokens, `${state.adminToken},admin,admin-uid,"system:masters"\n`, { mode: 0o600 })

    // etcd
    const etcdClient = await freePort()
    const etcdPeer = await freePort()
    launch(state, 'etcd', 'etcd', [
      `--data-dir=${path.join(workDir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ])
    await waitFor('etcd /health', 30_000, async () => {
      if (!isAlive(state.pids.etcd!)) throw new Error('etcd exited')
      const r = await fetch(`http://127.0.0.1:${etcdClient}/health`)
      return r.ok
    })
    log(`etcd ready in ${Date.now() - started} ms`)

    // kube-apiserver
    const port = await freePort()
    state.server = `https://127.0.0.1:${port}`
    launch(state, 'kube-apiserver', 'kube-apiserver', [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      '--advertise-address=127.0.0.1',
      '--endpoint-reconciler-type=none',
      `--cert-dir=${path.join(workDir, 'pki')}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      `--service-account-issuer=${state.server}`,
      `--service-account-key-file=${saKey}`,
      `--service-account-signing-key-file=${saKey}`,
      `--token-auth-file=${tokens}`,
      '--authorization-mode=RBAC',
      '--allow-privileged=true',
      '--disable-admission-plugins=ServiceAccount',
      '--enable-priority-and-fairness=false',
    ])
    await waitFor('kube-apiserver /readyz', 180_000, async () => {
      if (!isAlive(state.pids['kube-apiserver']!)) throw new Error('kube-apiserver exited')
      if (!existsSync(state.caFile)) return false
      const ca = readFileSync(state.caFile, 'utf8')
      const r = await httpsRequest(`${state.server}/readyz`, { ca, token: state.adminToken })
      return r.status === 200
    })
    const ca = readFileSync(state.caFile, 'utf8')
    await waitFor('namespace default', 60_000, async () => {
      const r = await httpsRequest(`${state.server}/api/v1/namespaces/default`, {
        ca,
        token: state.adminToken,
      })
      return r.status === 200
    })
    log(`kube-apiserver ready in ${Date.now() - started} ms`)
    writeFileSync(state.kubeconfigPath, kubeconfigYaml(state.server, state.caFile, state.adminToken), {
      mode: 0o600,
    })

    // CRDs before the controller-manager: its garbage collector reads discovery at start.
    await installCrds(state, o.crdFiles, o.crds ?? [])
    log(`CRDs installed in ${Date.now() - started} ms`)

    launch(state, 'kube-controller-manager', 'kube-controller-manager', [
      `--kubeconfig=${state.kubeconfigPath}`,
      '--leader-elect=false',
      '--use-service-account-credentials=false',
      '--secure-port=0',
      '--controllers=garbage-collector-controller,namespace-controller,clusterrole-aggregation-controller',
    ])
    await waitFor('kube-controller-manager to aggregate the admin ClusterRole', 60_000, async () => {
      if (!isAlive(state.pids['kube-controller-manager']!)) throw new Error('kube-controller-manager exited')
      const r = await httpsRequest(`${state.server}/apis/rbac.authorization.k8s.io/v1/clusterroles/admin`, {
        ca,
        token: state.adminToken,
      })
      return r.status === 200 && (JSON.parse(r.body).rules?.length ?? 0) > 0
    })
    log(`control plane ready in ${Date.now() - started} ms`)
    return state
  } catch (err) {
    const logs = describeLogs(state)
    await stopControlPlane(state)
    throw new Error(`control plane failed to start: ${(err as Error).message}\n${logs}`)
  }
}

export function kubeconfigYaml(server: string, caFile: string, token: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: ${server}
    certificate-authority: ${caFile}
users:
- name: admin
  user:
    token: ${token}
contexts:
- name: test
  context: {cluster: test, user: admin, namespace: default}
current-context: test
`
}

async function installCrds(state: ControlPlaneState, files: string[], objects: object[]): Promise<void> {
  const { parseAllDocuments } = await import('yaml')
  const ca = readFileSync(state.caFile, 'utf8')
  const names: string[] = []
  const sources = [
    ...files.map((file) => ({
      file,
      docs: parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS()),
    })),
    { file: '(built-in CRDs)', docs: objects },
  ]
  for (const { file, docs } of sources) {
    for (const crd of docs as { kind?: string; metadata: { name: string } }[]) {
      if (crd?.kind !== 'CustomResourceDefinition') continue
      const r = await httpsRequest(`${state.server}/apis/apiextensions.k8s.io/v1/customresourcedefinitions`, {
        ca,
        token: state.adminToken,
        method: 'POST',
        body: JSON.stringify(crd),
        contentType: 'application/json',
      })
      if (r.status !== 201 && r.status !== 409) {
        throw new Error(`installing CRD from ${file} failed (${r.status}): ${r.body.slice(0, 500)}`)
      }
      names.push(crd.metadata.name)
    }
  }
  for (const name of names) {
    await waitFor(`CRD ${name} Established`, 90_000, async () => {
      const r = await httpsRequest(
        `${state.server}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
        {
          ca,
          token: state.adminToken,
        },
      )
      const conds: { type: string; status: string }[] = JSON.parse(r.body).status?.conditions ?? []
      return conds.some((c) => c.type === 'Established' && c.status === 'True')
    })
  }
}

// SIGTERM each recorded process group, then SIGKILL what is left, then remove the work dir.
export async function stopControlPlane(state: ControlPlaneState): Promise<void> {
  const order = ['kube-controller-manager', 'kube-apiserver', 'etcd']
  const names = [
    ...order.filter((n) => n in state.pids),
    ...Object.keys(state.pids).filter((n) => !order.includes(n)),
  ]
  for (const name of names) {
    const pid = state.pids[name]!
    signalGroup(pid, 'SIGTERM')
    const deadline = Date.now() + 10_000
    while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    signalGroup(pid, 'SIGKILL')
  }
  rmSync(state.workDir, { recursive: true, force: true })
}

// The synchronous variant, for process 'exit' handlers.
export function stopControlPlaneSync(state: ControlPlaneState): void {
  for (const pid of Object.values(state.pids)) signalGroup(pid, 'SIGKILL')
  rmSync(state.workDir, { recursive: true, force: true })
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {
    // already gone
  }
}
