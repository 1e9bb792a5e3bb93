// The chart as `helm lint` and `helm template` see it: no cluster needed. What is asserted is what a
// cluster would receive: RBAC exactly as files/controller-rules.yaml, one ServiceAccount name
// everywhere, ports/probes/securityContext, and the optional objects only when switched on.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { parseConfig } from '../controller/program/config.ts'
import { chartDir, find, helm, type K8sObject, provideHelm, renderChart, repoRoot } from './support/helm.ts'

interface Rule {
  apiGroups?: string[]
  resources?: string[]
  verbs: string[]
  resourceNames?: string[]
}
interface Container {
  name: string
  image: string
  args: string[]
  env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[]
  ports: { name: string; containerPort: number }[]
  livenessProbe: { httpGet: { path: string; port: string } }
  readinessProbe: { httpGet: { path: string; port: string } }
  resources: { requests?: Record<string, string>; limits?: Record<string, string> }
  securityContext: Record<string, unknown>
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[]
}
interface PodSpec {
  serviceAccountName: string
  securityContext: Record<string, unknown>
  containers: Container[]
  volumes: { name: string; secret?: { secretName: string } }[]
}
const podSpec = (o: K8sObject) => (o['spec'] as { template: { spec: PodSpec } }).template.spec
const podLabels = (o: K8sObject) =>
  (o['spec'] as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels
const rules = (o: K8sObject) => o['rules'] as Rule[]
const arg = (c: Container, flag: string) =>
  c.args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1)

const controllerRules = parse(
  readFileSync(join(chartDir, 'files', 'controller-rules.yaml'), 'utf8'),
) as Rule[]
const relayRules = parse(readFileSync(join(chartDir, 'files', 'relay-rules.yaml'), 'utf8')) as Rule[]

t.before(async () => {
  await provideHelm(t)
})

// Every string anywhere in the RBAC rules: a '*' in any of them is a wildcard grant.
function ruleStrings(objects: K8sObject[]): string[] {
  return objects
    .filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')
    .flatMap((o) => rules(o).flatMap((r) => [...(r.apiGroups ?? []), ...(r.resources ?? []), ...r.verbs]))
}

function lintProblems(output: string): string[] {
  return output.split('\n').filter((l) => /\[(WARNING|ERROR)\]/.test(l))
}

t.test('helm lint is clean with default and non-default values', async (t) => {
  const plain = await helm(['lint', '--strict', chartDir])
  t.equal(plain.code, 0, 'helm lint --strict passes', { output: plain.stdout + plain.stderr })
  t.same(lintProblems(plain.stdout), [], 'no warnings or errors')
  const custom = await helm([
    'lint',
    '--strict',
    chartDir,
    '--set',
    'networkPolicy.enabled=true,serviceMonitor.enabled=true,rbac.tapper.aggregateToEdit=true,replicas=2',
    '--set',
    'ingestKey.existingSecret=my-key,serviceAccount.name=tap-controller,service.name=logs',
  ])
  t.equal(custom.code, 0, 'helm lint --strict passes with non-default values', {
    output: custom.stdout + custom.stderr,
  })
  t.same(lintProblems(custom.stdout), [])
})

