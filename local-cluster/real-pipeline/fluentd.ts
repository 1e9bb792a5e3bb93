// Runs the real fluentd on what logging-operator rendered: an output's <store>/<match> (and, when
// given, its flow's filters) behind an in_http <source> that the caller feeds with records shaped as
// fluent-bit forwards them. The run owns a temp dir: the operator's buffer volume (/buffers, also
// fluentd's root_dir, where unrecoverable chunks are backed up) is rewritten to a folder inside it,
// and so are mounted output secrets. fluentd runs in the foreground in its own process group and
// is killed by PID; the dir is removed. Endpoints may point only at loopback or the test host.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { freePort } from '../control-plane.ts'
import { startDaemon } from './daemon.ts'
import type { Directive } from './fluentd-config.ts'
import { locateParts } from './parts.ts'

// Where logging-operator mounts fluentd's buffer volume and output secrets in its pods.
const OPERATOR_BUFFERS = '/buffers'
const OPERATOR_SECRETS = '/fluentd/secret'

// One flow as the harness runs it: its filters, then its outputs.
export interface HarnessFlow {
  outputs: (Directive | string)[] // rendered <store> or <match> blocks, in order
  filters?: (Directive | string)[] // rendered <filter> blocks applied first (a flow's filters)
}

// What runs: one flow (outputs and filters), or several; every record reaches every flow, as
// logging-operator's router hands a record to every flow whose match selects it.
export type Pipeline = HarnessFlow | { flows: HarnessFlow[] }

export type FluentdOptions = Pipeline & {
  // Maps a rendered endpoint (an in-cluster Service URL, say) to where the receiver really listens.
  endpoint?: (url: string) => string
  allowHosts?: string[] // besides loopback: e.g. the run's test host
  secretFiles?: Record<string, Uint8Array> // mounted output secrets: file name → content
  logLevel?: string
}

export interface Fluentd {
  pid: number
  dir: string // the run's temp dir (removed by stop)
  bufferRoot: string // stands for the operator's /buffers volume: root_dir and buffer paths
  configPath: string
  config: string
  // Sends records into the pipeline as fluent-bit would, under `tag`; resolves once fluentd
  // accepted them (they are then in the output buffers).
  emit(tag: string, records: object[]): Promise<void>
  files(): string[] // every file under bufferRoot, relative to it
  log(): string
  // Replaces the outputs/filters and reloads the way the operator's config-reloader does
  // (POST /api/config.reload: the supervisor restarts the worker; file buffers survive).
  // New mounted secrets (e.g. a new Output's credential) are written first.
  reload(p: Pipeline, secretFiles?: Record<string, Uint8Array>): Promise<void>
  stop(): Promise<void>
}

const LOOPBACK = ['127.0.0.1', 'localhost', '[::1]', '::1']

const text = (d: Directive | string) => (typeof d === 'string' ? d : d.text)

// The tag fluent-bit gives a container's records (tail of /var/log/containers/<pod>_<ns>_<container>-<id>.log).
export function fluentBitTag(record: { kubernetes?: Record<string, unknown> }): string {
  const k = record.kubernetes ?? {}
  return `kubernetes.var.log.containers.${k['pod_name']}_${k['namespace_name']}_${k['container_name']}-${k['docker_id']}.log`
}

const flowsOf = (p: Pipeline): HarnessFlow[] => ('flows' in p ? p.flows : [p])

