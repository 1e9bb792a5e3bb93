// The bench's hostile scenario: beside the healthy tap (its load generator and listeners as in
// the other scenarios, with one stalled listener), a second tap gets 64 slow posters and 16
// senders of gzip bombs (scripts/bench/hostile-load.ts), and the relay runs with a tight memory
// budget. Judged against the quiet run at the same rate: the healthy tap's rate, and the relay's
// peak RSS against its budget.
import type { ChildProcess } from 'node:child_process'
import { MiB } from '../../controller/relay/budget.ts'
import type { HostileCounts } from './hostile-load.ts'
import type { RelayReady } from './protocol.ts'

export const HOSTILE_TAP = 'hostile'
export const HOSTILE_BUDGET = 192 * MiB
const SLOW_POSTERS = 64
const BOMB_SENDERS = 16
// The senders share the bench's two cores with the relay: a pause between one sender's bombs
// keeps the measurement about the relay rather than about a machine run out of CPU.
const BOMB_PAUSE_MS = 50

export interface HostileResult extends HostileCounts {
  cpuMs: number
}

type Helper = (file: string, p: object) => ChildProcess
type Next = <T>(child: ChildProcess, type: string) => Promise<T>

// Readies the hostile senders against the relay's hostile tap: `start` sets them off at a time
// (monotonic µs, the load generator's start), `stop` ends them and returns what they saw.
export async function startHostile(
  ready: RelayReady,
  helper: Helper,
  next: Next,
  deadlineSeconds: number,
): Promise<{ child: ChildProcess; start(atMicros: number): void; stop(): Promise<HostileResult> }> {
  const tap = ready.taps[HOSTILE_TAP]
  if (!tap) throw new Error(`the relay has no tap bench/${HOSTILE_TAP}`)
  const child = helper('hostile.ts', {
    ingestUrl: tap.ingestUrl,
    credential: tap.credential,
    slowPosters: SLOW_POSTERS,
    bombs: BOMB_SENDERS,
    pauseMs: BOMB_PAUSE_MS,
    deadlineSeconds,
  })
  await next(child, 'ready')
  return {
    child,
    start(atMicros) {
      child.send({ type: 'start', startAtMicros: atMicros })
    },
    async stop() {
      const result = next<HostileResult>(child, 'result')
      child.send({ type: 'stop' })
      return result
    },
  }
}

// One cell of the report for the hostile senders: what became of them.
export function hostileCell(h: HostileResult | undefined): string {
  if (!h) return '–'
  const bombs = Object.entries(h.bombAnswers)
    .sort()
    .map(([status, n]) => `${n}×${status === '0' ? 'error' : status}`)
    .join(' ')
  return `${h.slowCut} slow cut; bombs ${bombs}`
}
