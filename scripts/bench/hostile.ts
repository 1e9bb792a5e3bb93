// The hostile senders of the bench's hostile scenario, in their own process (scripts/bench/
// hostile-load.ts): slow posters and gzip bombs on one tap from `startAtMicros` (when the load
// generator starts) until told to stop, then their counts.
import { bombBodies, type HostileLoad, type HostileOptions, startHostileLoad } from './hostile-load.ts'
import { cpuMs, guard, params, send } from './protocol.ts'
import { nowMicros } from './records.ts'

const p = params<HostileOptions & { deadlineSeconds: number }>()
guard(p.deadlineSeconds * 1000)
const bodies = bombBodies() // before `ready`: building them takes a few seconds of CPU
let load: HostileLoad | undefined
process.on('message', async (m: { type?: string; startAtMicros?: number }) => {
  if (m.type === 'start') {
    const wait = Math.max(0, ((m.startAtMicros ?? 0) - nowMicros()) / 1000)
    setTimeout(() => {
      load = startHostileLoad(p, bodies)
    }, wait)
  }
  if (m.type !== 'stop') return
  const counts = load?.stop() ?? { slowOpened: 0, slowCut: 0, bombAnswers: {} }
  await send({ type: 'result', ...counts, cpuMs: cpuMs() })
  process.exit(0)
})
await send({ type: 'ready' })
