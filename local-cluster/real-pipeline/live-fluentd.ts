// Real fluentd that follows what logging-operator renders, as the operator's config-reloader does
// in a fluentd pod: it runs the chosen flows (their filters and every output they reference) and
// reloads whenever the operator renders them differently (a tap's output added or removed, say).
// Records fed to it reach every followed flow, as if each flow's match selected them.
import type { KubeConfig } from '@kubernetes/client-node'
import { type Fluentd, fluentBitTag, type HarnessFlow, startFluentd } from './fluentd.ts'
import { type FlowSection, flowSection } from './fluentd-config.ts'
import { type Logging, mountedOutputSecrets, renderedConfig, waitForRendered } from './logging.ts'

export interface FollowOptions {
  kc: KubeConfig
  logging: Logging
  flows: string[] // `flow:<ns>:<name>` or `clusterflow:<ns>:<name>`
  // Those that must be rendered before fluentd starts (default: all); the others (a mirror tap's
  // copy, say) join when the operator renders them.
  require?: string[]
  endpoint?: (url: string) => string
  allowHosts?: string[]
  pollMs?: number // how often the rendered Secret is read (default 1000)
  log?: (line: string) => void
}

export interface LiveFluentd {
  fluentd: Fluentd
  reloads: number // how many times it reloaded after a new rendering
  emit(records: { kubernetes?: Record<string, unknown> }[]): Promise<void> // each under its fluent-bit tag
  stop(): Promise<void>
}

// What of the rendered configuration the followed flows run; a flow not (or no longer) rendered
// runs with no output.
function pipelineOf(conf: string, flows: string[]): { flows: HarnessFlow[]; key: string } {
  const sections = flows.map((id) => flowSection(conf, id))
  const harness = sections.map((s: FlowSection | undefined) => ({
    filters: s?.filters ?? [],
    outputs: s?.stores ?? [],
  }))
  const key = sections
    .map((s) => [...(s?.filters ?? []), ...(s?.stores ?? [])].map((d) => d.text).join('\n'))
    .join('\n--\n')
  return { flows: harness, key }
}

export async function followFlows(o: FollowOptions): Promise<LiveFluentd> {
  const log = o.log ?? (() => {})
  const conf = await waitForRendered(
    o.kc,
    o.logging,
    (c) => (o.require ?? o.flows).every((f) => flowSection(c, f)),
    `the flows ${(o.require ?? o.flows).join(', ')}`,
  )
  let current = pipelineOf(conf, o.flows)
  const fluentd = await startFluentd({
    flows: current.flows,
    secretFiles: await mountedOutputSecrets(o.kc, o.logging),
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    ...(o.allowHosts ? { allowHosts: o.allowHosts } : {}),
  })
  let reloads = 0
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let polling: Promise<void> = Promise.resolve()
  const poll = async () => {
    try {
      const next = await renderedConfig(o.kc, o.logging)
      if (next === undefined || stopped) return
      const p = pipelineOf(next, o.flows)
      if (p.key === current.key) return
      const outputs = p.flows.reduce((n, f) => n + f.outputs.length, 0)
      log(`the operator rendered the flows anew: reloading fluentd (${outputs} outputs)`)
      await fluentd.reload({ flows: p.flows }, await mountedOutputSecrets(o.kc, o.logging))
      current = p
      reloads++
    } catch (err) {
      log(`following the rendered configuration: ${(err as Error).message.split('\n')[0]}`)
    } finally {
      if (!stopped) schedule()
    }
  }
  const schedule = () => {
    timer = setTimeout(() => {
      polling = poll()
    }, o.pollMs ?? 1000)
  }
  schedule()
  return {
    fluentd,
    get reloads() {
      return reloads
    },
    async emit(records) {
      const byTag = new Map<string, object[]>()
      for (const r of records) {
        const tag = fluentBitTag(r)
        byTag.set(tag, [...(byTag.get(tag) ?? []), r])
      }
      for (const [tag, rs] of byTag) await fluentd.emit(tag, rs)
    },
    async stop() {
      stopped = true
      clearTimeout(timer)
      await polling // a reload under way finishes first
      await fluentd.stop()
    },
  }
}
