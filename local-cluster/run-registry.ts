// Every running control plane is registered under ~/.cache/log-socket/runs/ with its owner's PID,
// so one whose owner died before its teardown (SIGKILL, a closed terminal) is removed by the next
// run instead of leaking processes, a temp dir and a network namespace.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import path from 'node:path'
import { type ControlPlaneState, isAlive, runsBinary } from './control-plane.ts'
import { removeTestHost, type TestHostState } from './test-host.ts'

interface Registration {
  owner: number
  controlPlane: ControlPlaneState
  testHost: TestHostState
  processes?: RegisteredProcess[] // started against that control plane (the logging-operator, say)
}

export interface RegisteredProcess {
  name: string
  pid: number // also its process group id
  binary: string // the reaper kills the PID only while it still runs this
  workDir?: string // removed with it
}

const runsDir = () =>
  path.join(process.env.LOG_SOCKET_CACHE ?? path.join(homedir(), '.cache', 'log-socket'), 'runs')

export function register(controlPlane: ControlPlaneState, testHost: TestHostState): string {
  mkdirSync(runsDir(), { recursive: true })
  const file = path.join(runsDir(), `${process.pid}-${testHost.netns}.json`)
  const r: Registration = { owner: process.pid, controlPlane, testHost }
  writeFileSync(file, JSON.stringify(r))
  return file
}

export function unregister(file: string | undefined): void {
  if (file) rmSync(file, { force: true })
}

// Adds a process to a run's registration, so a dead owner's reaper kills it too.
export function registerProcess(file: string | undefined, p: RegisteredProcess): void {
  if (!file) return
  const r: Registration = JSON.parse(readFileSync(file, 'utf8'))
  r.processes = [...(r.processes ?? []).filter((x) => x.name !== p.name), p]
  writeFileSync(file, JSON.stringify(r))
}

export function unregisterProcess(file: string | undefined, name: string): void {
  if (!file) return
  try {
    const r: Registration = JSON.parse(readFileSync(file, 'utf8'))
    r.processes = (r.processes ?? []).filter((x) => x.name !== name)
    writeFileSync(file, JSON.stringify(r))
  } catch {
    // the run is gone already
  }
}

// Removes what runs of dead owners left behind. A recorded PID is signalled only while its command
// line is still one of our binaries, never a process that reused the number.
export function reapStale(log: (line: string) => void = () => {}): void {
  let files: string[]
  try {
    files = readdirSync(runsDir()).filter((f) => f.endsWith('.json'))
  } catch {
    return
  }
  for (const f of files) {
    const file = path.join(runsDir(), f)
    let r: Registration
    try {
      r = JSON.parse(readFileSync(file, 'utf8'))
    } catch {
      rmSync(file, { force: true })
      continue
    }
    if (isAlive(r.owner)) continue
    for (const p of r.processes ?? []) {
      if (runsBinary(p.pid, p.binary)) {
        try {
          process.kill(-p.pid, 'SIGKILL')
        } catch {
          // gone meanwhile
        }
      }
      if (p.workDir) rmSync(p.workDir, { recursive: true, force: true })
    }
    for (const pid of Object.values(r.controlPlane.pids)) {
      let cmd = ''
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      } catch {
        continue
      }
      if (!cmd.startsWith(r.controlPlane.binDir)) continue
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {
        // gone meanwhile
      }
    }
    rmSync(r.controlPlane.workDir, { recursive: true, force: true })
    removeTestHost(r.testHost)
    rmSync(file, { force: true })
    log(
      `removed the leftovers of a dead run (owner ${r.owner}): ${r.testHost.netns}, ${r.controlPlane.workDir}`,
    )
  }
}
