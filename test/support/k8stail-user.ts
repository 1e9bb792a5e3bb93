// A person using k8stail in a cluster test: a ServiceAccount `viewer` with the tapper rules in one
// namespace (what the chart's tapper role grants there: LogTaps, their Leases and the relay's
// proxy), and k8stail run as a child process with that identity's kubeconfig (written by the
// test: local-cluster/stack.ts's writeTokenKubeconfig).
import { type ChildProcess, spawn } from 'node:child_process'
import path from 'node:path'
import { RbacAuthorizationV1Api, type V1PolicyRule } from '@kubernetes/client-node'
import { GROUP, PLURAL } from '../../api/logtap.ts'
import type { TestCluster } from '../../local-cluster/cluster.ts'
import { until as waitUntil } from './until.ts'

const repoRoot = path.resolve(import.meta.dirname, '..', '..')

export interface ProxyAccess {
  services: string[] // `<service>:<port>` names for services/proxy
  pods?: string[] // `<pod>:<port>` names for pods/proxy (relay replicas)
}

// Grants `viewer` the tapper rules in `ns`; resolves with its token.
export async function grantTapper(
  c: TestCluster,
  ns: string,
  proxy: ProxyAccess = { services: ['log-socket:10001'] },
): Promise<string> {
  const rules: V1PolicyRule[] = [
    { apiGroups: [GROUP], resources: [PLURAL], verbs: ['create', 'get', 'list', 'watch', 'delete'] },
    {
      apiGroups: ['coordination.k8s.io'],
      resources: ['leases'],
      verbs: ['create', 'get', 'update', 'delete'],
    },
    { apiGroups: [''], resources: ['services/proxy'], verbs: ['get'], resourceNames: proxy.services },
  ]
  if (proxy.pods?.length)
    rules.push({ apiGroups: [''], resources: ['pods/proxy'], verbs: ['get'], resourceNames: proxy.pods })
  const rbac = c.kc.makeApiClient(RbacAuthorizationV1Api)
  await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: 'tapper' }, rules } })
  await rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: 'viewer-taps' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'tapper' },
      subjects: [{ kind: 'ServiceAccount', name: 'viewer', namespace: ns }],
    },
  })
  return c.serviceAccountToken(ns, 'viewer')
}

export interface K8stailRun {
  child: ChildProcess
  out: () => string
  err: () => string
  exit: Promise<number> // the exit code (128 when killed by a signal)
  exited: () => boolean
  kill: (sig: NodeJS.Signals) => void // no-op once it exited
}

// `k8stail --kubeconfig <kubeconfig> -n <relayNamespace> ...args`, colours off.
export function k8stail(kubeconfig: string, relayNamespace: string, args: string[]): K8stailRun {
  const child = spawn(
    path.join(repoRoot, 'node_modules', '.bin', 'node'),
    [path.join(repoRoot, 'cli', 'main.ts'), '--kubeconfig', kubeconfig, '-n', relayNamespace, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
  )
  let out = ''
  let err = ''
  let done = false
  child.stdout!.setEncoding('utf8').on('data', (d) => {
    out += d
  })
  child.stderr!.setEncoding('utf8').on('data', (d) => {
    err += d
  })
  const exit = new Promise<number>((r) =>
    child.on('exit', (code, sig) => {
      done = true
      r(code ?? (sig ? 128 : 1))
    }),
  )
  return {
    child,
    out: () => out,
    err: () => err,
    exit,
    exited: () => done,
    kill: (sig) => {
      if (!done) child.kill(sig)
    },
  }
}

// Waits for `f` to return something truthy; fails after `ms`, or at once when `run` exited, with
// its stderr.
export async function until<T>(
  what: string,
  ms: number,
  f: () => T | undefined | false | Promise<T | undefined | false>,
  run?: K8stailRun,
): Promise<T> {
  const withStderr = (err: Error) =>
    new Error(`${err.message}${run ? `\nk8stail stderr:\n${run.err()}` : ''}`)
  return waitUntil(
    what,
    async () => {
      const v = await f()
      if (!v && run?.exited()) throw new Error(`${what}: k8stail exited`)
      return v
    },
    ms,
    200,
  ).catch((err: Error) => {
    throw withStderr(err)
  }) as Promise<T>
}
