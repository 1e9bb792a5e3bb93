// What the end-to-end scenarios read about other processes from the kernel: CPU time, RSS and
// read/write byte counts from /proc, and the bytes of TCP sockets from `ss` (root only).
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())

export interface ProcSample {
  cpuMs: number // user + system
  rssBytes: number
  rchar: number // bytes returned by read-like system calls (sockets, pipes, files)
  wchar: number // bytes passed to write-like system calls
  syscr: number // read-like system calls
  syscw: number // write-like system calls
}

export function procSample(pid: number): ProcSample {
  // Fields after the command name, which is in parentheses and may contain spaces.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const io = Object.fromEntries(
    readFileSync(`/proc/${pid}/io`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const [k, v] = l.split(': ')
        return [k, Number(v)]
      }),
  ) as Record<string, number>
  return {
    cpuMs: (Number(f[11]) + Number(f[12])) * TICK_MS,
    rssBytes: Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024,
    rchar: io.rchar ?? 0,
    wchar: io.wchar ?? 0,
    syscr: io.syscr ?? 0,
    syscw: io.syscw ?? 0,
  }
}

export interface SocketBytes {
  sockets: number
  received: number // TCP payload bytes received (kernel count, whether read yet or not)
  sent: number
}

// Sums over established TCP sockets: those of a process (`pid`) or with a local port (`port`).
export function socketBytes(by: { pid: number } | { port: number }): SocketBytes {
  const args = ['-tinH', 'state', 'established']
  if ('pid' in by) args.splice(1, 0, '-p')
  else args.push(`( sport = :${by.port} )`)
  const out = execFileSync('ss', args, { encoding: 'utf8' })
  // Each socket is a line of addresses (and users with -p) followed by an indented line of counters.
  const lines = out.split('\n')
  const total: SocketBytes = { sockets: 0, received: 0, sent: 0 }
  for (let i = 0; i + 1 < lines.length; i++) {
    const head = lines[i]!
    if (/^\s/.test(head)) continue
    if ('pid' in by && !head.includes(`pid=${by.pid},`)) continue
    const info = lines[i + 1]!
    total.sockets++
    total.received += Number(/bytes_received:(\d+)/.exec(info)?.[1] ?? 0)
    total.sent += Number(/bytes_sent:(\d+)/.exec(info)?.[1] ?? 0)
  }
  return total
}
