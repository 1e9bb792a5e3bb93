// Where the real logging-operator, fluentd and syslog-ng come from, and whether each can run here.
// They live outside the repository (../shared/real-pipeline beside it, or LOG_SOCKET_REAL_PIPELINE):
// a clone elsewhere has none of them, and then the tests that need them skip loudly (or fail under
// CI=true) instead of pretending; see test/support/real-pipeline.ts.
import { execFile } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import path from 'node:path'

export const PARTS_ENV = 'LOG_SOCKET_REAL_PIPELINE'
const repoRoot = path.resolve(import.meta.dirname, '..', '..')

export type Part = 'operator' | 'fluentd' | 'syslog-ng'

export interface RealParts {
  dir: string
  buildScript: string // prints the manager's path, building it once (cached)
  fluentd: string // launcher: fluentd -c CONFIG
  installFluentdDeps: string
  crdDir: string // the operator's own CRDs, newer than the reference copies
}

// The folder an explicit LOG_SOCKET_REAL_PIPELINE names (present or not), else ../shared/real-pipeline.
function partsDir(): string {
  return path.resolve(process.env[PARTS_ENV] || path.join(repoRoot, '..', 'shared', 'real-pipeline'))
}

export function locateParts(): RealParts {
  const dir = partsDir()
  return {
    dir,
    buildScript: path.join(dir, 'bin', 'build-logging-operator'),
    fluentd: path.join(dir, 'bin', 'fluentd'),
    installFluentdDeps: path.join(dir, 'bin', 'install-fluentd-deps'),
    crdDir: path.join(dir, 'logging-operator', 'config', 'crd', 'bases'),
  }
}

// Why `part` cannot run here, or undefined when it can. Cheap: files and PATH only, no build and
// no process (a broken install shows in the runner's own error).
export function missingPart(part: Part): string | undefined {
  const p = locateParts()
  const where = process.env[PARTS_ENV] ? `${PARTS_ENV}=${p.dir}` : p.dir
  if (part === 'syslog-ng') {
    if (!onPath('syslog-ng'))
      return 'syslog-ng is not installed (apt-get install syslog-ng-core syslog-ng-mod-http)'
    if (!httpModuleInstalled())
      return "syslog-ng's http() module is not installed (apt-get install syslog-ng-mod-http)"
    return undefined
  }
  if (!existsSync(p.dir)) return `the real pipeline's parts are not here: ${where} does not exist`
  if (part === 'operator') {
    if (!existsSync(p.buildScript)) return `${p.buildScript} is missing`
    if (!existsSync(p.crdDir) || !readdirSync(p.crdDir).some((f) => f.endsWith('.yaml')))
      return `the logging-operator CRDs are missing from ${p.crdDir}`
    if (!onPath('go')) return 'Go is not installed: the logging-operator manager cannot be built'
    return undefined
  }
  if (!existsSync(p.fluentd)) return `${p.fluentd} is missing`
  if (!onPath('ruby')) return `Ruby is not installed: run ${p.installFluentdDeps} (as root)`
  return undefined
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((d) => d && existsSync(path.join(d, cmd)))
}

function httpModuleInstalled(): boolean {
  for (const dir of ['/usr/lib/syslog-ng', '/usr/lib/x86_64-linux-gnu/syslog-ng', '/usr/lib64/syslog-ng']) {
    try {
      for (const sub of [dir, ...readdirSync(dir).map((d) => path.join(dir, d))]) {
        if (existsSync(path.join(sub, 'libhttp.so'))) return true
      }
    } catch {
      // not this layout
    }
  }
  return false
}

// Builds the manager (a cache hit after the first time: ~0.2 s; cold about 6 min on 2 cores, longer
// on a busy machine) and returns its path. Asynchronous, so a caller can start other work meanwhile.
export function buildManager(log: (line: string) => void = () => {}): Promise<string> {
  const { buildScript } = locateParts()
  const t0 = Date.now()
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [buildScript],
      { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const manager = stdout.trim().split('\n').pop() ?? ''
        if (err || !existsSync(manager)) {
          reject(
            new Error(
              `building the logging-operator manager failed: ${err?.message ?? manager}\n${stderr.slice(-2000)}`,
            ),
          )
          return
        }
        const ms = Date.now() - t0
        if (ms > 2000) log(`logging-operator manager built in ${(ms / 1000).toFixed(0)} s`)
        resolve(manager)
      },
    )
  })
}
