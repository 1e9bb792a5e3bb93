// One memory budget for the relay process, and every buffer bound derived from it.
//
// The budget is what the process may use in all (its RSS ceiling): by default 90% of the
// container's memory limit, so the pod is never OOM-killed by the relay's buffers. A fixed part
// is kept for the program itself (code, heaps, sockets, the controller's caches); the rest is
// shared out between the four kinds of memory that grow with traffic, each a pool that refuses
// or sheds before it would pass its share:
//   rings      record frames of all taps (replay buffers and how far listeners may fall behind)
//   listeners  bytes waiting in listeners' sockets
//   inflight   request bodies the ingest server holds while reading them
//   inflate    gzip output held before its records are taken

export const MiB = 1024 * 1024
// What the program needs besides the pools (measured: ~125 MB RSS once started, plus headroom
// for garbage the collector has not yet returned).
export const PROGRAM_RESERVE = 160 * MiB
// Without a container limit (a developer's machine, the bench, tests).
export const DEFAULT_BUDGET = 512 * MiB
export const MIN_BUDGET = 64 * MiB
// Share of the container limit taken by default: the rest is slack for what is not accounted.
const SHARE_OF_LIMIT = 0.9

export interface MemoryBudget {
  total: number
  rings: number
  listeners: number
  inflight: number
  inflate: number
}

// Pure: the pools' shares of a budget. With a small budget the pools still get a quarter of it.
export function deriveBudget(total: number): MemoryBudget {
  const pools = Math.max(total - PROGRAM_RESERVE, total / 4)
  return {
    total,
    rings: Math.floor(pools * 0.4),
    listeners: Math.floor(pools * 0.2),
    inflight: Math.floor(pools * 0.2),
    inflate: Math.floor(pools * 0.2),
  }
}

// Pure: the budget a process gets by default under a container limit (undefined: none).
export function defaultMemoryBudget(containerLimit: number | undefined): number {
  return containerLimit === undefined ? DEFAULT_BUDGET : Math.floor(containerLimit * SHARE_OF_LIMIT)
}

// Above this a cgroup v1 limit means "unlimited" (the kernel reports PAGE_COUNTER_MAX pages).
const UNLIMITED = 2 ** 60

// The memory limit of the container this process runs in, from cgroup v2 (`memory.max`) or v1
// (`memory.limit_in_bytes`); undefined when there is none. `read` returns a file's text or
// undefined when it cannot be read.
export function containerMemoryLimit(read: (path: string) => string | undefined): number | undefined {
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    const text = read(file)?.trim()
    if (text === undefined || text === '') continue
    if (text === 'max') return undefined
    const n = Number(text)
    if (Number.isSafeInteger(n) && n > 0 && n < UNLIMITED) return n
    return undefined
  }
  return undefined
}

const UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  ki: 1024,
  mi: MiB,
  gi: 1024 * MiB,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: MiB,
  gib: 1024 * MiB,
}

// "512Mi", "400M", "1Gi", "1073741824" (Kubernetes quantities and plain bytes) → bytes;
// undefined when the text is none of these.
export function parseByteSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text)
  if (!m) return undefined
  const unit = UNITS[m[2]!.toLowerCase()]
  if (unit === undefined) return undefined
  const n = Math.floor(Number(m[1]) * unit)
  return Number.isSafeInteger(n) ? n : undefined
}

// A byte count that may not pass its limit: what is taken must be given back.
export class Pool {
  readonly limit: number
  #used = 0
  #peak = 0

  constructor(limit: number) {
    this.limit = limit
  }

  get used(): number {
    return this.#used
  }

  // The most ever taken at once.
  get peak(): number {
    return this.#peak
  }

  // Takes n bytes if they fit; false (nothing taken) if they do not.
  tryTake(n: number): boolean {
    if (this.#used + n > this.limit) return false
    this.#used += n
    if (this.#used > this.#peak) this.#peak = this.#used
    return true
  }

  // Takes n bytes whether or not they fit (for memory already in use).
  take(n: number): void {
    this.#used += n
    if (this.#used > this.#peak) this.#peak = this.#used
  }

  give(n: number): void {
    this.#used -= n
  }
}
