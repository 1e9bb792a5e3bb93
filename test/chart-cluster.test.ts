// The chart against the real test API server: helm installs it (server-side validation of every
// object), an upgrade keeps the generated ingest key, the RBAC it grants is what the controller and
// the users need and no more (asked of the API server's own authorizer), and uninstall leaves
// nothing cluster-wide behind.
import t from 'tap'
import { getCluster, type TestCluster } from './support/cluster.ts'
import { chartDir, helm, provideHelm } from './support/helm.ts'

let c: TestCluster
t.before(async () => {
  await Promise.all([provideHelm(t), getCluster().then((got) => (c = got))])
})

async function kubectl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return c.kubectl(args)
}

// `kubectl auth can-i` as a ServiceAccount: the API server's RBAC authorizer answers.
async function can(sa: string, ...args: string[]): Promise<boolean> {
  const r = await kubectl(['auth', 'can-i', '--as', `system:serviceaccount:${sa}`, ...args])
  if (r.code !== 0 && r.stdout.trim() !== 'no') throw new Error(`kubectl auth can-i failed: ${r.stderr}`)
  return r.code === 0
}

async function helmIn(ns: string, args: string[]) {
  const r = await helm([...args, '--namespace', ns, '--kubeconfig', c.kubeconfigPath])
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')} failed (${r.code}): ${r.stderr}`)
  return r
}

async function ingestKey(ns: string, secret: string): Promise<string> {
  const r = await kubectl(['-n', ns, 'get', 'secret', secret, '-o', 'jsonpath={.data.key}'])
  if (r.code !== 0) throw new Error(r.stderr)
  return r.stdout
}

t.test('install, upgrade and uninstall with default values', async (t) => {
  const ns = await c.newNamespace('chart')
  const release = ns // contains no "log-socket", so the objects are named <ns>-log-socket
  const full = `${release}-log-socket`
  const sa = `${ns}:${full}`

  const installed = await helmIn(ns, ['install', release, chartDir])
  t.match(installed.stdout, 'STATUS: deployed')
  for (const [kind, name] of [
    ['deployment', full],
    ['service', full],
    ['serviceaccount', full],
    ['secret', `${full}-ingest-key`],
  ] as const) {
    const r = await kubectl(['-n', ns, 'get', kind, name, '-o', 'name'])
    t.equal(r.code, 0, `${kind} ${name} exists`)
  }
  const key = await ingestKey(ns, `${full}-ingest-key`)
  t.equal(Buffer.from(key, 'base64').length, 64)

  await helmIn(ns, ['upgrade', release, chartDir, '--set', 'logLevel=debug'])
  t.equal(await ingestKey(ns, `${full}-ingest-key`), key, 'an upgrade keeps the ingest key (lookup)')
  const args = await kubectl([
    '-n',
    ns,
    'get',
    'deployment',
    full,
    '-o',
    'jsonpath={.spec.template.spec.containers[0].args}',
  ])
  t.match(args.stdout, '--log-level=debug', 'the upgrade reached the Deployment')

  t.test("the controller's ServiceAccount may do its job", async (t) => {
    const other = await c.newNamespace('chart-other')
    for (const check of [
      ['list', 'logtaps.logsocket.dev', '--all-namespaces'],
      ['watch', 'logtaps.logsocket.dev', '--all-namespaces'],
      ['patch', 'logtaps.logsocket.dev/status', '-n', other],
      ['update', 'logtaps.logsocket.dev/finalizers', '-n', other],
      ['create', 'outputs.logging.banzaicloud.io', '-n', other],
      ['delete', 'clusteroutputs.logging.banzaicloud.io', '-n', other],
      ['patch', 'flows.logging.banzaicloud.io', '-n', other],
      ['patch', 'clusterflows.logging.banzaicloud.io', '-n', other],
      ['list', 'loggings.logging.banzaicloud.io'],
      ['update', 'leases.coordination.k8s.io', '-n', ns],
      ['delete', 'leases.coordination.k8s.io', '-n', other],
      ['create', 'events', '-n', other],
      ['create', 'tokenreviews.authentication.k8s.io'],
      ['create', 'subjectaccessreviews.authorization.k8s.io'],
    ]) {
      t.ok(await can(sa, ...check), `may ${check.join(' ')}`)
    }
  })

  t.test("the controller's ServiceAccount may do nothing else", async (t) => {
    for (const check of [
      ['get', 'secrets', '-n', ns],
      ['list', 'secrets', '--all-namespaces'],
      ['create', 'pods', '-n', ns],
      ['update', 'flows.logging.banzaicloud.io', '-n', ns],
      ['create', 'logtaps.logsocket.dev', '-n', ns],
      ['update', 'logtaps.logsocket.dev', '-n', ns],
      ['delete', 'namespaces'],
      ['create', 'clusterrolebindings'],
      ['get', 'services/proxy', '-n', ns],
      ['impersonate', 'users'],
    ]) {
      t.notOk(await can(sa, ...check), `may not ${check.join(' ')}`)
    }
  })

  t.test(
    'a user bound to the tapper role reaches the stream port through the proxy, and only it',
    async (t) => {
      const team = await c.newNamespace('chart-team')
      const token = await c.serviceAccountToken(team, 'alice')
      const alice = `${team}:alice`
      for (const where of [team, ns]) {
        const r = await kubectl([
          '-n',
          where,
          'create',
          'rolebinding',
          'alice-tapper',
          `--clusterrole=${full}-tapper`,
          `--serviceaccount=${alice}`,
        ])
        t.equal(r.code, 0, r.stderr)
      }
      t.ok(await can(alice, 'create', 'logtaps.logsocket.dev', '-n', team))
      t.ok(await can(alice, 'delete', 'logtaps.logsocket.dev', '-n', team))
      t.ok(await can(alice, 'update', 'leases.coordination.k8s.io', '-n', team))
      t.notOk(
        await can(alice, 'patch', 'logtaps.logsocket.dev', '-n', team),
        'no patch: status is the controller’s',
      )
      t.notOk(await can(alice, 'create', 'logtaps.logsocket.dev', '-n', 'default'), 'not where unbound')

      // A real proxied request with alice's token: 403 is RBAC saying no; anything else (503, there
      // are no pods behind the Service here) means RBAC let it through.
      const proxied = async (name: string) => {
        const r = await kubectl([
          '--token',
          token,
          'get',
          '--raw',
          `/api/v1/namespaces/${ns}/services/${name}/proxy/healthz`,
        ])
        return `${r.stdout}${r.stderr}`
      }
      for (const name of [
        `http:${full}:10001`,
        `${full}:10001`,
        `${full}:http-stream`,
        `http:${full}:http-stream`,
      ]) {
        const out = await proxied(name)
        t.notMatch(out, /Forbidden|forbidden/, `${name}: allowed`)
        t.match(out, /ServiceUnavailable|no endpoints available|503/, `${name}: reached the Service`)
      }
      for (const name of [`${full}:10000`, `http:${full}:http-ingest`, `${full}:8080`, `${full}`]) {
        t.match(await proxied(name), /forbidden/i, `${name}: forbidden`)
      }
    },
  )

  t.test('uninstall removes the cluster-wide objects', async (t) => {
    await helmIn(ns, ['uninstall', release])
    for (const name of [`${full}-controller`, `${full}-tapper`]) {
      const r = await kubectl(['get', 'clusterrole', name, '-o', 'name'])
      t.not(r.code, 0, `ClusterRole ${name} is gone`)
    }
    const r = await kubectl(['get', 'clusterrolebinding', `${full}-controller`, '-o', 'name'])
    t.not(r.code, 0, 'ClusterRoleBinding is gone')
  })
})

