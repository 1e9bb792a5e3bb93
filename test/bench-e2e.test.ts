// The end-to-end bench's own logic (no timing): how the slow-stdout scenario decides that every
// record k8stail lost was reported, from its json output.
import t from 'tap'
import { SeqAccount } from '../scripts/bench/seq-account.ts'

const record = (seq: number) => `{"type":"record","seq":${seq},"record":{"n":${seq}}}`
const denied = (seq: number, count: number) =>
  JSON.stringify({ type: 'denied', seq, pod: 'a/b', count, message: 'Permission denied' })
const dropped = (fromSeq: number, toSeq: number) =>
  JSON.stringify({ type: 'dropped', count: toSeq - fromSeq + 1, fromSeq, toSeq, reason: 'slow-consumer' })
const hello =
  '{"type":"hello","tap":"bench/tap","epoch":"e","user":"u","lastSeq":0,"replayFrom":0,"resumed":false}'

function account(lines: string[]): SeqAccount {
  const a = new SeqAccount()
  for (const l of lines) a.line(l)
  return a
}

t.test('records, denied runs and dropped ranges together cover every seq once', async (t) => {
  const a = account([
    hello,
    record(1),
    denied(4, 3),
    dropped(5, 9),
    record(10),
    dropped(11, 70_000),
    record(70_001),
  ])
  t.equal(a.lastSeq, 70_001)
  t.equal(a.unaccounted(), 0)
  t.equal(a.duplicates, 0)
  t.equal(a.reportedDropped, 69_995)
})

t.test('a record neither printed nor reported is found, and so is one reported twice', async (t) => {
  const gap = account([record(1), record(2), record(4), dropped(5, 6)])
  t.equal(gap.unaccounted(), 1, 'seq 3')
  t.equal(gap.duplicates, 0)
  const twice = account([record(1), dropped(1, 3), denied(3, 1)])
  t.equal(twice.unaccounted(), 0)
  t.equal(twice.duplicates, 2, 'seq 1 printed and dropped, seq 3 dropped and denied')
})
