// Shared informers: one list+watch per resource for the whole process, however many parts of it
// (the controller's watches, the relay's tap directory) want to hear about that resource. Each
// part registers its handlers with on() and reads the one cache.
//
// They keep going: client-node's ListWatch stops for good on any error other than a watch timeout
// or 410 (and its start() resolves even when the first list failed), so a SharedInformer tracks
// "synced" itself and restarts a failed ListWatch with backoff (1 s → 30 s).
//
// A kind the API server does not serve (its CRD is not installed: say, a logging-operator release
// without the syslog-ng kinds) is an empty cache, not a failure: the informer counts as synced, so
// the rest of the process starts, and keeps listing with backoff until the kind appears.
import {
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  ListWatch,
  Watch,
} from '@kubernetes/client-node'
import type pino from 'pino'
import type { KindInfo } from '../../api/kinds.ts'
import { isNotFound } from './api-errors.ts'
import type { KObject } from './objects.ts'
import { realTimers, type Timers } from './timers.ts'

type InformerEvent = 'add' | 'update' | 'delete'
export type InformerHandler = (event: InformerEvent, obj: KObject) => void

// How an informer lists and watches; `namespace` limits a namespaced kind to one namespace,
// `labelSelector` to the objects it selects (the watch gets the same selector).
interface ListWatchSource {
  path: string
  list: () => Promise<{ items: KObject[]; metadata?: { resourceVersion?: string } }>
}

function listWatchSource(
  custom: CustomObjectsApi,
  kind: KindInfo,
  namespace?: string,
  labelSelector?: string,
): ListWatchSource {
  const { group, version, plural } = kind
  const selector = labelSelector ? { labelSelector } : {}
  if (namespace && kind.scope === 'Namespaced') {
    return {
      path: `/apis/${group}/${version}/namespaces/${namespace}/${plural}`,
      list: async () =>
        (await custom.listNamespacedCustomObject({
          group,
          version,
          namespace,
          plural,
          ...selector,
        })) as never,
    }
  }
  return {
    path: `/apis/${group}/${version}/${plural}`,
    list: async () =>
      (await custom.listClusterCustomObject({ group, version, plural, ...selector })) as never,
  }
}

export class SharedInformer {
  private readonly lw: ListWatch<KubernetesObject>
  private readonly handlers = new Set<InformerHandler>()
  private isSynced = false
  private started = false
  private stopped = false
  private failures = 0
  private restartTimer: unknown
  private errorDuringStart = false
  private served = true
  private readonly firstSync: { promise: Promise<void>; resolve: () => void }
  private readonly log: pino.Logger
  private readonly timers: Timers
  private readonly kind: string

  constructor(
    kc: KubeConfig,
    kind: KindInfo,
    o: { namespace?: string; labelSelector?: string; log: pino.Logger; timers?: Timers },
  ) {
    this.log = o.log
    this.timers = o.timers ?? realTimers
    this.kind = kind.kind
    let resolve = () => {}
    this.firstSync = { promise: new Promise<void>((r) => (resolve = r)), resolve }
    const source = listWatchSource(kc.makeApiClient(CustomObjectsApi), kind, o.namespace, o.labelSelector)
    // List items may lack kind; every cached object carries it.
    const list = async () => {
      let r: Awaited<ReturnType<ListWatchSource['list']>>
      try {
        r = await source.list()
      } catch (err) {
        if (isNotFound(err)) this.notServed()
        throw err
      }
      if (!this.served) {
        this.served = true
        this.log.info({ informer: this.kind }, 'Kind now served by the API server')
      }
      for (const item of r.items) item.kind ??= this.kind
      return r as never
    }
    this.lw = new ListWatch(source.path, new Watch(kc), list, false, o.labelSelector)
    for (const event of ['add', 'update', 'delete'] as const) {
      this.lw.on(event, (obj: KubernetesObject) => this.dispatch(event, obj as unknown as KObject))
    }
    this.lw.on('error', (err: unknown) => {
      this.errorDuringStart = true
      this.scheduleRestart(err)
    })
  }

  // A handler hears the events after it is registered: one registered before start() sees every
  // object as an `add` when the first list arrives.
  on(handler: InformerHandler): void {
    this.handlers.add(handler)
  }

  off(handler: InformerHandler): void {
    this.handlers.delete(handler)
  }

  private dispatch(event: InformerEvent, obj: KObject): void {
    obj.kind ??= this.kind
    for (const h of this.handlers) {
      try {
        h(event, obj)
      } catch (err) {
        this.log.error({ informer: this.kind, err: String(err) }, 'Informer handler failed')
      }
    }
  }

  private notServed(): void {
    if (this.served)
      this.log.warn(
        { informer: this.kind },
        'Kind not served by the API server (CRD not installed?): treated as empty until it is',
      )
    this.served = false
    if (!this.isSynced) {
      this.isSynced = true
      this.firstSync.resolve()
    }
  }

  private scheduleRestart(err: unknown): void {
    if (this.stopped) return
    const delay = Math.min(30_000, 1000 * 2 ** this.failures)
    this.failures++
    // An absent kind was reported once (notServed); its retries are routine.
    const level = this.served ? 'warn' : 'debug'
    this.log[level](
      { informer: this.kind, err: String(err), retryInMs: delay },
      'Informer failed; restarting',
    )
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

  // Starts the list+watch on the first call; every call resolves once the first list has
  // succeeded (possibly after restarts).
  start(): Promise<void> {
    if (!this.started) {
      this.started = true
      void this.run()
    }
    return this.firstSync.promise
  }

  synced(): boolean {
    return this.isSynced
  }

  // False while the API server answers 404 for the kind (its cache is then empty).
  isServed(): boolean {
    return this.served
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

// The process's informers, one per kind and scope, made on first request. `namespace` scopes every
// namespaced kind to that namespace (cluster-scoped kinds are always watched whole), except where a
// caller asks for a kind in every namespace.
export class SharedInformers {
  private readonly informers = new Map<string, SharedInformer>()
  private readonly kc: KubeConfig
  private readonly o: { namespace?: string; log: pino.Logger }

  constructor(kc: KubeConfig, o: { namespace?: string; log: pino.Logger }) {
    this.kc = kc
    this.o = o
  }

  // The one namespace the informers are scoped to, if any.
  get namespace(): string | undefined {
    return this.o.namespace
  }

  for(kind: KindInfo, scope: { everywhere?: boolean } = {}): SharedInformer {
    const namespace = scope.everywhere ? undefined : this.o.namespace
    const key = `${kind.kind}/${namespace ?? ''}`
    let informer = this.informers.get(key)
    if (!informer) {
      informer = new SharedInformer(this.kc, kind, { log: this.o.log, ...(namespace ? { namespace } : {}) })
      this.informers.set(key, informer)
    }
    return informer
  }

  async stop(): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.stop()))
  }
}
