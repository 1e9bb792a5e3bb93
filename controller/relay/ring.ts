// A sequence-numbered ring of recent records for one tap. It is both the replay buffer and
// every listener's queue: a listener is just a cursor (the next seq it will be sent), so fan-out
// costs one append per record however many listeners there are, and a stalled listener costs
// no memory beyond the ring's own bounds (records and bytes).

export interface Sized {
  size: number // bytes the entry holds
}

export class Ring<T extends Sized> {
  #items: (T | undefined)[] = []
  #cum: number[] = [] // cumulative bytes pushed up to and including each entry
  #off = 0 // index of the oldest entry in #items
  #firstSeq = 1
  #pushedBytes = 0
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
    this.#pushedBytes += item.size
    this.#cum.push(this.#pushedBytes)
    this.#bytes += item.size
    return this.lastSeq
  }

  get(seq: number): T | undefined {
    if (seq < this.#firstSeq || seq > this.lastSeq) return undefined
    return this.#items[this.#off + seq - this.#firstSeq]
  }

  // Bytes held from `seq` (inclusive) to the newest entry.
  bytesFrom(seq: number): number {
    if (seq > this.lastSeq) return 0
    const from = Math.max(seq, this.#firstSeq)
    const i = this.#off + from - this.#firstSeq
    return this.#pushedBytes - (this.#cum[i]! - this.#items[i]!.size)
  }

  // The smallest seq ≥ `seq` such that at most `maxBytes` are held from it to the newest entry.
  seqWithin(seq: number, maxBytes: number): number {
    let lo = Math.max(seq, this.#firstSeq)
    let hi = this.lastSeq + 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.bytesFrom(mid) <= maxBytes) hi = mid
      else lo = mid + 1
    }
    return lo
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
      this.#cum = this.#cum.slice(this.#off)
      this.#off = 0
    }
    return dropped
  }
}
