// The one way the relay's servers refuse a request: an HTTP status and a one-line RefusalBody
// (`{"error","reason"}`) that k8stail and fluentd's logs show as is.
import type { FastifyReply } from 'fastify'
import type { RefusalBody } from '../../api/stream-protocol.ts'

export function refuse(reply: FastifyReply, code: number, error: string, reason: string): FastifyReply {
  const body: RefusalBody = { error, reason }
  return reply.code(code).type('application/json').send(body)
}
