// Waiting in tests: polls `f` until it returns something (neither undefined, null nor false) and
// returns that; fails naming `what` after `ms`. The default is generous because it only matters
// when the test fails anyway, and loaded CI machines are slow.
import { setTimeout as sleep } from 'node:timers/promises'

type Found<T> = Exclude<T, undefined | null | false>

export async function until<T>(
  what: string,
  f: () => T | Promise<T>,
  ms = 30_000,
  everyMs = 20,
): Promise<Found<T>> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await f()
    if (v !== undefined && v !== null && v !== false) return v as Found<T>
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}
