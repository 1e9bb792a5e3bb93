// A real part (fluentd, syslog-ng) run in the foreground in a process group of its own, writing
// its output to a log file in its temp dir. stop() ends the group (SIGTERM, SIGKILL after 10 s)
// and removes the dir; a test process that dies first takes the group and the dir with it.
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs'
import { isAlive } from '../control-plane.ts'

export interface DaemonOptions {
  command: string
  args: string[]
  dir: string // its working dir, removed when it stops (also when it cannot start)
  logFile: string // stdout and stderr, appended
}

export interface Daemon {
  pid: number
  alive(): boolean
  readLog(): string // '' until it wrote something
  stop(): Promise<void> // idempotent
}

const STOP_GRACE_MS = 10_000

export function startDaemon(o: DaemonOptions): Daemon {
  const removeDir = () => rmSync(o.dir, { recursive: true, force: true })
  const fd = openSync(o.logFile, 'a')
  let child: ChildProcess
  try {
    child = spawn(o.command, o.args, { detached: true, stdio: ['ignore', fd, fd], cwd: o.dir })
  } finally {
    closeSync(fd)
  }
  child.unref()
  const pid = child.pid
  if (!pid) {
    removeDir()
    throw new Error(`could not start ${o.command}`)
  }
  const onExit = () => {
    signalGroup(pid, 'SIGKILL')
    removeDir()
  }
  process.once('exit', onExit)
  let stopped: Promise<void> | undefined
  return {
    pid,
    alive: () => isAlive(pid),
    readLog() {
      try {
        return readFileSync(o.logFile, 'utf8')
      } catch {
        return ''
      }
    },
    stop() {
      stopped ??= (async () => {
        signalGroup(pid, 'SIGTERM')
        const deadline = Date.now() + STOP_GRACE_MS
        while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
        signalGroup(pid, 'SIGKILL')
        removeDir()
        process.removeListener('exit', onExit)
      })()
      return stopped
    },
  }
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig)
  } catch {
    // gone
  }
}
