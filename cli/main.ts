#!/usr/bin/env node
// The k8stail executable: the only place that touches process-wide state (argv, signals, exit).

// Signals first: loading the Kubernetes client takes most of a second, and a Ctrl-C in that time
// must still mean "stop and clean up", not "die half-way".
const interrupted = new AbortController()
let signals = 0
const onSignal = (signal: NodeJS.Signals) => {
  // First signal: stop streaming and clean up (bounded); a second one: leave now.
  if (++signals > 1) process.exit(signal === 'SIGINT' ? 130 : 143)
  interrupted.abort()
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)
// `k8stail ... | head`: a closed stdout is a normal way to stop.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') interrupted.abort()
})

const { renderUsage, runMain } = await import('citty')
const { createTailCommand, helpAppendix } = await import('./commands/tail.ts')

const tail = createTailCommand({
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: interrupted.signal,
})

await runMain(
  {
    ...tail,
    async run(ctx) {
      const code = (await tail.run!(ctx)) as number
      process.exit(code)
    },
  },
  {
    async showUsage(cmd, parent) {
      process.stdout.write(`${await renderUsage(cmd, parent)}\n\n${helpAppendix()}`)
    },
  },
)
