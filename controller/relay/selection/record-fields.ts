// What the listeners of one tap need to read from its records for their selections, read once per
// record and shared by all of them: where the wanted top-level members' values lie (found during
// the walk ingest makes anyway, records.ts TopMembers), kept by sequence number in slots that are
// reused, never per record: a record whose slot was taken since is simply read again.
import { recordMeta, TopMembers } from '../records.ts'

export class RecordFields {
  #names: string[] = []
  #index = new Map<string, number>()
  // Scratch for ingest; undefined while no selection needs any member.
  top: TopMembers | undefined
  #mask = -1
  #seqs = new Float64Array(0) // the seq each slot holds (0: none)
  #starts = new Int32Array(0) // per slot, per name: offset of the value from the record's start, -1: absent
  #ends = new Int32Array(0)

  // Also read these top-level members from now on. Names only accumulate, so the indices
  // selections hold stay valid; what was found before is forgotten when one is added.
  want(names: readonly string[]): void {
    const added = names.filter((n) => !this.#index.has(n))
    if (added.length === 0) return
    for (const n of new Set(added)) {
      this.#index.set(n, this.#names.length)
      this.#names.push(n)
    }
    this.top = new TopMembers(this.#names)
    this.#alloc(this.#mask + 1)
  }

  // No selection reads anything any more: ingest stops looking.
  clear(): void {
    this.#names = []
    this.#index.clear()
    this.top = undefined
    this.#alloc(0)
  }

  indexOf(name: string): number {
    return this.#index.get(name) ?? -1
  }

  // At least `capacity` slots (the ring's capacity: a listener may be that far behind).
  ensureCapacity(capacity: number): void {
    if (this.#mask + 1 >= capacity) return
    this.#alloc(2 ** Math.ceil(Math.log2(Math.max(16, capacity))))
  }

  #alloc(cap: number): void {
    this.#mask = cap - 1
    if (cap === 0) {
      this.#seqs = new Float64Array(0)
      this.#starts = this.#ends = new Int32Array(0)
      return
    }
    const k = Math.max(1, this.#names.length)
    this.#seqs = new Float64Array(cap)
    this.#starts = new Int32Array(cap * k)
    this.#ends = new Int32Array(cap * k)
  }

  // Ingest walked record `seq` (starting at `start` of the walked buffer) with `top`: keep it.
  store(seq: number, start: number): void {
    const top = this.top
    if (!top || this.#mask < 0) return
    const slot = seq & this.#mask
    const k = this.#names.length
    this.#seqs[slot] = seq
    for (let n = 0; n < k; n++) {
      const s = top.starts[n]!
      this.#starts[slot * k + n] = s < 0 ? -1 : s - start
      this.#ends[slot * k + n] = s < 0 ? -1 : top.ends[n]! - start
    }
  }

  // The base index of record `seq`'s ranges (for start/end), reading the record [s, e) of buf
  // again if its slot holds another one.
  slot(seq: number, buf: Buffer, s: number, e: number): number {
    const slot = seq & this.#mask
    if (this.#seqs[slot] !== seq) {
      recordMeta(buf, s, e, true, this.top)
      this.store(seq, s)
    }
    return slot * this.#names.length
  }

  // Offsets from the record's start of member n's value (-1: the record has none).
  start(base: number, n: number): number {
    return this.#starts[base + n]!
  }

  end(base: number, n: number): number {
    return this.#ends[base + n]!
  }

  // The record's text, for line regexes. Decoded per listener and never kept: a cache of texts
  // made them outlive the young generation (measured: more CPU and twice the heap, bench filter-1pct).
  text(buf: Buffer, s: number, e: number): string {
    return buf.toString('utf8', s, e)
  }
}
