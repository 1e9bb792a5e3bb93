// Informers that keep going. client-node's ListWatch stops for good on any error other than a
// watch timeout or 410 (and its start() resolves even when the first list failed), so this
// wrapper tracks "synced" itself and restarts a failed informer with backoff (1 s → 30 s).
import { type KubeConfig, type KubernetesObject, ListWatch, Watch } from '@kubernetes/client-node'
import type pino from 'pino'
import type { KObject } from './objects.ts'
import { realTimers, type Timers } from './workqueue.ts'

export type InformerEvent = 'add' | 'update' | 'delete'

export interface InformerSpec {
  name: string // for logs, e.g. "Output"
  kind: string // set on every cached object (list items may lack it)
  path: string // watch path, e.g. /apis/logging.banzaicloud.io/v1beta1/outputs
  list: () => Promise<{ items: KObject[]; metadata?: { resourceVersion?: string } }>
  labelSelector?: string
}

export class Informer {
  private lw: ListWatch<KubernetesObject>
  private isSynced = false
  private stopped = false
  private failures = 0
  private restartTimer: unknown
  private errorDuringStart = false
  private firstSync: { promise: Promise<void>; resolve: () => void }
  private readonly log: pino.Logger
  private readonly timers: Timers
  private readonly name: string

  constructor(
    kc: KubeConfig,
    spec: InformerSpec,
    onEvent: (ev: InformerEvent, obj: KObject) => void,
    log: pino.Logger,
    timers: Timers = realTimers,
  ) {
    this.log = log
    this.timers = timers
    this.name = spec.name
    let resolve = () => {}
    this.firstSync = { promise: new Promise<void>((r) => (resolve = r)), resolve }
    const kind = spec.kind
    const listFn = async () => {
      const r = await spec.list()
      for (const o of r.items) o.kind ??= kind
      return r as never
    }
    this.lw = new ListWatch(spec.path, new Watch(kc), listFn, false, spec.labelSelector)
    const withKind = (ev: InformerEvent) => (obj: KubernetesObject) => {
      const o = obj as unknown as KObject
      o.kind ??= kind
      onEvent(ev, o)
    }
    this.lw.on('add', withKind('add'))
    this.lw.on('update', withKind('update'))
    this.lw.on('delete', withKind('delete'))
    this.lw.on('error', (err: unknown) => {
      this.errorDuringStart = true
      this.scheduleRestart(err)
    })
  }

  private scheduleRestart(err: unknown): void {
    if (this.stopped) return
    const delay = Math.min(30_000, 1000 * 2 ** this.failures)
    this.failures++
    this.log.warn({ informer: this.name, err: String(err), retryInMs: delay }, 'Informer failed; restarting')
    this.timers.clearTimeout(this.restartTimer)
    this.restartTimer = this.timers.setTimeout(() => void this.run(), delay)
  }

  private async run(): Promise<void> {
    if (this.stopped) return
    this.errorDuringStart = false
    try {
      await this.lw.start()
    } catch (err) {
      // Opening the watch itself failed (e.g. the API server is unreachable).
      this.errorDuringStart = true
      this.scheduleRestart(err)
      return
    }
    if (this.errorDuringStart || this.stopped) return
    this.failures = 0
    if (!this.isSynced) {
      this.isSynced = true
      this.firstSync.resolve()
    }
  }

  // Resolves once the first list has succeeded (possibly after restarts).
  async start(): Promise<void> {
    void this.run()
    await this.firstSync.promise
  }

  synced(): boolean {
    return this.isSynced
  }

  get(name: string, namespace?: string): KObject | undefined {
    return this.lw.get(name, namespace) as unknown as KObject | undefined
  }

  list(namespace?: string): KObject[] {
    return this.lw.list(namespace) as unknown as KObject[]
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.timers.clearTimeout(this.restartTimer)
    this.firstSync.resolve()
    await this.lw.stop()
  }
}
