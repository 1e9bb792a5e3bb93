// Kubeconfig handling: --kubeconfig/--context, and the credentials of every user kind reaching the
// WebSocket handshake (token, exec plugin, OIDC, client certificate) with TLS against the kubeconfig CA.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t from 'tap'
import { stringify } from 'yaml'
import { ExitCodes, type K8stailError } from '../cli/errors.ts'
import { handshakeAuth, loadKubeConfig, relayToken, serverUrl } from '../cli/kubeconfig.ts'

const NODE = resolve(import.meta.dirname, '../node_modules/.bin/node')
const CA = Buffer.from('-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n')
const b64url = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
const idToken = `${b64url({ alg: 'none' })}.${b64url({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 })}.sig`
const execCredential = JSON.stringify({
  apiVersion: 'client.authentication.k8s.io/v1',
  kind: 'ExecCredential',
  status: { token: 'exec-token' },
})

const file = join(mkdtempSync(join(tmpdir(), 'k8stail-kc-')), 'config')
writeFileSync(
  file,
  stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'token',
    clusters: [
      {
        name: 'prod',
        cluster: {
          server: 'https://k8s.example:6443/k8s/clusters/c-1',
          'certificate-authority-data': CA.toString('base64'),
        },
      },
    ],
    users: [
      { name: 'token', user: { token: 'static-token' } },
      {
        name: 'exec',
        user: {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: NODE,
            args: ['-e', `process.stdout.write(${JSON.stringify(execCredential)})`],
            interactiveMode: 'Never',
          },
        },
      },
      {
        name: 'oidc',
        user: { 'auth-provider': { name: 'oidc', config: { 'id-token': idToken, 'client-id': 'k' } } },
      },
      {
        name: 'cert',
        user: {
          'client-certificate-data': Buffer.from('cert').toString('base64'),
          'client-key-data': Buffer.from('key').toString('base64'),
        },
      },
    ],
    contexts: ['token', 'exec', 'oidc', 'cert'].map((u) => ({
      name: u,
      context: { cluster: 'prod', user: u },
    })),
  }),
)

t.test('--kubeconfig and --context', async (t) => {
  const kc = loadKubeConfig({ kubeconfig: file })
  t.equal(kc.getCurrentContext(), 'token')
  t.equal(serverUrl(kc), 'https://k8s.example:6443/k8s/clusters/c-1')
  t.equal(loadKubeConfig({ kubeconfig: file, context: 'oidc' }).getCurrentContext(), 'oidc')
  t.throws(() => loadKubeConfig({ kubeconfig: file, context: 'nope' }), {
    message: '--context: no context "nope" in the kubeconfig (known: token, exec, oidc, cert)',
    exitCode: ExitCodes.Usage,
  })
  const saved = {
    HOME: process.env.HOME,
    KUBECONFIG: process.env.KUBECONFIG,
    K: process.env.KUBERNETES_SERVICE_HOST,
  }
  process.env.HOME = mkdtempSync(join(tmpdir(), 'k8stail-home-'))
  delete process.env.KUBECONFIG
  delete process.env.KUBERNETES_SERVICE_HOST
  t.teardown(() => {
    process.env.HOME = saved.HOME
    if (saved.KUBECONFIG !== undefined) process.env.KUBECONFIG = saved.KUBECONFIG
    if (saved.K !== undefined) process.env.KUBERNETES_SERVICE_HOST = saved.K
  })
  t.throws(() => loadKubeConfig({}), {
    message: 'no kubeconfig found: set KUBECONFIG, pass --kubeconfig, or create ~/.kube/config',
    exitCode: ExitCodes.Connection,
  })
  process.env.KUBECONFIG = file
  t.equal(loadKubeConfig({}).getCurrentContext(), 'token', 'KUBECONFIG is read')
  t.throws(() => loadKubeConfig({ kubeconfig: join(tmpdir(), 'does-not-exist') }), {
    message: /^cannot load kubeconfig .*does-not-exist/,
    exitCode: ExitCodes.Connection,
  })
})

t.test('every kind of user reaches the handshake; TLS against the kubeconfig CA', async (t) => {
  for (const [context, token] of [
    ['token', 'static-token'],
    ['exec', 'exec-token'],
    ['oidc', idToken],
  ] as const) {
    const auth = await handshakeAuth(loadKubeConfig({ kubeconfig: file, context }))
    t.equal(auth.bearerToken, token, `${context}: bearer token found`)
    t.equal(
      (auth.wsOptions.headers as Record<string, string>).Authorization,
      `Bearer ${token}`,
      `${context}: sent`,
    )
    t.ok(Buffer.from(auth.wsOptions.ca as Buffer).equals(CA), `${context}: the kubeconfig CA`)
    t.not(auth.wsOptions.rejectUnauthorized, false, `${context}: TLS is verified`)
    t.equal(relayToken(undefined, auth.bearerToken), token, `${context}: also the relay token`)
  }
  const cert = await handshakeAuth(loadKubeConfig({ kubeconfig: file, context: 'cert' }))
  t.equal(Buffer.from(cert.wsOptions.cert as Buffer).toString(), 'cert', 'client certificate')
  t.equal(Buffer.from(cert.wsOptions.key as Buffer).toString(), 'key')
  t.equal(cert.bearerToken, undefined)
  t.equal(relayToken('flag-token', cert.bearerToken), 'flag-token', '--token wins')
  const err = (() => {
    try {
      relayToken(undefined, cert.bearerToken)
    } catch (e) {
      return e as K8stailError
    }
  })()
  t.equal(err?.exitCode, ExitCodes.Connection)
  t.match(
    err?.message,
    /no token for the relay: .*-t "\$\(kubectl create token <serviceaccount> -n <namespace>\)"/,
  )
})
