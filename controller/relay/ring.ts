// A sequence-numbered ring of recent records for one tap. It is both the replay buffer and
// every listener's queue: a listener is just a cursor (the next seq it will be sent), so fan-out
// costs one append per record however many listeners there are, and a stalled listener costs
// no memory beyond the ring's own bounds (records and bytes).

export interface Sized {
  size: number // bytes the entry holds
}

export class Ring<T extends Sized> {
  #items: (T | undefined)[] = []
  #off = 0 // index of the oldest entry in #items
  #firstSeq = 1
  #bytes = 0

  // Sequence number of the oldest entry held (lastSeq + 1 when empty).
  get firstSeq(): number {
    return this.#firstSeq
  }

  // Sequence number of the newest entry ever pushed (0 before the first).
  get lastSeq(): number {
    return this.#firstSeq + this.length - 1
  }

  get length(): number {
    return this.#items.length - this.#off
  }

  get bytes(): number {
    return this.#bytes
  }

  // Appends an entry and returns its sequence number.
  push(item: T): number {
    this.#items.push(item)
    this.#bytes += item.size
    return this.lastSeq
  }

  get(seq: number): T | undefined {
    if (seq < this.#firstSeq || seq > this.lastSeq) return undefined
    return this.#items[this.#off + seq - this.#firstSeq]
  }

  // Drops the oldest entries until at most maxRecords and maxBytes remain. Returns how many.
  trim(maxRecords: number, maxBytes: number): number {
    let dropped = 0
    while (this.length > 0 && (this.length > maxRecords || this.#bytes > maxBytes)) {
      this.#bytes -= this.#items[this.#off]!.size
      this.#items[this.#off] = undefined
      this.#off++
      this.#firstSeq++
      dropped++
    }
    // Compact once the dead prefix dominates, so the arrays stay proportional to what is held.
    if (this.#off > 1024 && this.#off * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#off)
      this.#off = 0
    }
    return dropped
  }
}
