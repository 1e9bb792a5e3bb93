// helm for the chart tests: provided by scripts/helm.sh (HELM_BIN, or built once from the Go module
// proxy into the cache), then run as a child process. Rendering helpers return parsed objects.
import { execFile, spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { parseAllDocuments } from 'yaml'

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const chartDir = join(repoRoot, 'charts', 'log-socket')

// A first build takes minutes (tens of them on a busy 2-core machine).
const HELM_BUILD_TIMEOUT_MS = 40 * 60 * 1000

let helmPath: Promise<string> | undefined

// The helm binary's path. The script's progress goes to this process's stderr, so a slow first
// build is visible in the test output.
function helmBinary(): Promise<string> {
  helmPath ??= new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [join(repoRoot, 'scripts', 'helm.sh')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d
    })
    child.on('error', reject)
    child.on('close', (code) => {
      const path = out.trim().split('\n').at(-1)
      if (code === 0 && path) resolve(path)
      else reject(new Error(`scripts/helm.sh exited with ${code}`))
    })
  })
  return helmPath
}

interface RootTest {
  comment(...args: unknown[]): void
  setTimeout(ms: number): void
}

// For a test file's t.before: provides helm, allowing a first build its time. The tap runner kills
// a test file after its `timeout` (package.json); a "# timeout=<ms>" comment from the file resets
// the runner's timer, so the allowance is raised for the build and put back afterwards.
export async function provideHelm(t: RootTest): Promise<string> {
  const usual = Number(process.env['TAP_TIMEOUT'] || 30) * 1000
  t.comment(`timeout=${HELM_BUILD_TIMEOUT_MS}`)
  t.setTimeout(HELM_BUILD_TIMEOUT_MS)
  try {
    return await helmBinary()
  } finally {
    t.comment(`timeout=${usual}`)
    t.setTimeout(usual)
  }
}

export interface HelmResult {
  code: number
  stdout: string
  stderr: string
}

const run = promisify(execFile)

// helm keeps a cache, config and data home; they go to one scratch folder, never the user's.
const helmHome = join(tmpdir(), 'log-socket-test-helm-home')

export async function helm(args: string[]): Promise<HelmResult> {
  const bin = await helmBinary()
  mkdirSync(helmHome, { recursive: true })
  try {
    const { stdout, stderr } = await run(bin, args, {
      maxBuffer: 64 * 1024 * 1024,
      // helm must not pick up a kubeconfig or repositories from the machine it runs on: a cluster
      // is only ever given with --kubeconfig.
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        HOME: helmHome,
        HELM_CACHE_HOME: join(helmHome, 'cache'),
        HELM_CONFIG_HOME: join(helmHome, 'config'),
        HELM_DATA_HOME: join(helmHome, 'data'),
        KUBECONFIG: '/dev/null',
      },
    })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string }
    return {
      code: typeof err.code === 'number' ? err.code : 1,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? '',
    }
  }
}

export interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown }
  [k: string]: unknown
}

export function parseManifests(text: string): K8sObject[] {
  const objects: K8sObject[] = []
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors[0]!.message}`)
    const value = doc.toJS() as K8sObject | null
    if (value) objects.push(value)
  }
  return objects
}

export interface RenderOptions {
  release?: string
  namespace?: string
  // --set-string is not needed by the tests; values go through a YAML file-like --set-json.
  values?: Record<string, unknown>
}

// `helm template` of the chart; throws with helm's stderr when rendering fails.
export async function renderChart(o: RenderOptions = {}): Promise<K8sObject[]> {
  const args = ['template', o.release ?? 'log-socket', chartDir, '--namespace', o.namespace ?? 'log-socket']
  args.push('--include-crds')
  for (const [key, value] of Object.entries(o.values ?? {}))
    args.push('--set-json', `${key}=${JSON.stringify(value)}`)
  const r = await helm(args)
  if (r.code !== 0) throw new Error(`helm template failed (${r.code}): ${r.stderr}`)
  return parseManifests(r.stdout)
}

export function find(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name))
  if (!found) throw new Error(`no ${kind}${name ? ` ${name}` : ''} in the rendered chart`)
  return found
}
