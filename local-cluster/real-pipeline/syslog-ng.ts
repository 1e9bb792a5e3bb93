// Runs Debian's real syslog-ng on what logging-operator rendered: its source (moved to a free
// loopback port), the chosen destinations and the log paths leading to them. The caller feeds the
// source JSON lines as fluent-bit sends them to syslog-ng (`json_lines`, date key `ts`). syslog-ng
// runs in the foreground in its own process group, killed by PID; its temp dir is removed.
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { freePort } from '../control-plane.ts'
import { startDaemon } from './daemon.ts'
import { type SyslogNgHarnessOptions, syslogNgHarnessConfig } from './syslog-ng-config.ts'

export interface SyslogNgOptions extends Omit<SyslogNgHarnessOptions, 'port'> {
  rendered: string // the operator's syslog-ng.conf
}

export interface SyslogNg {
  pid: number
  dir: string
  config: string
  // Sends records as fluent-bit does: one JSON object per line over one TCP connection, each with
  // `ts` (ISO 8601) first unless the record has one. Resolves once the lines are written.
  send(records: object[]): Promise<void>
  log(): string
  // syslog-ng's own counters of a destination (`syslog-ng-ctl stats`): messages queued in memory,
  // dropped, and written (handed over: posted and answered, whatever the answer).
  destinationStats(destination: string): Promise<{ queued: number; dropped: number; written: number }>
  stop(): Promise<void>
}

// One line as fluent-bit's syslog-ng output (`json_lines`, `json_date_key ts`, iso8601) writes it.
export function fluentBitJsonLine(record: object, at = new Date()): string {
  return JSON.stringify('ts' in record ? record : { ts: at.toISOString(), ...record })
}

export async function startSyslogNg(o: SyslogNgOptions): Promise<SyslogNg> {
  const dir = mkdtempSync(path.join(tmpdir(), 'log-socket-syslog-ng-'))
  const port = await freePort()
  let config: string
  try {
    config = syslogNgHarnessConfig(o.rendered, { ...o, port })
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  const configPath = path.join(dir, 'syslog-ng.conf')
  const logFile = path.join(dir, 'syslog-ng.log')
  writeFileSync(configPath, config)
  const daemon = startDaemon({
    command: 'syslog-ng',
    args: [
      '-F',
      '-e', // its own messages to stderr (our log file), not to the system's
      '-f',
      configPath,
      '-p',
      path.join(dir, 'syslog-ng.pid'),
      '-R',
      path.join(dir, 'syslog-ng.persist'),
      '-c',
      path.join(dir, 'syslog-ng.ctl'),
      '--no-caps',
    ],
    dir,
    logFile,
  })
  const { readLog, stop } = daemon
  // Ready when its source accepts connections.
  const deadline = Date.now() + 30_000
  for (;;) {
    if (!daemon.alive()) {
      const log = readLog()
      await stop()
      throw new Error(`syslog-ng exited at start:\n${log.slice(-4000)}\n--- config ---\n${config}`)
    }
    if (await canConnect(port)) break
    if (Date.now() > deadline) {
      const log = readLog()
      await stop()
      throw new Error(
        `syslog-ng not listening on 127.0.0.1:${port} after 30 s:\n${log.slice(-4000)}\n--- config ---\n${config}`,
      )
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    pid: daemon.pid,
    dir,
    config,
    send(records) {
      return new Promise((resolve, reject) => {
        const sock = net.connect(port, '127.0.0.1')
        sock.on('error', reject)
        sock.on('connect', () => {
          sock.end(records.map((r) => `${fluentBitJsonLine(r)}\n`).join(''), () => resolve())
        })
      })
    },
    log: readLog,
    async destinationStats(destination) {
      const text = await new Promise<string>((resolve, reject) =>
        execFile('syslog-ng-ctl', ['stats', '-c', path.join(dir, 'syslog-ng.ctl')], (err, out) =>
          err ? reject(err) : resolve(out),
        ),
      )
      // Lines: SourceName;SourceId;SourceInstance;State;Type;Number — the destination's queue
      // and counters are those whose SourceId starts with its name.
      const counters = { queued: 0, dropped: 0, written: 0 }
      for (const line of text.split('\n')) {
        const [, id, , , type, n] = line.split(';')
        if (!id?.startsWith(destination) || !type || !(type in counters)) continue
        counters[type as keyof typeof counters] += Number(n)
      }
      return counters
    },
    stop,
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}
