// A stdout that stops reading (a pipe into a pager or a slow consumer), over real sockets and
// real pipes: k8stail stops reading its WebSocket instead of buffering, so the bytes it holds stay
// bounded while the relay drops for it; when stdout reads again, the loss is reported and every
// record is either printed or counted as missing. Output also reaches a slow pipe in full before
// k8stail exits.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { closeSync, createReadStream, mkdtempSync, openSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { runCommand } from 'citty'
import t from 'tap'
import { createTailCommand } from '../cli/commands/tail.ts'
import { ExitCodes } from '../cli/errors.ts'
import { encodeChunk, type FakePod, generateRecords } from '../local-cluster/sample-records.ts'
import { startTestRelay } from './support/relay.ts'
import { until } from './support/until.ts'

const repoRoot = path.resolve(import.meta.dirname, '..')
const node = path.join(repoRoot, 'node_modules', '.bin', 'node')
const pods: FakePod[] = [{ namespace: 'shop', name: 'web-1', labels: { 'rbac/policy': 'allow' } }]

// A process that reads its stdin (a pipe) only once told to, and copies it to its stdout.
function stalledReader(): { child: ChildProcess; output: () => string; read: () => void } {
  const child = spawn(
    node,
    ['-e', "process.once('message', () => { process.stdin.pipe(process.stdout); process.disconnect() })"],
    { stdio: ['pipe', 'pipe', 'inherit', 'ipc'] },
  )
  let out = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d
  })
  return { child, output: () => out, read: () => child.send('read') }
}

t.test('a stalled stdout: bounded buffering, the relay drops, the loss is reported on resume', async (t) => {
  const r = await startTestRelay({ limits: { queueRecords: 2000, socketHighWater: 256 * 1024 } })
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'tap')
  const reader = stalledReader()
  t.teardown(() => reader.child.kill())
  const pipe = reader.child.stdin!
  let mostBuffered = 0
  const stdout = {
    isTTY: false,
    write(c: string | Uint8Array) {
      const ok = pipe.write(c)
      mostBuffered = Math.max(mostBuffered, pipe.writableLength)
      return ok
    },
    once: (e: 'drain' | 'close' | 'error', f: () => void) => pipe.once(e, f),
    off: (e: 'drain' | 'close' | 'error', f: () => void) => pipe.off(e, f),
  }
  const errs: string[] = []
  const ctrlC = new AbortController()
  const cmd = createTailCommand({
    stdout,
    stderr: { write: (c: string | Uint8Array) => errs.push(Buffer.from(c).toString()) },
    signal: ctrlC.signal,
    env: {},
    // Pings every 100 ms: a k8stail that took its own pause for a dead relay would reconnect.
    stream: { pingIntervalMs: 100 },
  })
  const rawArgs = ['shop/f', '--listen-addr', r.relay.addresses.stream.replace(/^http/, 'ws')]
  const done = runCommand(cmd, {
    rawArgs: [...rawArgs, '--attach', 'tap', '-t', 'token-alice', '-o', 'json'],
  }).then((x) => x.result as number)
  await until('connected', () => r.relay.context.hub.listeners().length === 1)

  // ~20 MB of records while nobody reads stdout.
  let posted = 0
  for (let i = 0; i < 40; i++) {
    const chunk = encodeChunk(generateRecords(pods, 500))
    t.equal((await r.post(tap, chunk.body, chunk.headers)).status, 200)
    posted += 500
  }
  await sleep(1000) // a stall longer than ten of k8stail's ping intervals
  t.ok(mostBuffered <= 512 * 1024, `at most 512 KB waited for stdout (${mostBuffered} bytes)`)

  reader.read()
  const end = encodeChunk(generateRecords(pods, 1, 0, () => 'END'))
  t.equal((await r.post(tap, end.body, end.headers)).status, 200)
  posted += 1
  await until('the last record on stdout', () => reader.output().includes('"END"'))
  ctrlC.abort()
  t.equal(await done, ExitCodes.Ok)

  const lines = reader
    .output()
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; seq: number; fromSeq: number; toSeq: number; count: number })
  const seen = new Array<number>(posted + 1).fill(0)
  let dropped = 0
  for (const m of lines) {
    if (m.type === 'record') seen[m.seq]!++
    if (m.type === 'dropped') {
      dropped += m.count
      for (let s = m.fromSeq; s <= m.toSeq; s++) seen[s]!++
    }
  }
  t.ok(dropped > 0, `the relay dropped records for the stalled k8stail (${dropped})`)
  t.same(
    seen.slice(1).flatMap((n, i) => (n === 1 ? [] : [`seq ${i + 1}: ${n}`])),
    [],
    'every record printed or reported missing, exactly once',
  )
  const stderr = errs.join('')
  t.match(stderr, /k8stail: \d+ records may be missing \(slow-consumer, seq \d+-\d+\)/)
  t.notMatch(stderr, /reconnect|no response/, 'the connection was kept through the stall')
})

t.test('--count: everything printed reaches a slow pipe before k8stail exits', async (t) => {
  const r = await startTestRelay()
  t.teardown(() => r.close())
  const tap = r.taps.add('shop', 'tap', 5000)
  const chunk = encodeChunk(generateRecords(pods, 1000))
  t.equal((await r.post(tap, chunk.body, chunk.headers)).status, 200)
  const posted = chunk.body.toString().trimEnd().split('\n')
  // About 100 KB: more than the pipe holds (64 KB), less than k8stail may have waiting on top.
  let count = 0
  for (let bytes = 0; bytes < 100 * 1024; count++) bytes += posted[count]!.length + 1
  // k8stail's stdout is a named pipe (a kernel pipe: 64 KB) that nobody reads yet. Node's own
  // child stdio would be a socket pair, which holds more than that.
  const dir = mkdtempSync(path.join(tmpdir(), 'k8stail-fifo-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const fifo = path.join(dir, 'stdout')
  execFileSync('mkfifo', [fifo])
  const ours = openSync(fifo, 'r+') // keeps the pipe alive until our reader opens it
  const k8stail = spawn(
    node,
    [
      path.join(repoRoot, 'cli', 'main.ts'),
      'shop/f',
      '--listen-addr',
      r.relay.addresses.stream.replace(/^http/, 'ws'),
      ...['--attach', 'tap', '-t', 'token-alice', '-o', 'raw', '--tail', '1000', '--count', String(count)],
    ],
    { stdio: ['ignore', ours, 'inherit'] },
  )
  t.teardown(() => k8stail.kill('SIGKILL'))
  const exit = new Promise<number | null>((resolve) => k8stail.on('exit', resolve))
  // Not read until k8stail has its records and left the relay: an exit that does not wait for
  // stdout would lose what the pipe could not hold yet.
  await until('k8stail connected', () => r.relay.context.hub.listeners().length === 1)
  await until('k8stail left the relay', () => r.relay.context.hub.listeners().length === 0)
  await sleep(300)
  let out = ''
  const reading = new Promise<void>((resolve) =>
    createReadStream(fifo, 'utf8')
      .on('data', (d) => {
        out += d
      })
      .on('end', resolve),
  )
  await sleep(100) // the read end is open: ours may go
  closeSync(ours)
  t.equal(await exit, 0)
  await reading
  t.same(out.trimEnd().split('\n'), posted.slice(0, count), `all ${count} records, in order, none cut`)
})
