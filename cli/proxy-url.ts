// Where the stream lives: pure URL building, no I/O.
//
// Through the API server (default): the relay Service behind the API server's service proxy,
//   <server incl. any path prefix>/api/v1/namespaces/<svcNs>/services/[https:]<svc>:<port>/proxy/taps/<ns>/<tap>
// One relay replica (a pod) behind the API server's pod proxy, when the relay runs as replicas:
//   <server incl. any path prefix>/api/v1/namespaces/<svcNs>/pods/[https:]<pod>:<port>/proxy/taps/<ns>/<tap>
// Direct (`--listen-addr`): the relay itself, `ws://` or `wss://` (`wss://` when no scheme is given).
import { streamPath } from '../api/logtap.ts'
import { connectionError, usageError } from './errors.ts'

export interface ProxyTarget {
  server: string // the kubeconfig cluster's server URL, e.g. https://host:6443/k8s/clusters/c-1
  serviceNamespace: string
  service: string
  port: string // a number or a port name
  serviceScheme: 'http' | 'https' // how the API server talks to the relay pod
  tapNamespace: string
  tapName: string
}

export function proxyStreamUrl(t: ProxyTarget): URL {
  const url = parseUrl(t.server, 'the kubeconfig server')
  const prefix = url.pathname.replace(/\/+$/, '') // keep Rancher-style prefixes, drop the trailing slash
  const scheme = t.serviceScheme === 'https' ? 'https:' : ''
  checkName(t.serviceNamespace, '-n/--namespace')
  checkName(t.service, '-s/--service')
  if (!/^([0-9]{1,5}|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$/.test(t.port)) {
    throw usageError(`-p/--port must be a port number or a port name, got "${t.port}"`)
  }
  // The ':' separators are part of the proxy syntax: the segment is built from validated names, not encoded.
  const service = `${scheme}${t.service}:${t.port}`
  url.pathname =
    `${prefix}/api/v1/namespaces/${t.serviceNamespace}` +
    `/services/${service}/proxy${streamPath(t.tapNamespace, t.tapName)}`
  url.protocol = toWsScheme(url.protocol)
  url.search = ''
  url.hash = ''
  return url
}

export interface PodProxyTarget {
  server: string
  namespace: string // the relay's namespace
  pod: string // the replica's pod, as the relay names it
  port: number // its stream port (the pod proxy takes numbers only)
  scheme: 'http' | 'https'
  tapNamespace: string
  tapName: string
}

export function podProxyStreamUrl(t: PodProxyTarget): URL {
  const url = parseUrl(t.server, 'the kubeconfig server')
  const prefix = url.pathname.replace(/\/+$/, '')
  // The names come from the relay: checked, so a bad one cannot steer the path elsewhere.
  if (!DNS_SUBDOMAIN.test(t.pod) || t.pod.length > 253)
    throw connectionError(`the relay named a replica that is not a pod name: "${t.pod}"`)
  if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535)
    throw connectionError(`the relay named a replica port that is not a port: ${t.port}`)
  checkName(t.namespace, '-n/--namespace')
  const scheme = t.scheme === 'https' ? 'https:' : ''
  url.pathname =
    `${prefix}/api/v1/namespaces/${t.namespace}` +
    `/pods/${scheme}${t.pod}:${t.port}/proxy${streamPath(t.tapNamespace, t.tapName)}`
  url.protocol = toWsScheme(url.protocol)
  url.search = ''
  url.hash = ''
  return url
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

export function directStreamUrl(listenAddr: string, tapNamespace: string, tapName: string): URL {
  const withScheme = listenAddr.includes('://') ? listenAddr : `wss://${listenAddr}`
  const url = parseUrl(withScheme, '--listen-addr')
  url.protocol = toWsScheme(url.protocol)
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${streamPath(tapNamespace, tapName)}`
  return url
}

// Resume and replay parameters (see controller/api/stream.ts).
export function withStreamQuery(
  base: URL,
  q: { since?: number | undefined; epoch?: string | undefined; tail?: number | undefined },
): URL {
  const url = new URL(base)
  if (q.epoch !== undefined && q.since !== undefined) {
    url.searchParams.set('since', String(q.since))
    url.searchParams.set('epoch', q.epoch)
  } else if (q.tail !== undefined) {
    url.searchParams.set('tail', String(q.tail))
  }
  return url
}

// What a URL looks like in messages: no query, no credentials.
export function displayUrl(url: URL): string {
  const u = new URL(url)
  u.username = ''
  u.password = ''
  u.search = ''
  return u.toString()
}

function checkName(name: string, flag: string): void {
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > 63) {
    throw usageError(`${flag} must be a DNS label (lowercase letters, digits, '-'), got "${name}"`)
  }
}

function toWsScheme(protocol: string): string {
  switch (protocol) {
    case 'https:':
    case 'wss:':
      return 'wss:'
    case 'http:':
    case 'ws:':
      return 'ws:'
    default:
      throw usageError(`unsupported URL scheme ${protocol} (expected ws://, wss://, http:// or https://)`)
  }
}

function parseUrl(text: string, what: string): URL {
  try {
    return new URL(text)
  } catch {
    throw usageError(`${what} is not a valid URL: ${text}`)
  }
}