t.test(
  'install with non-default values: named ServiceAccount, NetworkPolicy, aggregation into edit',
  async (t) => {
    const ns = await c.newNamespace('chart-custom')
    const release = `${ns}-log-socket` // contains the chart name, so it is the full name as is
    const secret = await kubectl([
      '-n',
      ns,
      'create',
      'secret',
      'generic',
      'my-key',
      '--from-literal=key=0123456789abcdef0123456789abcdef',
    ])
    t.equal(secret.code, 0, secret.stderr)
    await helmIn(ns, [
      'install',
      release,
      chartDir,
      '--set',
      'serviceAccount.name=tap-controller,service.name=logs,ingestKey.existingSecret=my-key',
      '--set',
      'networkPolicy.enabled=true,rbac.tapper.aggregateToEdit=true',
    ])
    t.teardown(() => helmIn(ns, ['uninstall', release]).then(() => undefined))

    const policy = await kubectl([
      '-n',
      ns,
      'get',
      'networkpolicy',
      release,
      '-o',
      'jsonpath={.spec.ingress[0].from}',
    ])
    t.equal(policy.code, 0, policy.stderr)
    t.match(policy.stdout, 'kubernetes.io/metadata.name', 'the NetworkPolicy was accepted as rendered')
    t.ok(
      await can(`${ns}:tap-controller`, 'create', 'tokenreviews.authentication.k8s.io'),
      'the binding names the ServiceAccount the pods use',
    )
    const sa = await kubectl([
      '-n',
      ns,
      'get',
      'deployment',
      release,
      '-o',
      'jsonpath={.spec.template.spec.serviceAccountName}',
    ])
    t.equal(sa.stdout, 'tap-controller')

    // The clusterrole-aggregation controller copies the tapper rules into edit.
    const bob = `${ns}:bob`
    await c.serviceAccountToken(ns, 'bob')
    const bound = await kubectl([
      '-n',
      ns,
      'create',
      'rolebinding',
      'bob-edit',
      '--clusterrole=edit',
      `--serviceaccount=${bob}`,
    ])
    t.equal(bound.code, 0, bound.stderr)
    const deadline = Date.now() + 30_000
    let aggregated = false
    while (!aggregated && Date.now() < deadline) {
      aggregated = await can(bob, 'create', 'logtaps.logsocket.dev', '-n', ns)
      if (!aggregated) await new Promise((r) => setTimeout(r, 500))
    }
    t.ok(aggregated, 'an editor of the namespace may create LogTaps')
    t.ok(
      await can(bob, 'get', 'services/logs:10001', '--subresource=proxy', '-n', ns),
      'and reach the stream port',
    )
  },
)
