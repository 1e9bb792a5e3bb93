// What k8stail's json output accounts for, by sequence number: a record printed, or a record
// covered by a `denied` notice (`count` records ending at its `seq`) or a `dropped` notice
// (`fromSeq`..`toSeq`). Every number up to the last one seen should be accounted for exactly once.
export class SeqAccount {
  #seen = new Uint8Array(1 << 16) // per sequence number: times accounted for (2 is enough to tell)
  lastSeq = 0
  duplicates = 0 // sequence numbers accounted for more than once
  reportedDropped = 0 // records `dropped` notices stood for

  // One line of `k8stail -o json` output.
  line(text: string): void {
    const m = JSON.parse(text) as { type: string; seq: number; count: number; fromSeq: number; toSeq: number }
    if (m.type === 'record') this.#mark(m.seq, m.seq)
    else if (m.type === 'denied') this.#mark(m.seq - m.count + 1, m.seq)
    else if (m.type === 'dropped') {
      this.#mark(m.fromSeq, m.toSeq)
      this.reportedDropped += m.count
    }
  }

  // Sequence numbers up to the last one seen that nothing accounted for.
  unaccounted(): number {
    let n = 0
    for (let q = 1; q <= this.lastSeq; q++) if (this.#seen[q] === 0) n++
    return n
  }

  #mark(from: number, to: number): void {
    if (to >= this.#seen.length) {
      const grown = new Uint8Array(Math.max(this.#seen.length * 2, to + 1))
      grown.set(this.#seen)
      this.#seen = grown
    }
    for (let q = from; q <= to; q++) {
      if (this.#seen[q]! > 0) this.duplicates++
      else this.#seen[q] = 1
    }
    this.lastSeq = Math.max(this.lastSeq, to)
  }
}
