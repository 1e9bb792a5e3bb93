// The log-socket-controller program as an operator runs it: flags parsed with clear errors, probes
// and metrics served, and a clean exit on SIGTERM.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { ConfigError, parseConfig } from '../controller/program/config.ts'
import { getCluster } from '../local-cluster/cluster.ts'
import { freePort } from '../local-cluster/control-plane.ts'

const repoRoot = path.resolve(import.meta.dirname, '..')
const node = path.join(repoRoot, 'node_modules', '.bin', 'node')

t.test('flags: defaults, environment fallbacks and clear errors', async (t) => {
  const cfg = parseConfig([], {
    POD_NAMESPACE: 'logs',
    POD_NAME: 'log-socket-0',
    LOG_SOCKET_INGEST_KEY: 'k'.repeat(32),
  })
  if (cfg === 'help') throw new Error('unexpected help')
  t.equal(cfg.ingestBaseUrl, 'http://log-socket.logs.svc:10000')
  t.equal(cfg.identity, 'log-socket-0')
  t.same([cfg.ingestPort, cfg.streamPort, cfg.opsPort], [10000, 10001, 8080])
  t.equal(cfg.ingestKeyGenerated, false)
  t.ok(Object.isFrozen(cfg))
  t.equal(parseConfig(['--help'], {}), 'help')
  const generated = parseConfig(['--ingest-base-url', 'http://relay.x.svc:9000/'], {})
  t.equal(generated !== 'help' && generated.ingestKeyGenerated, true, 'a random key when none is given')
  t.equal(
    generated !== 'help' && generated.ingestBaseUrl,
    'http://relay.x.svc:9000',
    'trailing slash dropped',
  )
  t.throws(
    () => parseConfig(['--ingest-port', 'ten'], {}),
    new ConfigError('--ingest-port must be a port number, got "ten"'),
  )
  t.throws(() => parseConfig(['--ops-port', '70000'], {}), /invalid opsPort/)
  t.throws(() => parseConfig(['--log-level', 'loud'], {}), /invalid logLevel/)
  t.throws(() => parseConfig(['--bogus'], {}), { name: 'ConfigError', message: /Unknown option '--bogus'/ })
  t.throws(() => parseConfig(['--ingest-key-file', '/nonexistent/key'], {}), /--ingest-key-file: ENOENT/)
  t.throws(() => parseConfig([], { LOG_SOCKET_INGEST_KEY: 'short' }), /at least 16 bytes/)
  t.throws(() => parseConfig(['--ingest-base-url', 'relay:10000'], {}), /invalid ingestBaseUrl/)
})

t.test('a bad flag exits 2 with the reason and the usage', async (t) => {
  const child = spawn(node, [path.join(repoRoot, 'controller', 'program', 'main.ts'), '--ingest-port', 'x'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let err = ''
  child.stderr.setEncoding('utf8').on('data', (d) => {
    err += d
  })
  const code = await new Promise((r) => child.on('exit', r))
  t.equal(code, 2)
  t.match(err, /^log-socket-controller: --ingest-port must be a port number/)
  t.match(err, /--ingest-base-url URL/)
})

t.test('the program serves probes and metrics, and exits 0 on SIGTERM', async (t) => {
  const c = await getCluster()
  const dir = mkdtempSync(path.join(tmpdir(), 'controller-main-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const keyFile = path.join(dir, 'key')
  writeFileSync(keyFile, 'x'.repeat(32))
  const ops = await freePort()
  const child = spawn(
    node,
    [
      path.join(repoRoot, 'controller', 'program', 'main.ts'),
      `--kubeconfig=${c.kubeconfigPath}`,
      '--host=127.0.0.1',
      `--ingest-port=${await freePort()}`,
      `--stream-port=${await freePort()}`,
      `--ops-port=${ops}`,
      `--ingest-key-file=${keyFile}`,
      '--leader-elect',
      `--namespace=${await c.newNamespace('main')}`,
      '--identity=test-main',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let logs = ''
  child.stdout.setEncoding('utf8').on('data', (d) => {
    logs += d
  })
  const exited = new Promise<number | null>((r) => child.on('exit', r))
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  const deadline = Date.now() + 60_000
  let ready = 0
  while (Date.now() < deadline) {
    ready = await fetch(`http://127.0.0.1:${ops}/readyz`).then(
      (r) => r.status,
      () => 0,
    )
    if (ready === 200) break
    await new Promise((r) => setTimeout(r, 250))
  }
  t.equal(ready, 200, '/readyz answers 200 once informers synced and the leader is known')
  t.equal((await fetch(`http://127.0.0.1:${ops}/healthz`)).status, 200)
  const metrics = await (await fetch(`http://127.0.0.1:${ops}/metrics`)).text()
  t.match(metrics, /^log_socket_process_cpu_seconds_total /m, 'process metrics')
  t.match(metrics, /^# TYPE log_socket_\w+_total counter$/m, 'log-socket counters with _total')
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM: clean exit')
  t.match(logs, /"msg":"Started"/)
  t.match(logs, /"msg":"Shutting down"/)
  t.notMatch(logs, /x{32}/, 'the ingest key is never logged')
})
