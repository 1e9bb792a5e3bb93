// releaseBytes frees a body piece's bytes at once, and only when the Buffer owns them all: a slice
// of Node's shared pool, or a view into another Buffer, must keep working. (That the relay keeps no
// view of a released piece is tested over a real socket in relay-ingest: lines cut by pieces.)
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { releaseBytes } from '../controller/relay/release.ts'

t.test('a Buffer that owns its ArrayBuffer is emptied and its bytes freed', async (t) => {
  const owned = Buffer.allocUnsafeSlow(65536).fill(1)
  releaseBytes(owned)
  t.equal(owned.length, 0)
  t.ok(owned.buffer.detached, 'the ArrayBuffer is detached: its backing store is gone')
  releaseBytes(owned) // twice is harmless
  t.equal(owned.length, 0)
})

t.test('a slice of a shared ArrayBuffer is left alone, and so are its neighbours', async (t) => {
  const pooled = Buffer.from('abc') // from Node's 8 KiB pool
  const neighbour = Buffer.from('def')
  t.equal(pooled.buffer, neighbour.buffer, 'both live in the same pool')
  releaseBytes(pooled)
  t.equal(pooled.toString(), 'abc')
  t.equal(neighbour.toString(), 'def')

  const whole = Buffer.allocUnsafeSlow(16).fill(7)
  const view = whole.subarray(4, 8)
  releaseBytes(view)
  t.same([...view], [7, 7, 7, 7], 'a view is not its ArrayBuffer')
  t.equal(whole.length, 16)
})

// What the relay relies on: Node gives each piece of a request body an ArrayBuffer of its own, so
// releasing one piece never touches another (or anything else in Node's pool).
t.test('the pieces of a request body own their ArrayBuffers', async (t) => {
  const pieces: Buffer[] = []
  const server = http.createServer((req, res) => {
    req.on('data', (piece: Buffer) => pieces.push(piece))
    req.on('end', () => res.end())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const { port } = server.address() as AddressInfo
  const body = Buffer.alloc(300_000, 'x')
  await new Promise<void>((resolve, reject) => {
    const req = http.request({ port, host: '127.0.0.1', method: 'POST' }, (res) => {
      res.resume()
      res.on('end', resolve)
    })
    req.on('error', reject)
    req.end(body)
  })
  t.ok(pieces.length > 1, `the body came in ${pieces.length} pieces`)
  t.equal(Buffer.concat(pieces).length, body.length)
  t.ok(
    pieces.every((p) => p.byteOffset === 0 && p.byteLength === p.buffer.byteLength),
    'every piece is the whole of its ArrayBuffer',
  )
  t.equal(new Set(pieces.map((p) => p.buffer)).size, pieces.length, 'no two pieces share one')
})
