#!/usr/bin/env node
// log-socket-controller: parses flags once, then runs the controller and the relay until SIGTERM.
import { KubeConfig } from '@kubernetes/client-node'
import pino from 'pino'
import { ConfigError, parseConfig, usage } from './config.ts'
import { startProgram } from './program.ts'

let cfg: ReturnType<typeof parseConfig>
try {
  cfg = parseConfig(process.argv.slice(2), process.env)
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  process.stderr.write(`log-socket-controller: ${err.message}\n\n${usage}`)
  process.exit(2)
}
if (cfg === 'help') {
  process.stdout.write(usage)
  process.exit(0)
}

const logger = pino({
  level: cfg.logLevel,
  base: { app: 'log-socket' },
  // Tokens never reach the logs, whatever a future log line carries.
  redact: [
    'req.headers.authorization',
    'req.headers["x-authorization"]',
    'req.headers["x-log-socket-tap-token"]',
    'token',
  ],
})

const kc = new KubeConfig()
try {
  if (cfg.kubeconfig) kc.loadFromFile(cfg.kubeconfig)
  else kc.loadFromDefault()
} catch (err) {
  logger.fatal({ err: (err as Error).message }, 'Could not load a kubeconfig or in-cluster configuration')
  process.exit(2)
}
if (cfg.ingestKeyGenerated) {
  logger.warn('No --ingest-key-file: using a random ingest key; every tap Output is re-keyed after a restart')
}

const program = await startProgram(cfg, kc, logger).catch((err: Error) => {
  logger.fatal({ err: err.message }, 'Could not start')
  process.exit(1)
})
logger.info({ addresses: program.relay.addresses, leaderElection: cfg.leaderElect }, 'Started')

let signals = 0
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (++signals > 1) process.exit(1) // a second signal: stop now
    logger.info({ signal: sig }, 'Shutting down')
    const force = setTimeout(() => process.exit(1), 20_000)
    force.unref()
    program.stop().then(
      () => process.exit(0),
      (err: Error) => {
        logger.error({ err: err.message }, 'Shutdown failed')
        process.exit(1)
      },
    )
  })
}
