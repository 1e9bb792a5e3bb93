// The reader at the other end of k8stail's stdout (a named pipe) in the end-to-end scenarios:
// counts what k8stail printed, optionally reads no faster than a given rate (a slow consumer),
// and with `account` (json output) checks that every sequence number up to the last one seen was
// printed, or covered by a `denied` or `dropped` notice, exactly once (seq-account.ts).
import { openSync } from 'node:fs'
import { Socket } from 'node:net'
import { cpuMs, guard, params, send } from './protocol.ts'
import { SeqAccount } from './seq-account.ts'

export interface SinkParams {
  fifo: string
  bytesPerSecond?: number // 0 or absent: as fast as k8stail writes
  account?: boolean
}

export interface SinkSample {
  type: 'sample'
  bytes: number
  lines: number
  records: number // lines carrying a bench record (its send stamp)
  cpuMs: number
}

export interface SinkResult extends Omit<SinkSample, 'type'> {
  type: 'result'
  lastSeq: number
  unaccounted: number // sequence numbers ≤ lastSeq neither printed nor reported
  duplicates: number // sequence numbers printed or reported more than once
  reportedDropped: number // records `dropped` notices stood for
}

const p = params<SinkParams>()
guard(30 * 60 * 1000)

const MARKER = Buffer.from('bench_ts=') // in every bench record's message, in every output mode
const NL = 0x0a
const s = { bytes: 0, lines: 0, records: 0 }
const seqs = new SeqAccount()
let carry = Buffer.alloc(0)

function take(chunk: Buffer): void {
  s.bytes += chunk.length
  for (let at = chunk.indexOf(MARKER); at >= 0; at = chunk.indexOf(MARKER, at + MARKER.length)) s.records++
  for (let at = chunk.indexOf(NL); at >= 0; at = chunk.indexOf(NL, at + 1)) s.lines++
  if (!p.account) return
  const text = carry.length ? Buffer.concat([carry, chunk]) : chunk
  let from = 0
  for (let at = text.indexOf(NL); at >= 0; from = at + 1, at = text.indexOf(NL, from))
    seqs.line(text.toString('utf8', from, at))
  carry = Buffer.from(text.subarray(from))
}

// A pipe read as a stream (epoll), as a shell pipeline's next process would, not through the
// file system's thread pool. The bench holds a write end open, so opening does not block.
const stdin = new Socket({ fd: openSync(p.fifo, 'r'), readable: true, writable: false })
let readSince = process.hrtime.bigint()
let readBytes = 0
stdin.on('data', (chunk) => {
  const b = chunk as Buffer
  take(b)
  if (!p.bytesPerSecond) return
  // A token bucket: after each read, wait until the bytes so far fit the rate.
  readBytes += b.length
  const dueNs = readSince + BigInt(Math.round((readBytes / p.bytesPerSecond) * 1e9))
  const waitMs = Number(dueNs - process.hrtime.bigint()) / 1e6
  if (waitMs > 1) {
    stdin.pause()
    setTimeout(() => stdin.resume(), waitMs)
  }
  if (waitMs < -1000) {
    readSince = process.hrtime.bigint() // fell behind (nothing to read): no burst afterwards
    readBytes = 0
  }
})
const ended = new Promise<void>((resolve) => stdin.on('close', resolve))

const sample = (): Omit<SinkSample, 'type'> => ({
  bytes: s.bytes,
  lines: s.lines,
  records: s.records,
  cpuMs: cpuMs(),
})

process.on('message', async (m: { type?: string }) => {
  if (m.type === 'sample') await send({ type: 'sample', ...sample() } satisfies SinkSample)
  if (m.type === 'finish') {
    await ended
    await send({
      type: 'result',
      ...sample(),
      lastSeq: seqs.lastSeq,
      unaccounted: seqs.unaccounted(),
      duplicates: seqs.duplicates,
      reportedDropped: seqs.reportedDropped,
    } satisfies SinkResult)
    process.exit(0)
  }
})
await send({ type: 'ready' })
