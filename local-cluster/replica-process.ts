// One relay replica as its own process, for the replica tests and the bench: the controller+relay
// program as main.ts runs it (leader election, the Service's EndpointSlices, SIGTERM drains then
// stops), bound to the test host, reconciling only one namespace's LogTaps so it can share the
// run's control plane with other tests. Parameters: one JSON argument (ReplicaProcessParams).
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { KubeConfig } from '@kubernetes/client-node'
import pino from 'pino'
import { startProgram } from '../controller/program/program.ts'

export interface ReplicaProcessParams {
  kubeconfig: string
  host: string
  ports: { ingest: number; stream: number; ops: number }
  ingestBaseUrl: string
  ingestKeyFile: string
  namespace: string // the relay's namespace (its Service, the leader Lease) and the one reconciled
  service: string
  replica: string // its pod's name
  shutdownDelayMs: number
  identity?: string // leader-election identity (default: the hostname, the same for every replica here)
  logLevel?: string
}

const p = JSON.parse(process.argv[2] ?? '{}') as ReplicaProcessParams
const logger = pino({ level: p.logLevel ?? 'warn', base: { replica: p.replica } })
const kc = new KubeConfig()
kc.loadFromFile(p.kubeconfig)
const program = await startProgram(
  {
    host: p.host,
    ingestPort: p.ports.ingest,
    streamPort: p.ports.stream,
    opsPort: p.ports.ops,
    ingestBaseUrl: p.ingestBaseUrl,
    ingestKey: readFileSync(p.ingestKeyFile),
    leaderElect: true,
    namespace: p.namespace,
    identity: p.identity ?? hostname(),
    replica: p.replica,
    service: p.service,
    shutdownDelayMs: p.shutdownDelayMs,
  },
  kc,
  logger,
  { watchNamespace: p.namespace, sweepIntervalMs: 5_000 },
)
process.stdout.write('started\n')
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    program.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  })
}