t.test('default values: the objects a plain install creates', async (t) => {
  const objects = await renderChart()
  const kinds = objects
    .filter((o) => o.kind !== 'CustomResourceDefinition')
    .map((o) => `${o.kind}/${o.metadata.name}`)
  t.same(kinds.sort(), [
    'ClusterRole/log-socket-controller',
    'ClusterRole/log-socket-tapper',
    'ClusterRoleBinding/log-socket-controller',
    'PodDisruptionBudget/log-socket',
    'Role/log-socket-relay',
    'RoleBinding/log-socket-relay',
    'Secret/log-socket-ingest-key',
    'Service/log-socket',
    'Service/log-socket-replicas',
    'ServiceAccount/log-socket',
    'StatefulSet/log-socket',
  ])
  for (const o of objects.filter((o) => o.kind !== 'CustomResourceDefinition')) {
    const l = o.metadata.labels ?? {}
    t.equal(l['app.kubernetes.io/name'], 'log-socket', `${o.kind} name label`)
    t.equal(l['app.kubernetes.io/instance'], 'log-socket', `${o.kind} instance label`)
    t.equal(l['app.kubernetes.io/managed-by'], 'Helm', `${o.kind} managed-by label`)
    t.equal(l['app.kubernetes.io/version'], '0.1.0', `${o.kind} version label`)
    if (o.kind !== 'ClusterRole' && o.kind !== 'ClusterRoleBinding')
      t.equal(o.metadata.namespace, 'log-socket')
  }

  // RBAC: the controller role is the rules file, nothing is a wildcard, and the binding names the
  // ServiceAccount the pods run as (the original bound another name).
  const controllerRole = find(objects, 'ClusterRole', 'log-socket-controller')
  t.same(
    rules(controllerRole),
    controllerRules,
    'controller ClusterRole rules equal files/controller-rules.yaml',
  )
  t.notOk(
    ruleStrings(objects).some((s) => s.includes('*')),
    'no * in any rule',
  )
  const sa = find(objects, 'ServiceAccount')
  const binding = find(objects, 'ClusterRoleBinding') as K8sObject & {
    roleRef: { kind: string; name: string }
    subjects: { kind: string; name: string; namespace: string }[]
  }
  t.same(binding.roleRef, {
    apiGroup: 'rbac.authorization.k8s.io',
    kind: 'ClusterRole',
    name: 'log-socket-controller',
  })
  t.same(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: 'log-socket' }])
  const deployment = find(objects, 'StatefulSet')
  const pod = podSpec(deployment)
  t.equal(pod.serviceAccountName, sa.metadata.name)
  // The relay's Role: files/relay-rules.yaml, in the release namespace, bound to the same account.
  t.same(
    rules(find(objects, 'Role', 'log-socket-relay')),
    relayRules,
    'relay Role rules equal files/relay-rules.yaml',
  )
  const relayBinding = find(objects, 'RoleBinding', 'log-socket-relay') as K8sObject & {
    roleRef: { kind: string; name: string }
    subjects: { kind: string; name: string; namespace: string }[]
  }
  t.same(relayBinding.roleRef, {
    apiGroup: 'rbac.authorization.k8s.io',
    kind: 'Role',
    name: 'log-socket-relay',
  })
  t.same(relayBinding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: 'log-socket' }])

  // Replicas: a StatefulSet of 2 (stable pod names) governed by a headless Service, a PDB taking
  // one at a time, spread over nodes and zones; every replica watches the Service's endpoints.
  const sts = deployment['spec'] as {
    replicas: number
    serviceName: string
    podManagementPolicy: string
  }
  t.equal(sts.replicas, 2, '2 replicas by default')
  t.equal(sts.serviceName, 'log-socket-replicas')
  t.equal(sts.podManagementPolicy, 'Parallel')
  const headless = find(objects, 'Service', 'log-socket-replicas') as K8sObject & {
    spec: { clusterIP: string; selector: Record<string, string> }
  }
  t.equal(headless.spec.clusterIP, 'None')
  const pdb = find(objects, 'PodDisruptionBudget') as K8sObject & {
    spec: { maxUnavailable: number; selector: { matchLabels: Record<string, string> } }
  }
  t.equal(pdb.spec.maxUnavailable, 1)
  for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels))
    t.equal(podLabels(deployment)[k], v, `the PDB selects the pods by ${k}`)
  const spread = (pod as PodSpec & { topologySpreadConstraints: Record<string, unknown>[] })
    .topologySpreadConstraints
  t.same(
    spread.map((s) => [s['topologyKey'], s['maxSkew'], s['whenUnsatisfiable']]),
    [
      ['kubernetes.io/hostname', 1, 'ScheduleAnyway'],
      ['topology.kubernetes.io/zone', 1, 'ScheduleAnyway'],
    ],
  )
  t.same((spread[0]!['labelSelector'] as { matchLabels: unknown }).matchLabels, pdb.spec.selector.matchLabels)
  t.ok(
    ((pod as PodSpec & { terminationGracePeriodSeconds: number }).terminationGracePeriodSeconds ?? 30) > 5,
    'the grace period outlasts the shutdown delay',
  )

  // The user role: LogTaps, Leases, and the proxy to the stream port only, not aggregated.
  const tapper = find(objects, 'ClusterRole', 'log-socket-tapper')
  t.same(rules(tapper), [
    {
      apiGroups: ['logsocket.dev'],
      resources: ['logtaps'],
      verbs: ['create', 'get', 'list', 'watch', 'delete'],
    },
    {
      apiGroups: ['coordination.k8s.io'],
      resources: ['leases'],
      verbs: ['create', 'get', 'update', 'delete'],
    },
    {
      apiGroups: [''],
      resources: ['services/proxy'],
      verbs: ['get'],
      resourceNames: [
        'log-socket:10001',
        'log-socket:http-stream',
        'http:log-socket:10001',
        'http:log-socket:http-stream',
      ],
    },
    {
      apiGroups: [''],
      resources: ['pods/proxy'],
      verbs: ['get'],
      resourceNames: ['log-socket-0:10001', 'log-socket-1:10001'],
    },
  ])
  t.notOk(
    Object.keys(tapper.metadata.labels ?? {}).some((k) =>
      k.startsWith('rbac.authorization.k8s.io/aggregate'),
    ),
    'not aggregated by default',
  )

  // Service: the CLI's defaults (log-socket/log-socket, stream 10001), ports named like the pod's.
  const service = find(objects, 'Service', 'log-socket') as K8sObject & {
    spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string }[] }
  }
  t.same(
    service.spec.ports.map((p) => [p.name, p.port, p.targetPort]),
    [
      ['http-ingest', 10000, 'http-ingest'],
      ['http-stream', 10001, 'http-stream'],
      ['http-ops', 8080, 'http-ops'],
    ],
  )
  for (const [k, v] of Object.entries(service.spec.selector))
    t.equal(podLabels(deployment)[k], v, `pods carry ${k}`)

  const c = pod.containers[0]!
  t.equal(pod.containers.length, 1)
  t.equal(c.image, 'log-socket:0.1.0', 'image tag defaults to appVersion')
  t.same(
    c.ports.map((p) => [p.name, p.containerPort]),
    [
      ['http-ingest', 10000],
      ['http-stream', 10001],
      ['http-ops', 8080],
    ],
  )
  t.equal(arg(c, '--ingest-port'), '10000')
  t.equal(arg(c, '--stream-port'), '10001')
  t.equal(arg(c, '--ops-port'), '8080')
  t.equal(arg(c, '--ingest-base-url'), 'http://log-socket.log-socket.svc:10000')
  t.ok(c.args.includes('--leader-elect'), 'leader election on')
  t.equal(arg(c, '--log-level'), 'info')
  t.same(
    c.env.map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]),
    [
      ['POD_NAME', 'metadata.name'],
      ['POD_NAMESPACE', 'metadata.namespace'],
    ],
  )
  // The key file is on a read-only mount of the generated Secret.
  const keyFile = arg(c, '--ingest-key-file')!
  const mount = c.volumeMounts.find((m) => keyFile.startsWith(`${m.mountPath}/`))
  t.ok(mount?.readOnly, 'ingest key mounted read-only')
  const secret = find(objects, 'Secret') as K8sObject & { data: { key: string } }
  t.equal(pod.volumes.find((v) => v.name === mount?.name)?.secret?.secretName, secret.metadata.name)
  t.equal(Buffer.from(secret.data.key, 'base64').toString().length, 64, 'a 64-character generated key')

  t.same(c.livenessProbe.httpGet, { path: '/healthz', port: 'http-ops' })
  t.same(c.readinessProbe.httpGet, { path: '/readyz', port: 'http-ops' })
  t.ok(c.resources.requests?.['cpu'] && c.resources.requests?.['memory'], 'requests')
  t.ok(c.resources.limits?.['memory'], 'memory limit')
  t.match(pod.securityContext, {
    runAsNonRoot: true,
    runAsUser: 65532,
    seccompProfile: { type: 'RuntimeDefault' },
  })
  t.match(c.securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    privileged: false,
    capabilities: { drop: ['ALL'] },
  })
  t.notOk(
    objects.some((o) => o.kind === 'NetworkPolicy' || o.kind === 'ServiceMonitor'),
    'optional objects are off',
  )
})

