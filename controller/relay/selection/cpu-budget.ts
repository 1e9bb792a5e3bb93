// How much CPU one listener's selection may use: a leaky bucket of CPU milliseconds. Regexes are
// limited to those with a linear-time fallback (api/safe-regex.ts), but linear in a long record is
// still slow over long records. A listener's selection may cost `share` of a core on average; what
// it costs beyond that adds up, and past capacityMs (10 s at a whole core, by default) it is over
// budget and the listener is disconnected.
export class CpuBudget {
  readonly #share: number // CPU ms per wall ms that drain away
  readonly #capacityMs: number
  #level = 0
  #at = 0

  constructor(share = 0.5, capacityMs = 5_000) {
    this.#share = share
    this.#capacityMs = capacityMs
  }

  // Adds `cpuMs` spent at wall time `nowMs`; true when over budget.
  charge(cpuMs: number, nowMs: number): boolean {
    if (this.#at) this.#level = Math.max(0, this.#level - (nowMs - this.#at) * this.#share)
    this.#at = nowMs
    this.#level += cpuMs
    return this.#level > this.#capacityMs
  }
}
