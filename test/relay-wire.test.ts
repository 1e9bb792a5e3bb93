// Pre-built WebSocket frames: what the relay writes straight to listener sockets must be frames a
// real client decodes to exactly the `record` message (and other server messages), at every
// payload-length encoding of RFC 6455 §5.2 (7-bit, 16-bit, 64-bit).
import t from 'tap'
import * as wsModule from 'ws'
import { recordFrame, recordWireFrame, textWireFrame, wirePayload } from '../controller/relay/listener.ts'

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
