// Kubeconfig handling like kubectl: --kubeconfig, else KUBECONFIG (a list of files), else
// ~/.kube/config or the in-cluster config; --context picks a context. The credentials of the chosen
// user (token, exec plugin, OIDC, client certificate) go on every request, including the WebSocket
// handshake through the API server proxy, and TLS is verified against the kubeconfig CA.
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'
import type { ClientOptions } from 'ws'
import { connectionError, usageError } from './errors.ts'

export interface KubeconfigOptions {
  kubeconfig?: string | undefined
  context?: string | undefined
}

export function loadKubeConfig(o: KubeconfigOptions): KubeConfig {
  const kc = new KubeConfig()
  // client-node silently falls back to http://localhost:8080 when it finds nothing; kubectl refuses.
  const defaultFile = join(homedir(), '.kube', 'config')
  if (
    !o.kubeconfig &&
    !process.env.KUBECONFIG &&
    !process.env.KUBERNETES_SERVICE_HOST &&
    !existsSync(defaultFile)
  ) {
    throw connectionError('no kubeconfig found: set KUBECONFIG, pass --kubeconfig, or create ~/.kube/config')
  }
  try {
    if (o.kubeconfig) kc.loadFromFile(o.kubeconfig)
    else kc.loadFromDefault()
  } catch (err) {
    const where = o.kubeconfig ?? process.env.KUBECONFIG ?? defaultFile
    throw connectionError(`cannot load kubeconfig ${where}: ${(err as Error).message}`, err)
  }
  if (o.context) {
    if (!kc.getContextObject(o.context)) {
      const known = kc.getContexts().map((c) => c.name)
      throw usageError(
        `--context: no context "${o.context}" in the kubeconfig (known: ${known.join(', ') || 'none'})`,
      )
    }
    kc.setCurrentContext(o.context)
  }
  if (!kc.getCurrentCluster()) {
    throw connectionError('the kubeconfig has no current context with a cluster (use --context)')
  }
  return kc
}

export function serverUrl(kc: KubeConfig): string {
  const cluster = kc.getCurrentCluster()
  if (!cluster) throw connectionError('the kubeconfig has no current cluster (use --context)')
  return cluster.server
}

export interface HandshakeAuth {
  // TLS material, agent and headers for `new WebSocket(url, options)` through the API server.
  wsOptions: ClientOptions
  // The bearer token the kubeconfig user authenticates with (static, exec plugin or OIDC), if any.
  bearerToken: string | undefined
}

// Runs the user's auth providers (exec plugins, OIDC refresh) once per call: call it again for each
// reconnect so expiring tokens are refreshed.
export async function handshakeAuth(kc: KubeConfig): Promise<HandshakeAuth> {
  const opts: ClientOptions & { headers?: Record<string, string> } = {}
  try {
    await kc.applyToHTTPSOptions(opts)
  } catch (err) {
    throw connectionError(`kubeconfig credentials: ${(err as Error).message}`, err)
  }
  const auth = opts.headers?.Authorization ?? opts.headers?.authorization
  const bearerToken = auth?.startsWith('Bearer ') ? auth.slice('Bearer '.length) : undefined
  return { wsOptions: opts, bearerToken }
}

// The token the relay checks (TokenReview): --token, else the kubeconfig user's bearer token.
export function relayToken(flagToken: string | undefined, bearerToken: string | undefined): string {
  if (flagToken) return flagToken
  if (bearerToken) return bearerToken
  throw connectionError(
    'no token for the relay: your kubeconfig user has no bearer token (client certificate?); ' +
      'pass one with -t, e.g. -t "$(kubectl create token <serviceaccount> -n <namespace>)"',
  )
}
