// A fixed-memory latency histogram in microseconds: 10 µs buckets up to 100 ms, 1 ms buckets up
// to 100 s, and the exact maximum. Percentiles report a bucket's upper edge, so they never
// understate; the error is at most one bucket (10 µs below 100 ms).
const FINE_US = 10
const FINE_LIMIT_US = 100_000
const COARSE_US = 1_000
const COARSE_LIMIT_US = 100_000_000
const FINE = FINE_LIMIT_US / FINE_US
const COARSE = (COARSE_LIMIT_US - FINE_LIMIT_US) / COARSE_US

export interface HistogramData {
  counts: number[] // sparse: [bucket, count, bucket, count, ...]
  count: number
  max: number
}

export class Histogram {
  readonly counts = new Float64Array(FINE + COARSE + 1)
  count = 0
  max = 0

  record(us: number): void {
    const v = Math.max(us, 0)
    let b: number
    if (v < FINE_LIMIT_US) b = Math.floor(v / FINE_US)
    else if (v < COARSE_LIMIT_US) b = FINE + Math.floor((v - FINE_LIMIT_US) / COARSE_US)
    else b = FINE + COARSE
    this.counts[b]!++
    this.count++
    if (v > this.max) this.max = v
  }

  // Records `n` samples of the same value (a chunk's records share their send time).
  recordN(us: number, n: number): void {
    for (let i = 0; i < n; i++) this.record(us)
  }

  // The value at or below which a fraction `q` (0..1] of the samples lie (µs); 0 when empty.
  percentile(q: number): number {
    if (this.count === 0) return 0
    const rank = Math.max(1, Math.ceil(q * this.count))
    let seen = 0
    for (let b = 0; b < this.counts.length; b++) {
      seen += this.counts[b]!
      if (seen >= rank) return Math.min(upperEdge(b), this.max)
    }
    return this.max
  }

  merge(o: Histogram | HistogramData): void {
    if (o instanceof Histogram) for (let b = 0; b < o.counts.length; b++) this.counts[b]! += o.counts[b]!
    else for (let i = 0; i < o.counts.length; i += 2) this.counts[o.counts[i]!]! += o.counts[i + 1]!
    this.count += o.count
    if (o.max > this.max) this.max = o.max
  }

  toJSON(): HistogramData {
    const counts: number[] = []
    for (let b = 0; b < this.counts.length; b++) if (this.counts[b]) counts.push(b, this.counts[b]!)
    return { counts, count: this.count, max: this.max }
  }

  static from(d: HistogramData): Histogram {
    const h = new Histogram()
    h.merge(d)
    return h
  }
}

function upperEdge(b: number): number {
  if (b < FINE) return (b + 1) * FINE_US
  if (b < FINE + COARSE) return FINE_LIMIT_US + (b - FINE + 1) * COARSE_US
  return Number.POSITIVE_INFINITY
}
