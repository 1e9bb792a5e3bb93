// The whole in-cluster program — controller and relay in one process — as a function of its
// configuration, so main.ts, the demo and the end-to-end tests start exactly the same thing.
import type { KubeConfig } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { KINDS } from '../../api/kinds.ts'
import { type EndpointsWatch, watchServiceEndpoints } from '../kube/endpoints.ts'
import { SharedInformers } from '../kube/informers.ts'
import { type RunningController, startController } from '../reconciler/controller.ts'
import { type RelayTotalsLoop, startRelayTotals } from '../reconciler/relay-totals.ts'
import { k8sAuth } from '../relay/kube/auth.ts'
import { k8sTapDirectory } from '../relay/kube/logtap-directory.ts'
import { k8sStatusWriter } from '../relay/kube/status-writer.ts'
import type { RelayLimits } from '../relay/options.ts'
import type { ReplicaDirectory } from '../relay/replicas.ts'
import { type RunningRelay, startRelay } from '../relay/server.ts'
import type { Config } from './config.ts'

export interface Program {
  controller: RunningController
  relay: RunningRelay
  registry: Registry
  stop(): Promise<void>
}

type ProgramConfig = Pick<
  Config,
  | 'host'
  | 'ingestPort'
  | 'streamPort'
  | 'opsPort'
  | 'ingestBaseUrl'
  | 'ingestKey'
  | 'leaderElect'
  | 'namespace'
  | 'identity'
> &
  Partial<Pick<Config, 'memoryBudget' | 'replica' | 'service' | 'streamPortName' | 'shutdownDelayMs'>>

export async function startProgram(
  cfg: ProgramConfig,
  kc: KubeConfig,
  logger: Logger,
  // watchNamespace: watch and reconcile only that namespace's LogTaps, flows and outputs (tests
  // sharing one cluster; default all namespaces).
  extra: { limits?: Partial<RelayLimits>; sweepIntervalMs?: number; watchNamespace?: string } = {},
): Promise<Program> {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'log_socket_' })
  const relayLog = logger.child({ component: 'relay' })
  // One informer per resource for the whole process: the controller and the relay share the
  // LogTap one, and both see only `watchNamespace` when it is set.
  const informers = new SharedInformers(kc, {
    log: logger.child({ component: 'informers' }),
    ...(extra.watchNamespace ? { namespace: extra.watchNamespace } : {}),
  })
  const taps = k8sTapDirectory(informers.for(KINDS.LogTap))
  const replica = cfg.replica ?? cfg.identity
  const status = k8sStatusWriter(kc, { logger: relayLog, replica })
  // Replicas behind a Service know each other from its EndpointSlices.
  const endpoints: EndpointsWatch | undefined = cfg.service
    ? watchServiceEndpoints(kc, {
        namespace: cfg.namespace,
        service: cfg.service,
        portName: cfg.streamPortName ?? 'http-stream',
        log: logger.child({ component: 'endpoints' }),
      })
    : undefined
  void endpoints?.start()
  const replicas: ReplicaDirectory | undefined = endpoints && {
    self: { name: replica, port: cfg.streamPort },
    ready: () =>
      endpoints.synced()
        ? endpoints
            .list()
            .filter((e) => e.ready && !e.terminating)
            .map(({ name, port }) => ({ name, port }))
        : undefined,
    onChange: (f) => endpoints.onChange(f),
  }
  let controller: RunningController
  let totals: RelayTotalsLoop | undefined
  try {
    controller = await startController({
      kc,
      informers,
      logger: logger.child({ component: 'controller' }),
      registry,
      ingestBaseUrl: cfg.ingestBaseUrl,
      ingestKey: cfg.ingestKey,
      leaderElection: cfg.leaderElect ? { namespace: cfg.namespace, identity: cfg.identity } : false,
      ...(extra.sweepIntervalMs ? { sweepIntervalMs: extra.sweepIntervalMs } : {}),
    })
    totals = startRelayTotals({
      kc,
      logTaps: informers.for(KINDS.LogTap),
      isLeader: () => controller.isLeader(),
      ...(endpoints
        ? {
            replicas: {
              names: () => (endpoints.synced() ? endpoints.list().map((e) => e.name) : undefined),
              onChange: (f: () => void) => endpoints.onChange(f),
            },
          }
        : {}),
      log: logger.child({ component: 'controller' }),
    })
  } catch (err) {
    taps.close()
    await status.stop()
    await endpoints?.stop()
    await informers.stop()
    throw err
  }
  let relay: RunningRelay
  try {
    relay = await startRelay({
      logger: relayLog,
      registry,
      taps,
      ingestKey: cfg.ingestKey,
      auth: k8sAuth(kc),
      onStatus: status.sink,
      ...(replicas ? { replicas } : {}),
      ready: () => controller.synced(),
      host: cfg.host,
      ingestPort: cfg.ingestPort,
      streamPort: cfg.streamPort,
      opsPort: cfg.opsPort,
      ...(cfg.memoryBudget ? { memoryBudget: cfg.memoryBudget } : {}),
      limits: {
        ...(cfg.shutdownDelayMs !== undefined ? { shutdownDelayMs: cfg.shutdownDelayMs } : {}),
        ...extra.limits,
      },
    })
  } catch (err) {
    taps.close()
    await status.stop()
    await totals.stop()
    await controller.stop()
    await endpoints?.stop()
    await informers.stop()
    throw err
  }
  let stopping: Promise<void> | undefined
  return {
    controller,
    relay,
    registry,
    stop() {
      // Relay first: listeners are told and the final counters written while the API is still used.
      stopping ??= (async () => {
        await relay.close()
        await status.flush()
        await status.stop()
        taps.close()
        await totals?.stop()
        await controller.stop()
        await endpoints?.stop()
        await informers.stop()
      })()
      return stopping
    },
  }
}
