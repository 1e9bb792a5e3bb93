// Who may post now: ingest slots (requests in progress) shared so that no tap and no sender can
// take the capacity others need. A request needs a slot of the relay's, of its tap's share and of
// its sender's (remote address) share; without one its chunk is dropped unread (the caller reads
// it only to count its records, which its tap's listeners are told of).
import type { ShedCause } from './metrics.ts'

export interface SlotLimits {
  maxInflightChunks: number
  maxInflightPerTap: number
  maxInflightPerSender: number
}

export class IngestSlots {
  readonly #l: SlotLimits
  #all = 0
  readonly #taps = new Map<string, number>()
  readonly #senders = new Map<string, number>()

  constructor(limits: SlotLimits) {
    this.#l = limits
  }

  get inUse(): number {
    return this.#all
  }

  // Takes a slot for a request of `tap` from `sender`; undefined when taken, else why not.
  take(tap: string, sender: string): ShedCause | undefined {
    const t = this.#taps.get(tap) ?? 0
    const s = this.#senders.get(sender) ?? 0
    if (t >= this.#l.maxInflightPerTap) return 'tap-slots'
    if (s >= this.#l.maxInflightPerSender) return 'sender-slots'
    if (this.#all >= this.#l.maxInflightChunks) return 'relay-slots'
    this.#all++
    this.#taps.set(tap, t + 1)
    this.#senders.set(sender, s + 1)
    return undefined
  }

  give(tap: string, sender: string): void {
    this.#all--
    const t = this.#taps.get(tap)! - 1
    if (t > 0) this.#taps.set(tap, t)
    else this.#taps.delete(tap)
    const s = this.#senders.get(sender)! - 1
    if (s > 0) this.#senders.set(sender, s)
    else this.#senders.delete(sender)
  }
}
