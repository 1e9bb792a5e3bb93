// The controller+relay program's configuration: parsed once at the edge from flags, with
// environment fallbacks for what Kubernetes injects (downward API), then frozen and passed down.
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { parseArgs } from 'node:util'
import Type, { type Static } from 'typebox'
import Value from 'typebox/value'
import { containerMemoryLimit, defaultMemoryBudget, MIN_BUDGET, parseByteSize } from '../relay/budget.ts'

const Port = Type.Integer({ minimum: 1, maximum: 65535 })

export const Config = Type.Object({
  host: Type.String({ minLength: 1 }),
  ingestPort: Port,
  streamPort: Port,
  opsPort: Port,
  ingestBaseUrl: Type.String({ pattern: '^https?://[^/]+' }),
  ingestKey: Type.Unsafe<Uint8Array>({}),
  ingestKeyGenerated: Type.Boolean(),
  leaderElect: Type.Boolean(),
  namespace: Type.String({ minLength: 1 }),
  identity: Type.String({ minLength: 1 }),
  replica: Type.String({ minLength: 1, maxLength: 253 }),
  service: Type.Optional(Type.String({ pattern: '^[a-z]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 })),
  streamPortName: Type.String({ minLength: 1, maxLength: 15 }),
  shutdownDelayMs: Type.Integer({ minimum: 0, maximum: 300_000 }),
  logLevel: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']),
  kubeconfig: Type.Optional(Type.String()),
  memoryBudget: Type.Integer({ minimum: MIN_BUDGET }),
})
export type Config = Static<typeof Config>

export const usage = `log-socket-controller: the LogTap controller and the relay, in one process.

Flags (environment fallback in brackets):
  --host ADDR               listen address for all servers (default 0.0.0.0)
  --ingest-port N           fluentd posts here (default 10000)
  --stream-port N           WebSocket streams, reached through the API server proxy (default 10001)
  --ops-port N              /healthz, /readyz, /metrics (default 8080)
  --ingest-base-url URL     URL fluentd uses to reach the ingest port
                            (default http://log-socket.<namespace>.svc:<ingest-port>)
  --ingest-key-file FILE    HMAC key for per-tap ingest credentials [LOG_SOCKET_INGEST_KEY]
                            (default: a random key per start; Outputs are re-keyed after a restart)
  --leader-elect            elect one active controller among replicas (default false)
  --namespace NS            this pod's namespace [POD_NAMESPACE] (default log-socket)
  --identity ID             leader-election identity; a random suffix is always added, so two
                            processes never share one (default: the replica name)
  --replica NAME            this replica's name: its pod's, as the Service's EndpointSlices name
                            it [POD_NAME] (default hostname)
  --service NAME            the Service in front of the relay replicas, in --namespace; its
                            EndpointSlices tell each replica which replicas are ready, and the
                            streams tell clients (default: none, a single relay)
  --stream-port-name NAME   the Service port of the stream (default http-stream)
  --shutdown-delay SECONDS  on SIGTERM, keep serving this long after readiness fails, so the
                            Service stops sending posts first (default 5 with --service, else 0)
  --log-level LEVEL         fatal|error|warn|info|debug|trace (default info) [LOG_LEVEL]
  --kubeconfig FILE         out-of-cluster kubeconfig [KUBECONFIG] (default in-cluster, then ~/.kube/config)
  --memory-budget SIZE      memory the program may use, e.g. 460Mi; the relay's buffers are derived
                            from it (default: 90% of the container's memory limit, else 512Mi)
  -h, --help                this text
`

export class ConfigError extends Error {
  override name = 'ConfigError'
}

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): Config | 'help' {
  let values: ReturnType<typeof parse>['values']
  try {
    values = parse(argv).values
  } catch (err) {
    throw new ConfigError((err as Error).message)
  }
  if (values.help) return 'help'
  const num = (flag: string, v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt
    const n = Number(v)
    if (!Number.isInteger(n))
      throw new ConfigError(`--${flag} must be a port number, got ${JSON.stringify(v)}`)
    return n
  }
  const namespace = values.namespace ?? env.POD_NAMESPACE ?? 'log-socket'
  const ingestPort = num('ingest-port', values['ingest-port'], 10000)
  let ingestKey: Uint8Array
  let ingestKeyGenerated = false
  if (values['ingest-key-file']) {
    try {
      ingestKey = readFileSync(values['ingest-key-file'])
    } catch (err) {
      throw new ConfigError(`--ingest-key-file: ${(err as Error).message}`)
    }
  } else if (env.LOG_SOCKET_INGEST_KEY) {
    ingestKey = Buffer.from(env.LOG_SOCKET_INGEST_KEY)
  } else {
    ingestKey = crypto.getRandomValues(new Uint8Array(32))
    ingestKeyGenerated = true
  }
  if (ingestKey.length < 16) throw new ConfigError('the ingest key must be at least 16 bytes long')
  let memoryBudget: number | undefined
  if (values['memory-budget'] !== undefined) {
    memoryBudget = parseByteSize(values['memory-budget'])
    if (memoryBudget === undefined)
      throw new ConfigError(
        `--memory-budget must be a size such as 460Mi or 512M, got ${JSON.stringify(values['memory-budget'])}`,
      )
  } else memoryBudget = defaultMemoryBudget(containerMemoryLimit(readTextFile))
  const replica = values.replica ?? env.POD_NAME ?? hostname()
  const service = values.service || undefined
  let shutdownDelayMs = service ? 5000 : 0
  if (values['shutdown-delay'] !== undefined) {
    const v = values['shutdown-delay']
    if (!/^\d+(\.\d+)?s?$/.test(v))
      throw new ConfigError(`--shutdown-delay must be a number of seconds, got ${JSON.stringify(v)}`)
    shutdownDelayMs = Math.round(Number.parseFloat(v) * 1000)
  }
  const cfg = {
    host: values.host ?? '0.0.0.0',
    ingestPort,
    streamPort: num('stream-port', values['stream-port'], 10001),
    opsPort: num('ops-port', values['ops-port'], 8080),
    ingestBaseUrl: (values['ingest-base-url'] ?? `http://log-socket.${namespace}.svc:${ingestPort}`).replace(
      /\/+$/,
      '',
    ),
    ingestKey,
    ingestKeyGenerated,
    leaderElect: values['leader-elect'] ?? false,
    namespace,
    identity: values.identity ?? replica,
    replica,
    ...(service ? { service } : {}),
    streamPortName: values['stream-port-name'] ?? 'http-stream',
    shutdownDelayMs,
    logLevel: values['log-level'] ?? env.LOG_LEVEL ?? 'info',
    kubeconfig: values.kubeconfig ?? env.KUBECONFIG,
    memoryBudget,
  }
  const errors = [...Value.Errors(Config, cfg)]
  if (errors.length) {
    const e = errors[0]!
    throw new ConfigError(`invalid ${e.instancePath.replace(/^\//, '') || 'configuration'}: ${e.message}`)
  }
  return Object.freeze(cfg as Config)
}

function readTextFile(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      host: { type: 'string' },
      'ingest-port': { type: 'string' },
      'stream-port': { type: 'string' },
      'ops-port': { type: 'string' },
      'ingest-base-url': { type: 'string' },
      'ingest-key-file': { type: 'string' },
      'leader-elect': { type: 'boolean' },
      namespace: { type: 'string' },
      identity: { type: 'string' },
      replica: { type: 'string' },
      service: { type: 'string' },
      'stream-port-name': { type: 'string' },
      'shutdown-delay': { type: 'string' },
      'log-level': { type: 'string' },
      kubeconfig: { type: 'string' },
      'memory-budget': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
}