t.test('non-default values reach every object that depends on them', async (t) => {
  const objects = await renderChart({
    release: 'tail',
    namespace: 'obs',
    values: {
      image: { repository: 'registry.example/log-socket', tag: 'dev', pullPolicy: 'Always' },
      replicas: 3,
      logLevel: 'debug',
      leaderElection: { enabled: false },
      ports: { ingest: 11000, stream: 11001, ops: 9090 },
      service: { name: 'logs' },
      serviceAccount: { name: 'tap-controller' },
      ingestKey: { existingSecret: 'my-key' },
      ingestBaseURL: 'http://logs.obs.svc.cluster.example:11000/',
      rbac: { tapper: { name: 'may-tap', aggregateToEdit: true } },
      networkPolicy: {
        enabled: true,
        ingestFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'fluent' } } }],
      },
      serviceMonitor: { enabled: true, additionalLabels: { release: 'prom' } },
    },
  })
  const sa = find(objects, 'ServiceAccount')
  t.equal(sa.metadata.name, 'tap-controller')
  const binding = find(objects, 'ClusterRoleBinding') as K8sObject & {
    subjects: { name: string; namespace: string }[]
  }
  t.same(
    binding.subjects.map((s) => `${s.namespace}/${s.name}`),
    ['obs/tap-controller'],
  )
  const deployment = find(objects, 'StatefulSet', 'tail-log-socket')
  const pod = podSpec(deployment)
  t.equal(pod.serviceAccountName, 'tap-controller')
  t.equal((deployment['spec'] as { replicas: number }).replicas, 3)
  t.equal(arg(pod.containers[0]!, '--service'), 'logs', 'the replicas watch the renamed Service')
  const c = pod.containers[0]!
  t.equal(c.image, 'registry.example/log-socket:dev')
  t.equal(arg(c, '--ingest-port'), '11000')
  t.equal(arg(c, '--stream-port'), '11001')
  t.equal(arg(c, '--ops-port'), '9090')
  t.equal(arg(c, '--ingest-base-url'), 'http://logs.obs.svc.cluster.example:11000', 'trailing slash dropped')
  t.notOk(
    c.args.some((a) => a.startsWith('--leader-elect')),
    'leader election off',
  )
  t.equal(arg(c, '--log-level'), 'debug')
  t.notOk(
    objects.some((o) => o.kind === 'Secret'),
    'no generated Secret with ingestKey.existingSecret',
  )
  t.ok(pod.volumes.some((v) => v.secret?.secretName === 'my-key'))

  const service = find(objects, 'Service', 'logs') as K8sObject & { spec: { ports: { port: number }[] } }
  t.same(
    service.spec.ports.map((p) => p.port),
    [11000, 11001, 9090],
  )
  const tapper = find(objects, 'ClusterRole', 'may-tap')
  t.equal(tapper.metadata.labels?.['rbac.authorization.k8s.io/aggregate-to-edit'], 'true')
  t.notOk(tapper.metadata.labels?.['rbac.authorization.k8s.io/aggregate-to-admin'])
  t.same(rules(tapper)[2]?.resourceNames, [
    'logs:11001',
    'logs:http-stream',
    'http:logs:11001',
    'http:logs:http-stream',
  ])
  t.same(
    rules(tapper)[3]?.resourceNames,
    ['tail-log-socket-0:11001', 'tail-log-socket-1:11001', 'tail-log-socket-2:11001'],
    'pod proxy: each replica of the StatefulSet, its stream port only',
  )
  t.same(rules(find(objects, 'ClusterRole', 'tail-log-socket-controller')), controllerRules)
  t.notOk(ruleStrings(objects).some((s) => s.includes('*')))

  const policy = find(objects, 'NetworkPolicy') as K8sObject & {
    spec: {
      podSelector: { matchLabels: Record<string, string> }
      ingress: { ports: { port: string }[]; from?: unknown }[]
    }
  }
  for (const [k, v] of Object.entries(policy.spec.podSelector.matchLabels))
    t.equal(podLabels(deployment)[k], v)
  const byPort = Object.fromEntries(policy.spec.ingress.map((r) => [r.ports[0]!.port, r.from]))
  t.same(byPort['http-ingest'], [
    { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'fluent' } } },
  ])
  t.equal(byPort['http-stream'], undefined, 'stream port open to any source')
  t.equal(byPort['http-ops'], undefined, 'ops port open to any source')

  const monitor = find(objects, 'ServiceMonitor') as K8sObject & {
    spec: { endpoints: { port: string; path: string }[] }
  }
  t.equal(monitor.metadata.labels?.['release'], 'prom')
  t.match(monitor.spec.endpoints, [{ port: 'http-ops', path: '/metrics' }])
})