export function harnessConfig(
  p: Pipeline,
  o: {
    inputPort: number
    rpcPort: number
    bufferRoot: string
    secretDir: string
    endpoint?: (url: string) => string
    allowHosts?: string[]
    logLevel?: string
  },
): string {
  const allowed = new Set([...LOOPBACK, ...(o.allowHosts ?? [])])
  const rewrite = (block: string) =>
    block
      .split('\n')
      .map((line) => {
        const ep = /^(\s*endpoint\s+)(\S+)\s*$/.exec(line)
        if (ep) {
          const url = o.endpoint ? o.endpoint(ep[2]!) : ep[2]!
          let host = ''
          try {
            host = new URL(url).hostname
          } catch {
            throw new Error(`fluentd endpoint ${JSON.stringify(url)} is not a URL`)
          }
          if (!allowed.has(host))
            throw new Error(`fluentd would send to ${url}: tests send only to loopback or the test host`)
          return `${ep[1]}${url}`
        }
        return line
          .replaceAll(`${OPERATOR_BUFFERS}/`, `${o.bufferRoot}/`)
          .replaceAll(`${OPERATOR_SECRETS}/`, `${o.secretDir}/`)
      })
      .join('\n')
  const flows = flowsOf(p)
  const labels = flows.map((f, i) => {
    const outputs = f.outputs.map(text).map(rewrite)
    const filters = (f.filters ?? []).map(text).map(rewrite)
    // A <store> only lives inside a copy; a <match> stands on its own.
    const stores = outputs.filter((b) => /^\s*<store[\s>]/.test(b))
    const matches = outputs.filter((b) => !/^\s*<store[\s>]/.test(b))
    const body = [
      ...filters,
      ...(stores.length ? [`  <match **>\n    @type copy\n${stores.join('\n')}\n  </match>`] : []),
      ...matches,
      ...(outputs.length ? [] : ['  <match **>\n    @type null\n  </match>']),
    ]
    return `<label @FLOW${i}>\n${body.join('\n')}\n</label>`
  })
  const fanOut = flows.map((_, i) => `    <store>\n      @type relabel\n      @label @FLOW${i}\n    </store>`)
  return `<system>
  rpc_endpoint 127.0.0.1:${o.rpcPort}
  log_level ${o.logLevel ?? 'info'}
  workers 1
  root_dir ${o.bufferRoot}
</system>

<source>
  @type http
  @id harness_input
  @label @ROUTER
  bind 127.0.0.1
  port ${o.inputPort}
  <parse>
    @type json
  </parse>
</source>

<label @ROUTER>
  <match **>
    @type copy
${fanOut.join('\n')}
  </match>
</label>

${labels.join('\n\n')}
`
}

export async function startFluentd(o: FluentdOptions): Promise<Fluentd> {
  const parts = locateParts()
  const dir = mkdtempSync(path.join(tmpdir(), 'log-socket-fluentd-'))
  const bufferRoot = path.join(dir, 'buffers')
  const secretDir = path.join(dir, 'secret')
  mkdirSync(bufferRoot)
  mkdirSync(secretDir, { mode: 0o700 })
  const writeSecrets = (files: Record<string, Uint8Array>) => {
    for (const [name, content] of Object.entries(files)) {
      writeFileSync(path.join(secretDir, path.basename(name)), content, { mode: 0o600 })
    }
  }
  writeSecrets(o.secretFiles ?? {})
  const configPath = path.join(dir, 'fluent.conf')
  const logFile = path.join(dir, 'fluentd.log')
  const inputPort = await freePort()
  const rpcPort = await freePort()
  const build = (p: Pipeline) => harnessConfig(p, { ...o, inputPort, rpcPort, bufferRoot, secretDir })
  let config: string
  try {
    config = build(o)
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  writeFileSync(configPath, config)
  const daemon = startDaemon({ command: parts.fluentd, args: ['-c', configPath], dir, logFile })
  const { pid, readLog, stop } = daemon
  const workersRunning = () => (readLog().match(/fluentd worker is now running/g) ?? []).length
  const waitRunning = async (count: number, what: string) => {
    const deadline = Date.now() + 60_000
    while (workersRunning() < count) {
      if (!daemon.alive()) throw new Error(`fluentd exited ${what}:\n${readLog().slice(-4000)}`)
      if (Date.now() > deadline)
        throw new Error(`fluentd not running after 60 s ${what}:\n${readLog().slice(-4000)}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  try {
    await waitRunning(1, 'at start')
  } catch (err) {
    await stop()
    throw err
  }
  return {
    pid,
    dir,
    bufferRoot,
    configPath,
    get config() {
      return config
    },
    async emit(tag, records) {
      const res = await fetch(`http://127.0.0.1:${inputPort}/${encodeURIComponent(tag)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(records),
      })
      const body = await res.text()
      if (!res.ok) throw new Error(`fluentd's input refused the records (${res.status}): ${body}`)
    },
    files() {
      return listFiles(bufferRoot)
    },
    log: readLog,
    async reload(p, secretFiles) {
      if (secretFiles) writeSecrets(secretFiles)
      config = build(p)
      writeFileSync(configPath, config)
      const before = workersRunning()
      const res = await fetch(`http://127.0.0.1:${rpcPort}/api/config.reload`)
      await res.text()
      if (!res.ok) throw new Error(`fluentd config.reload answered ${res.status}`)
      await waitRunning(before + 1, 'after config.reload')
    },
    stop,
  }
}

function listFiles(root: string): string[] {
  try {
    return (readdirSync(root, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
      .filter((d) => d.isFile())
      .map((d) => path.relative(root, path.join(d.parentPath, d.name)))
      .sort()
  } catch {
    return []
  }
}
