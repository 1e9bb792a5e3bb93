// /healthz, /readyz, /metrics on their own port, so probes and scraping never compete with
// ingest or streams and are never exposed through the stream service.
import type { FastifyPluginAsync } from 'fastify'
import type { RelayContext } from './context.ts'

export function opsRoutes(ctx: RelayContext): FastifyPluginAsync {
  const { o } = ctx
  return async (app) => {
    app.get('/healthz', async (_req, reply) => reply.type('text/plain').send('ok\n'))

    app.get('/readyz', async (_req, reply) => {
      const problems: string[] = []
      if (ctx.draining) problems.push('shutting down')
      if (!o.taps.synced()) problems.push('LogTap informer not synced')
      if (o.ready && !o.ready()) problems.push('not ready (leadership unknown)')
      if (problems.length)
        return reply
          .code(503)
          .type('text/plain')
          .send(`${problems.join('; ')}\n`)
      return reply.type('text/plain').send('ok\n')
    })

    app.get('/metrics', async (_req, reply) =>
      reply.type(o.registry.contentType).send(await o.registry.metrics()),
    )
  }
}