t.test('one replica still works; none grants no pod proxy at all', async (t) => {
  const one = await renderChart({ values: { replicas: 1 } })
  t.equal((find(one, 'StatefulSet')['spec'] as { replicas: number }).replicas, 1)
  t.notOk(
    one.some((o) => o.kind === 'PodDisruptionBudget'),
    'no PodDisruptionBudget for one replica (it would block every drain)',
  )
  t.same(rules(find(one, 'ClusterRole', 'log-socket-tapper'))[3]?.resourceNames, ['log-socket-0:10001'])
  // An empty resourceNames would grant every pod's proxy: with no replica the rule is left out.
  const none = await renderChart({ values: { replicas: 0 } })
  t.notOk(
    rules(find(none, 'ClusterRole', 'log-socket-tapper')).some((r) => r.resources?.includes('pods/proxy')),
    'no pods/proxy rule without replicas',
  )
})

t.test('a ServiceAccount that the chart does not create must be named', async (t) => {
  const r = await helm(['template', 'log-socket', chartDir, '--set', 'serviceAccount.create=false'])
  t.not(r.code, 0)
  t.match(r.stderr, 'serviceAccount.name is required when serviceAccount.create is false')
  const named = await renderChart({ values: { serviceAccount: { create: false, name: 'existing' } } })
  t.notOk(named.some((o) => o.kind === 'ServiceAccount'))
  t.equal(podSpec(find(named, 'StatefulSet')).serviceAccountName, 'existing')
})

