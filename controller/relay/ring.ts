// A sequence-numbered ring of one tap's recent records. It is both the replay buffer and every
// listener's queue: a listener is just a cursor (the next seq it will be sent), so fan-out costs
// one append per record however many listeners there are, and a stalled listener costs no memory
// beyond the ring's own bounds (records and bytes).
//
// Each record is a slot in parallel arrays (its frame's store, offset and length, its size and
// what RBAC needs), so holding records allocates nothing per record. A slot without a store
// stands for a record the relay dropped before it reached the ring (`relay-overloaded`): it takes
// a sequence number like any record, so every listener is told of it in order, with a count.
import type { FrameStore } from './frames.ts'
import type { DropReason } from './metrics.ts'
import type { RecordMeta } from './records.ts'

export class RecordRing {
  // Slot arrays, indexed by `index(seq)`; read by listeners.
  stores: (FrameStore | null)[]
  offs: Int32Array
  lens: Int32Array
  sizes: Int32Array
  metas: (RecordMeta | DropReason)[]
  #mask: number
  #head = 0 // slot of the oldest record
  #count = 0
  #firstSeq = 1
  #bytes = 0
  readonly #release: (s: FrameStore) => void

  // `release` is told of a store once the ring holds no frame in it any more.
  constructor(release: (s: FrameStore) => void, capacity = 1024) {
    this.#release = release
    const cap = 2 ** Math.ceil(Math.log2(Math.max(16, capacity)))
    this.#mask = cap - 1
    this.stores = new Array(cap).fill(null)
    this.offs = new Int32Array(cap)
    this.lens = new Int32Array(cap)
    this.sizes = new Int32Array(cap)
    this.metas = new Array(cap).fill('relay-overloaded')
  }

  // Sequence number of the oldest record held (lastSeq + 1 when empty).
  get firstSeq(): number {
    return this.#firstSeq
  }

  // Sequence number of the newest record ever pushed (0 before the first).
  get lastSeq(): number {
    return this.#firstSeq + this.#count - 1
  }

  get length(): number {
    return this.#count
  }

  // Bytes of the original records held.
  get bytes(): number {
    return this.#bytes
  }

  // The slot of a held seq (firstSeq ≤ seq ≤ lastSeq).
  index(seq: number): number {
    return (this.#head + seq - this.#firstSeq) & this.#mask
  }

  // Appends a record whose frame is [off, off + len) of store; returns its sequence number.
  push(store: FrameStore, off: number, len: number, size: number, meta: RecordMeta): number {
    const i = this.#slot()
    this.stores[i] = store
    this.offs[i] = off
    this.lens[i] = len
    this.sizes[i] = size
    this.metas[i] = meta
    this.#bytes += size
    return this.lastSeq
  }

  // Appends n records that were dropped for `reason` before reaching the ring. Beyond `max`
  // (the most records the ring would keep), the oldest of them take their sequence numbers
  // without slots, and everything held before goes: a listener that had not reached them is told
  // they were lost as a slow consumer (it would have lost them either way).
  pushDropped(n: number, reason: DropReason, max: number): void {
    if (n > max) {
      this.trim(0, 0)
      this.#firstSeq += n - max
      n = max
    }
    for (let k = 0; k < n; k++) {
      const i = this.#slot()
      this.stores[i] = null
      this.sizes[i] = 0
      this.metas[i] = reason
    }
  }

  // Drops the oldest records until at most maxRecords and maxBytes remain. Returns how many.
  trim(maxRecords: number, maxBytes: number): number {
    let n = 0
    while (this.#count > 0 && (this.#count > maxRecords || this.#bytes > maxBytes)) {
      this.#shift()
      n++
    }
    return n
  }

  // Drops the oldest records up to and including the last one framed in the oldest store held,
  // so that store can be reused. Returns how many (0 when empty).
  trimOldestStore(): number {
    let n = 0
    let store: FrameStore | null = null
    while (this.#count > 0) {
      const s = this.stores[this.#head]
      if (s) {
        if (store === null) store = s
        else if (s !== store) break
      }
      this.#shift()
      n++
    }
    return n
  }

  #shift(): void {
    const i = this.#head
    const s = this.stores[i]
    this.#bytes -= this.sizes[i]!
    if (s) {
      this.stores[i] = null
      if (--s.live === 0) this.#release(s)
    }
    this.#head = (i + 1) & this.#mask
    this.#count--
    this.#firstSeq++
  }

  // The slot for the next record, growing the arrays when full.
  #slot(): number {
    if (this.#count > this.#mask) this.#grow()
    const i = (this.#head + this.#count) & this.#mask
    this.#count++
    return i
  }

  #grow(): void {
    const cap = (this.#mask + 1) * 2
    const order = (a: ArrayLike<number> | unknown[], into: Int32Array | unknown[]): void => {
      for (let k = 0; k < this.#count; k++) into[k] = (a as never[])[(this.#head + k) & this.#mask]
    }
    const stores = new Array<FrameStore | null>(cap).fill(null)
    const metas = new Array<RecordMeta | DropReason>(cap).fill('relay-overloaded')
    const offs = new Int32Array(cap)
    const lens = new Int32Array(cap)
    const sizes = new Int32Array(cap)
    order(this.stores, stores)
    order(this.metas, metas)
    order(this.offs, offs)
    order(this.lens, lens)
    order(this.sizes, sizes)
    this.stores = stores
    this.metas = metas
    this.offs = offs
    this.lens = lens
    this.sizes = sizes
    this.#head = 0
    this.#mask = cap - 1
  }
}
