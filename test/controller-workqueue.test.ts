import t from 'tap'
import type { Timers } from '../controller/kube/timers.ts'
import { WorkQueue } from '../controller/kube/workqueue.ts'

// A fake clock: timers fire only when the test advances time.
class FakeTimers implements Timers {
  t = 0
  private next = 1
  private pending = new Map<number, { at: number; fn: () => void }>()
  now = () => this.t
  setTimeout = (fn: () => void, ms: number) => {
    const id = this.next++
    this.pending.set(id, { at: this.t + ms, fn })
    return id
  }
  clearTimeout = (h: unknown) => {
    this.pending.delete(h as number)
  }
  async advance(ms: number) {
    const end = this.t + ms
    for (;;) {
      const due = [...this.pending.entries()]
        .filter(([, p]) => p.at <= end)
        .sort((a, b) => a[1].at - b[1].at)[0]
      if (!due) break
      this.pending.delete(due[0])
      this.t = due[1].at
      due[1].fn()
      await flush()
    }
    this.t = end
    await flush()
  }
  get count() {
    return this.pending.size
  }
}

const flush = () => new Promise<void>((r) => setImmediate(r))

t.test('a key queued many times while waiting runs once', async (t) => {
  const runs: string[] = []
  let release: () => void = () => {}
  const q = new WorkQueue({
    concurrency: 1,
    timers: new FakeTimers(),
    handler: async (k) => {
      runs.push(k)
      if (k === 'busy') await new Promise<void>((r) => (release = r))
      return undefined
    },
  })
  q.add('busy')
  q.add('a/x')
  q.add('a/x')
  q.add('a/y')
  q.add('a/x')
  t.equal(q.depth, 2)
  release()
  await q.idle()
  t.same(runs, ['busy', 'a/x', 'a/y'])
  await q.stop()
})

t.test(
  'a key is never processed concurrently; a re-add during processing runs once more afterwards',
  async (t) => {
    let active = 0
    let maxActive = 0
    let runs = 0
    let release: () => void = () => {}
    const q = new WorkQueue({
      concurrency: 4,
      timers: new FakeTimers(),
      handler: async () => {
        active++
        maxActive = Math.max(maxActive, active)
        runs++
        if (runs === 1) await new Promise<void>((r) => (release = r))
        active--
        return undefined
      },
    })
    q.add('k')
    await flush()
    q.add('k')
    q.add('k')
    await flush()
    t.equal(runs, 1, 'second add waits for the first run')
    release()
    await q.idle()
    await flush()
    await q.idle()
    t.equal(runs, 2, 'the dirty key ran exactly once more')
    t.equal(maxActive, 1)
    await q.stop()
  },
)

t.test('failures back off exponentially up to the cap; success resets', async (t) => {
  const clock = new FakeTimers()
  const at: number[] = []
  let fail = true
  const q = new WorkQueue({
    timers: clock,
    baseDelayMs: 1000,
    maxDelayMs: 30_000,
    handler: async () => {
      at.push(clock.now())
      if (fail) throw new Error('boom')
      return undefined
    },
  })
  q.add('k')
  await flush()
  await clock.advance(70_000)
  const gaps = at.slice(1).map((x, i) => x - (at[i] as number))
  t.same(gaps.slice(0, 6), [1000, 2000, 4000, 8000, 16000, 30000])
  fail = false
  await clock.advance(30_000)
  t.equal(q.backoffFor('k'), 1000, 'success reset the backoff')
  const n = at.length
  await clock.advance(60_000)
  t.equal(at.length, n, 'no retries after success')
  await q.stop()
})

t.test('requeueAfter re-adds after the delay; the earliest pending timer wins', async (t) => {
  const clock = new FakeTimers()
  const at: number[] = []
  const q = new WorkQueue({
    timers: clock,
    handler: async () => {
      at.push(clock.now())
      return at.length === 1 ? { requeueAfterMs: 5000 } : undefined
    },
  })
  q.add('k')
  await flush()
  q.addAfter('k', 10_000)
  q.addAfter('k', 2_000)
  await clock.advance(20_000)
  t.same(at, [0, 2000], 'the 2 s timer replaced the later ones and fired once')
  t.equal(clock.count, 0)
  await q.stop()
})

t.test('stop cancels timers, drops queued keys and waits for running handlers', async (t) => {
  const clock = new FakeTimers()
  let finished = false
  const q = new WorkQueue({
    timers: clock,
    concurrency: 1,
    handler: async (k) => {
      if (k === 'slow') await new Promise((r) => setTimeout(r, 20))
      finished = true
      return undefined
    },
  })
  q.add('slow')
  q.add('other')
  q.addAfter('later', 1000)
  await flush()
  await q.stop()
  t.ok(finished, 'running handler completed before stop resolved')
  t.equal(clock.count, 0, 'no timers left')
  q.add('x')
  t.equal(q.depth, 0, 'adds after stop are ignored')
})