t.test('NOTES.txt tells the next commands, with the flags a non-default install needs', async (t) => {
  const notes = async (args: string[]) => {
    const r = await helm(['install', ...args, chartDir, '--dry-run=client'])
    t.equal(r.code, 0, r.stderr)
    return r.stdout.slice(r.stdout.indexOf('NOTES:'))
  }
  const plain = await notes(['log-socket', '--namespace', 'log-socket'])
  t.match(plain, 'kubectl -n log-socket rollout status statefulset/log-socket')
  t.match(plain, 'kubectl -n <flow-namespace> create token alice')
  t.match(plain, 'k8stail --token "$TOKEN" <flow-namespace>/<flow>')
  const other = await notes(['tail', '--namespace', 'obs', '--set', 'ports.stream=11001'])
  t.match(other, 'k8stail -n obs -s tail-log-socket -p 11001 --token "$TOKEN" <flow-namespace>/<flow>')
  t.match(other, '--clusterrole=tail-log-socket-tapper')
})

const generatedCrd = join(repoRoot, 'crds', 'logsocket.dev_logtaps.yaml')
t.test(
  "the chart's CRD is the generated one",
  {
    skip: existsSync(generatedCrd)
      ? false
      : 'crds/logsocket.dev_logtaps.yaml is not generated yet (npm run gen:crd)',
  },
  async (t) => {
    const generated = generatedCrd
    const copy = join(chartDir, 'crds', 'logsocket.dev_logtaps.yaml')
    t.ok(existsSync(copy), 'charts/log-socket/crds/logsocket.dev_logtaps.yaml exists')
    t.equal(
      existsSync(copy) ? readFileSync(copy, 'utf8') : '',
      readFileSync(generated, 'utf8'),
      'the chart copy equals crds/ (cp crds/logsocket.dev_logtaps.yaml charts/log-socket/crds/)',
    )
    const crd = find(await renderChart(), 'CustomResourceDefinition')
    t.equal(crd.metadata.name, 'logtaps.logsocket.dev')
  },
)

