// The hostile senders of the bench's hostile scenario, in their own process (scripts/bench/
// hostile-load.ts): slow posters and gzip bombs on one tap until told to stop, then their counts.
import { type HostileOptions, startHostileLoad } from './hostile-load.ts'
import { cpuMs, guard, params, send } from './protocol.ts'

const p = params<HostileOptions & { deadlineSeconds: number }>()
guard(p.deadlineSeconds * 1000)
const load = startHostileLoad(p)
process.on('message', async (m: { type?: string }) => {
  if (m.type !== 'stop') return
  await send({ type: 'result', ...load.stop(), cpuMs: cpuMs() })
  process.exit(0)
})
await send({ type: 'ready' })
