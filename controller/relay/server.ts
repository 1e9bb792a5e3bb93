// The relay's three servers (ingest, stream, ops) and their lifecycle. The program
// (controller/program/program.ts) starts it with its Kubernetes adapters from relay/kube/ and
// calls `close()` on shutdown: fail readiness first and keep serving for the shutdown delay (the
// Service's endpoints move fluentd's posts to the other replicas meanwhile), then stop admitting,
// let in-flight ingest finish, send listeners what they can take and close them with 1001 +
// reason (clients carry on with the other replicas), then shut the ops port.
import Fastify, { type FastifyInstance, LogController } from 'fastify'
import { CloseCodes } from '../../api/stream-protocol.ts'
import { createRelayContext, type RelayContext } from './context.ts'
import { ingestRoutes } from './ingest-routes.ts'
import { opsRoutes } from './ops-routes.ts'
import type { RelayOptions } from './options.ts'
import { streamRoutes } from './stream-routes.ts'

function base(ctx: RelayContext, component: string, bodyLimit?: number): FastifyInstance {
  return Fastify({
    loggerInstance: ctx.o.logger.child({ component }),
    // Per-request logs would be one line per fluentd chunk; outcomes are in metrics instead.
    logController: new LogController({ disableRequestLogging: true }),
    ...(bodyLimit ? { bodyLimit } : {}),
    forceCloseConnections: 'idle',
  }) as unknown as FastifyInstance
}

function buildIngestServer(ctx: RelayContext): FastifyInstance {
  const app = base(ctx, 'ingest', ctx.limits.maxBodyBytes)
  app.register(ingestRoutes(ctx))
  return app
}

function buildStreamServer(ctx: RelayContext): FastifyInstance {
  const app = base(ctx, 'stream')
  app.register(streamRoutes(ctx))
  return app
}

function buildOpsServer(ctx: RelayContext): FastifyInstance {
  const app = base(ctx, 'ops')
  app.register(opsRoutes(ctx))
  return app
}

export interface RunningRelay {
  context: RelayContext
  addresses: { ingest: string; stream: string; ops: string }
  close(): Promise<void>
}

export async function startRelay(o: RelayOptions): Promise<RunningRelay> {
  const ctx = createRelayContext(o)
  const ingest = buildIngestServer(ctx)
  const stream = buildStreamServer(ctx)
  const ops = buildOpsServer(ctx)
  o.taps.onRemoved((namespace, name) => ctx.hub.removeTap(namespace, name))
  o.replicas?.onChange(() => ctx.hub.replicasChanged())
  const host = o.host ?? '0.0.0.0'
  const apps = [ingest, stream, ops]
  try {
    const [i, s, p] = await Promise.all([
      ingest.listen({ host, port: o.ingestPort ?? 10000 }),
      stream.listen({ host, port: o.streamPort ?? 10001 }),
      ops.listen({ host, port: o.opsPort ?? 8080 }),
    ])
    const { budget } = ctx.memory
    o.logger.info(
      {
        memoryBudget: budget.total,
        pools: {
          rings: budget.rings,
          listeners: budget.listeners,
          inflight: budget.inflight,
          inflate: budget.inflate,
        },
      },
      'relay memory budget',
    )
    let closed: Promise<void> | undefined
    return {
      context: ctx,
      addresses: { ingest: i, stream: s, ops: p },
      close: () => {
        closed ??= shutdown(ctx, ingest, stream, ops)
        return closed
      },
    }
  } catch (err) {
    await Promise.allSettled(apps.map((a) => a.close()))
    throw err
  }
}

async function shutdown(
  ctx: RelayContext,
  ingest: FastifyInstance,
  stream: FastifyInstance,
  ops: FastifyInstance,
): Promise<void> {
  // Readiness fails first: the endpoints drop this replica and kube-proxy stops sending it new
  // connections, while what still arrives during the delay is taken and streamed as usual.
  ctx.draining = true
  if (ctx.limits.shutdownDelayMs > 0) {
    ctx.o.logger.info({ delayMs: ctx.limits.shutdownDelayMs }, 'relay draining: readiness fails')
    await new Promise((r) => setTimeout(r, ctx.limits.shutdownDelayMs))
  }
  ctx.closing = true
  // Finish the chunks being posted so their records reach listeners before they are closed.
  await ingest.close()
  ctx.hub.closeAll(CloseCodes.GoingAway, 'relay shutting down')
  const grace = setTimeout(() => {
    for (const l of ctx.hub.listeners()) l.ws.terminate()
  }, ctx.limits.shutdownGraceMs)
  await waitClosed(ctx)
  clearTimeout(grace)
  await stream.close()
  await ops.close()
  ctx.o.logger.info('relay stopped')
}

async function waitClosed(ctx: RelayContext): Promise<void> {
  while (ctx.hub.listeners().length > 0) await new Promise((r) => setTimeout(r, 20))
}