t.test('values.schema.json turns mistakes into clear errors', async (t) => {
  const typo = await helm(['template', 'log-socket', chartDir, '--set', 'replicaCount=2'])
  t.not(typo.code, 0)
  t.match(typo.stderr, 'replicaCount', 'an unknown key is named')
  const badPort = await helm(['template', 'log-socket', chartDir, '--set', 'ports.stream=70000'])
  t.not(badPort.code, 0)
  t.match(badPort.stderr, '/ports/stream')
  const badLevel = await helm(['template', 'log-socket', chartDir, '--set', 'logLevel=verbose'])
  t.not(badLevel.code, 0)
  t.match(badLevel.stderr, 'logLevel')
})

t.test("the StatefulSet's flags and environment are what the program accepts", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'chart-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const [name, values] of [
    ['default', {}],
    [
      'custom',
      {
        leaderElection: { enabled: false },
        logLevel: 'debug',
        ports: { ingest: 11000, stream: 11001, ops: 9090 },
      },
    ],
  ] as const) {
    const objects = await renderChart({ namespace: 'obs', values })
    const c = podSpec(find(objects, 'StatefulSet')).containers[0]!
    // The key file as the pod sees it: the Secret's value, mounted.
    const keyFile = join(dir, `${name}-key`)
    const secret = find(objects, 'Secret') as K8sObject & { data: { key: string } }
    writeFileSync(keyFile, Buffer.from(secret.data.key, 'base64'))
    const args = c.args.map((a) => (a.startsWith('--ingest-key-file=') ? `--ingest-key-file=${keyFile}` : a))
    const env = { POD_NAME: 'log-socket-1', POD_NAMESPACE: 'obs' }
    t.same(
      c.env.map((e) => e.name),
      Object.keys(env),
    )
    const cfg = parseConfig(args, env)
    if (cfg === 'help') throw new Error('unexpected help')
    const ports = (values as { ports?: { ingest: number; stream: number; ops: number } }).ports
    t.match(
      cfg,
      {
        ingestPort: ports?.ingest ?? 10000,
        streamPort: ports?.stream ?? 10001,
        opsPort: ports?.ops ?? 8080,
        ingestBaseUrl: `http://log-socket.obs.svc:${ports?.ingest ?? 10000}`,
        ingestKeyGenerated: false,
        leaderElect: name === 'default',
        namespace: 'obs',
        identity: 'log-socket-1',
        replica: 'log-socket-1',
        service: 'log-socket',
        streamPortName: 'http-stream',
        shutdownDelayMs: 5000,
        logLevel: name === 'default' ? 'info' : 'debug',
      },
      `${name} values`,
    )
    t.equal(
      Buffer.from(cfg.ingestKey).toString(),
      Buffer.from(secret.data.key, 'base64').toString(),
      'the key is read',
    )
  }
})
