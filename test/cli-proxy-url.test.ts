// Where k8stail connects: the API server service proxy URL (prefix kept) or --listen-addr.
import t from 'tap'
import {
  directStreamUrl,
  displayUrl,
  podProxyStreamUrl,
  proxyStreamUrl,
  withStreamQuery,
} from '../cli/proxy-url.ts'

const base = {
  serviceNamespace: 'log-socket',
  service: 'log-socket',
  port: '10001',
  serviceScheme: 'http' as const,
  tapNamespace: 'default',
  tapName: 'k8stail-flow1-ab12c',
}

t.test('through the API server service proxy', async (t) => {
  t.equal(
    proxyStreamUrl({ ...base, server: 'https://1.2.3.4:6443' }).toString(),
    'wss://1.2.3.4:6443/api/v1/namespaces/log-socket/services/log-socket:10001/proxy/taps/default/k8stail-flow1-ab12c',
  )
  t.equal(
    proxyStreamUrl({ ...base, server: 'https://rancher.example/k8s/clusters/c-m-1/' }).toString(),
    'wss://rancher.example/k8s/clusters/c-m-1/api/v1/namespaces/log-socket/services/log-socket:10001/proxy/taps/default/k8stail-flow1-ab12c',
    'the path prefix of the server is kept',
  )
  t.equal(
    proxyStreamUrl({
      ...base,
      server: 'http://127.0.0.1:8080',
      port: 'stream',
      serviceScheme: 'https',
    }).toString(),
    'ws://127.0.0.1:8080/api/v1/namespaces/log-socket/services/https:log-socket:stream/proxy/taps/default/k8stail-flow1-ab12c',
    'port names and --service-scheme https',
  )
  t.equal(
    proxyStreamUrl({
      ...base,
      server: 'https://h',
      serviceNamespace: 'logging',
      service: 'relay',
      tapNamespace: 'ctl',
    }).pathname,
    '/api/v1/namespaces/logging/services/relay:10001/proxy/taps/ctl/k8stail-flow1-ab12c',
    '-n/-s choose the Service; a ClusterFlow tap lives in the control namespace',
  )
  t.throws(() => proxyStreamUrl({ ...base, server: 'https://h', port: 'Bad Port' }), /-p\/--port must be/)
  t.throws(
    () => proxyStreamUrl({ ...base, server: 'https://h', service: 'a/b' }),
    /-s\/--service must be a DNS label/,
  )
  t.throws(() => proxyStreamUrl({ ...base, server: 'not a url' }), /not a valid URL/)
})

t.test('one relay replica through the API server pod proxy', async (t) => {
  const pod = {
    server: 'https://rancher.example/k8s/clusters/c-m-1/',
    namespace: 'log-socket',
    pod: 'log-socket-1',
    port: 10001,
    scheme: 'http' as const,
    tapNamespace: 'default',
    tapName: 'k8stail-flow1-ab12c',
  }
  t.equal(
    podProxyStreamUrl(pod).toString(),
    'wss://rancher.example/k8s/clusters/c-m-1/api/v1/namespaces/log-socket/pods/log-socket-1:10001/proxy/taps/default/k8stail-flow1-ab12c',
    'exactly the resource name the tapper role grants: <pod>:<port>',
  )
  t.match(podProxyStreamUrl({ ...pod, scheme: 'https' }).pathname, '/pods/https:log-socket-1:10001/proxy/')
  // The replica's name and port come from the relay: a bad one cannot steer the path elsewhere.
  t.throws(() => podProxyStreamUrl({ ...pod, pod: '../../secrets/x' }), /not a pod name/)
  t.throws(() => podProxyStreamUrl({ ...pod, pod: 'a:8080' }), /not a pod name/)
  t.throws(() => podProxyStreamUrl({ ...pod, port: 0 }), /not a port/)
  t.throws(() => podProxyStreamUrl({ ...pod, port: 1.5 }), /not a port/)
})

t.test('--listen-addr: straight to the relay', async (t) => {
  t.equal(
    directStreamUrl('10.0.0.5:10001', 'ns', 'tap').toString(),
    'wss://10.0.0.5:10001/taps/ns/tap',
    'wss:// by default',
  )
  t.equal(directStreamUrl('ws://127.0.0.1:9000', 'ns', 'tap').toString(), 'ws://127.0.0.1:9000/taps/ns/tap')
  t.equal(
    directStreamUrl('wss://relay.example/base/', 'ns', 'tap').toString(),
    'wss://relay.example/base/taps/ns/tap',
  )
  t.equal(directStreamUrl('https://relay.example', 'ns', 'tap').protocol, 'wss:')
  t.throws(() => directStreamUrl('ftp://x', 'ns', 'tap'), /unsupported URL scheme ftp:/)
})

t.test('resume and replay parameters', async (t) => {
  const u = new URL('wss://h/taps/ns/tap')
  t.equal(
    withStreamQuery(u, { since: 41, epoch: 'e1', tail: 5 }).search,
    '?since=41&epoch=e1',
    'resume wins over tail',
  )
  t.equal(withStreamQuery(u, { tail: 100 }).search, '?tail=100')
  t.equal(withStreamQuery(u, {}).search, '')
  t.equal(u.search, '', 'the base URL is not changed')
  t.equal(displayUrl(new URL('wss://user:pw@h/p?since=1')), 'wss://h/p')
})
