// Pre-built WebSocket frames: what the relay writes straight to listener sockets must be frames a
// real client decodes to exactly the `record` message (and other server messages), at every
// payload-length encoding of RFC 6455 §5.2 (7-bit, 16-bit, 64-bit).
import t from 'tap'
import * as wsModule from 'ws'
import {
  FramePool,
  type FrameStore,
  recordFrame,
  recordWireFrame,
  TapFrames,
  textWireFrame,
  wirePayload,
} from '../controller/relay/frames.ts'

// ws's frame parser (exported at runtime, not in its type declarations).
interface FrameReceiver {
  on(event: 'message', f: (data: Buffer, isBinary: boolean) => void): void
  on(event: 'error', f: (err: Error) => void): void
  write(chunk: Buffer, cb: () => void): void
}
const Receiver = (wsModule as unknown as { Receiver: new (o: { isServer: boolean }) => FrameReceiver })
  .Receiver

// Decodes a byte stream of frames with ws's own client-side parser.
function decode(bytes: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const out: string[] = []
    const r = new Receiver({ isServer: false })
    r.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) reject(new Error('binary frame'))
      out.push(data.toString('utf8'))
    })
    r.on('error', reject)
    r.write(bytes, () => resolve(out))
  })
}

t.test('record frames decode to the record message at every length encoding', async (t) => {
  const head = '{"type":"record","seq":7,"record":'.length + 1
  // Payload sizes around the 125/126 and 65535/65536 boundaries.
  for (const payload of [60, 125, 126, 127, 65535, 65536, 70000]) {
    const inner = 'x'.repeat(payload - head - '{"m":""}'.length)
    const record = `{"m":"${inner}"}`
    const body = Buffer.from(`  ${record}\n`)
    const wire = recordWireFrame(7, body, 2, 2 + record.length)
    const message = recordFrame(7, body, 2, 2 + record.length)
    t.equal(message.length, payload, `payload ${payload}`)
    t.same(wirePayload(wire), message, `payload ${payload}: wirePayload is the message`)
    t.same(await decode(wire), [message.toString('utf8')], `payload ${payload}: decodes`)
  }
})

t.test('several frames written as one buffer decode one by one, in order', async (t) => {
  const body = Buffer.from('{"a":1}\n{"b":"é"}\n')
  const denied = JSON.stringify({ type: 'denied', seq: 2, pod: 'ns/p', count: 1, message: 'no — é' })
  const wire = Buffer.concat([
    recordWireFrame(1, body, 0, 7),
    textWireFrame(denied),
    recordWireFrame(3, body, 8, 18),
  ])
  t.same(await decode(wire), [
    '{"type":"record","seq":1,"record":{"a":1}}',
    denied,
    '{"type":"record","seq":3,"record":{"b":"é"}}',
  ])
})

t.test('frames placed side by side in shared stores decode one by one, across stores', async (t) => {
  const pool = new FramePool(64 * 1024 * 1024)
  const frames = new TapFrames(pool)
  // Enough records to fill more than one store, and one larger than a whole store.
  const records = Array.from({ length: 700 }, (_, i) =>
    JSON.stringify({ i, m: 'é'.repeat(i % 7 === 0 ? 900 : 300) }),
  )
  records.splice(350, 0, JSON.stringify({ big: 'x'.repeat(FramePool.STORE_BYTES + 10) }))
  const body = Buffer.from(records.join('\n'))
  const places: { store: FrameStore; off: number; len: number }[] = []
  let start = 0
  for (const [i, r] of records.entries()) {
    const end = start + Buffer.byteLength(r)
    t.ok(frames.place(1_000_000 + i, body, start, end), 'placed', { diagnostic: false })
    places.push({ store: frames.store!, off: frames.off, len: frames.len })
    start = end + 1
  }
  t.ok(new Set(places.map((p) => p.store)).size >= 3, 'several stores were used')
  const adjacent = places.every((b, i) => {
    const a = places[i - 1]
    return !a || a.store !== b.store || b.off === a.off + a.len
  })
  t.ok(adjacent, 'frames in one store are adjacent')
  const got = await decode(Buffer.concat(places.map((p) => p.store.buf.subarray(p.off, p.off + p.len))))
  t.same(
    got,
    records.map((r, i) => `{"type":"record","seq":${1_000_000 + i},"record":${r}}`),
    'every frame decodes to its record message, in order',
  )
})

t.test(
  'stores go back to the pool once no ring holds a frame in them and no write refers to them',
  async (t) => {
    const pool = new FramePool(3 * FramePool.STORE_BYTES)
    const frames = new TapFrames(pool)
    const rec = Buffer.from(JSON.stringify({ m: 'x'.repeat(30_000) }))
    const placed: FrameStore[] = []
    for (let i = 0; i < 6 && frames.place(i + 1, rec, 0, rec.length); i++) placed.push(frames.store!)
    t.equal(placed.length, 6, 'two frames per store, three stores')
    t.notOk(frames.place(7, rec, 0, rec.length), 'the budget is spent: no fourth store')
    t.equal(pool.bytes.used, 3 * FramePool.STORE_BYTES)
    const first = placed[0]!
    first.pins++ // a socket write still refers to it
    first.live = 0 // the ring let go of both its frames
    pool.release(first)
    t.notOk(frames.place(7, rec, 0, rec.length), 'a pinned store is not reused')
    first.pins--
    pool.release(first)
    t.ok(frames.place(7, rec, 0, rec.length), 'once unpinned it is')
    t.equal(frames.store, first, 'the same buffer, reused')
    t.equal(pool.bytes.used, 3 * FramePool.STORE_BYTES, 'nothing more allocated')
    t.ok(frames.place(8, rec, 0, rec.length, true) && frames.place(9, rec, 0, rec.length, true), 'force')
    t.equal(pool.bytes.used, 4 * FramePool.STORE_BYTES, 'force goes past the budget, and says so')
  },
)
