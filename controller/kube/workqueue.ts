// A keyed work queue in the client-go mould: a key is queued at most once (dedupe), a key being
// processed is never handed out again until it is done (re-adds mark it dirty and it runs once
// more afterwards), failures retry with per-key exponential backoff that success resets, and
// requeueAfter is a timer. Clock and timers are injected so tests run on a fake clock.
import { realTimers, type Timers } from './timers.ts'

export interface Result {
  requeueAfterMs?: number
}

interface WorkQueueOptions {
  handler: (key: string) => Promise<Result | undefined>
  concurrency?: number
  baseDelayMs?: number
  maxDelayMs?: number
  timers?: Timers
  onError?: (key: string, err: unknown, retryInMs: number) => void
  onDepth?: (depth: number) => void
}

export class WorkQueue {
  private readonly queue: string[] = []
  private readonly queued = new Set<string>()
  private readonly processing = new Set<string>()
  private readonly dirty = new Set<string>()
  private readonly failures = new Map<string, number>()
  private readonly delayed = new Map<string, { at: number; handle: unknown }>()
  private readonly running = new Set<Promise<void>>()
  private readonly o: Required<Omit<WorkQueueOptions, 'onError' | 'onDepth'>> & WorkQueueOptions
  private stopped = false
  private idleWaiters: (() => void)[] = []

  constructor(o: WorkQueueOptions) {
    this.o = { concurrency: 2, baseDelayMs: 1000, maxDelayMs: 30_000, timers: realTimers, ...o }
  }

  get depth(): number {
    return this.queue.length
  }

  add(key: string): void {
    if (this.stopped) return
    if (this.processing.has(key)) {
      this.dirty.add(key)
      return
    }
    if (this.queued.has(key)) return
    this.queued.add(key)
    this.queue.push(key)
    this.o.onDepth?.(this.queue.length)
    this.pump()
  }

  // Adds the key after `ms`; an earlier pending timer for the key wins.
  addAfter(key: string, ms: number): void {
    if (this.stopped) return
    if (ms <= 0) {
      this.add(key)
      return
    }
    const at = this.o.timers.now() + ms
    const pending = this.delayed.get(key)
    if (pending && pending.at <= at) return
    if (pending) this.o.timers.clearTimeout(pending.handle)
    const handle = this.o.timers.setTimeout(() => {
      this.delayed.delete(key)
      this.add(key)
    }, ms)
    this.delayed.set(key, { at, handle })
  }

  // Backoff the next failure of `key` would get.
  backoffFor(key: string): number {
    const n = this.failures.get(key) ?? 0
    return Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** n)
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.o.concurrency && this.queue.length > 0) {
      const key = this.queue.shift() as string
      this.queued.delete(key)
      this.processing.add(key)
      this.o.onDepth?.(this.queue.length)
      const p: Promise<void> = this.process(key).finally(() => {
        this.running.delete(p)
        this.processing.delete(key)
        if (this.dirty.delete(key)) this.add(key)
        this.pump()
        if (this.running.size === 0 && this.queue.length === 0)
          for (const w of this.idleWaiters.splice(0)) w()
      })
      this.running.add(p)
    }
  }

  private async process(key: string): Promise<void> {
    try {
      const r = await this.o.handler(key)
      this.failures.delete(key)
      if (r?.requeueAfterMs !== undefined) this.addAfter(key, r.requeueAfterMs)
    } catch (err) {
      const delay = this.backoffFor(key)
      this.failures.set(key, (this.failures.get(key) ?? 0) + 1)
      this.o.onError?.(key, err, delay)
      this.addAfter(key, delay)
    }
  }

  // Resolves when nothing is queued or running (delayed keys do not count).
  idle(): Promise<void> {
    if (this.running.size === 0 && this.queue.length === 0) return Promise.resolve()
    return new Promise((r) => this.idleWaiters.push(r))
  }

  // Stops handing out keys, cancels timers and waits for running handlers.
  async stop(): Promise<void> {
    this.stopped = true
    for (const { handle } of this.delayed.values()) this.o.timers.clearTimeout(handle)
    this.delayed.clear()
    this.queue.length = 0
    this.queued.clear()
    await Promise.allSettled([...this.running])
  }
}
