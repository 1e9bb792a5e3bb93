// The relay's TapDirectory in production: a LogTap informer over all namespaces. Lookups are
// answered from the informer cache (no API call on the ingest or connect path). client-node's
// informer stops on any error other than a watch timeout or 410, so we restart it with backoff;
// "synced" means the first list succeeded (client-node's start() resolves even when it failed).
import {
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  makeInformer,
} from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { GROUP, type LogTap, PLURAL, VERSION } from '../api/logtap.ts'
import type { TapDirectory, TapInfo } from '../core/tap-directory.ts'

const DEFAULT_REPLAY = 1000

export interface K8sTapDirectory extends TapDirectory {
  start(): Promise<void>
  stop(): void
}

// Pure: the relay's view of one LogTap object.
export function tapInfoOf(obj: Partial<LogTap>): TapInfo | undefined {
  const m = obj.metadata
  if (!m?.name || !m.namespace || !m.uid) return undefined
  const replay = obj.spec?.replay
  return {
    namespace: m.namespace,
    name: m.name,
    uid: m.uid,
    replay: Number.isInteger(replay) && (replay as number) >= 0 ? (replay as number) : DEFAULT_REPLAY,
    deleting: Boolean(m.deletionTimestamp),
  }
}

export function k8sTapDirectory(
  kc: KubeConfig,
  o: { logger: Logger; restartDelayMs?: (attempt: number) => number },
): K8sTapDirectory {
  const custom = kc.makeApiClient(CustomObjectsApi)
  const informer = makeInformer<KubernetesObject>(kc, `/apis/${GROUP}/${VERSION}/${PLURAL}`, () =>
    custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL }),
  )
  const delay = o.restartDelayMs ?? ((n: number) => Math.min(30_000, 1000 * 2 ** Math.min(n, 5)))
  const removed: ((namespace: string, name: string) => void)[] = []
  let synced = false
  let stopped = false
  let attempt = 0
  let timer: NodeJS.Timeout | undefined
  let failedDuringStart = false

  informer.on('delete', (obj) => {
    const ns = obj.metadata?.namespace
    const name = obj.metadata?.name
    if (!ns || !name) return
    for (const f of removed) f(ns, name)
  })
  informer.on('connect', () => {
    attempt = 0
  })
  informer.on('error', (err) => {
    failedDuringStart = true
    if (stopped) return
    const wait = delay(attempt++)
    o.logger.warn({ err: (err as Error)?.message ?? String(err), retryInMs: wait }, 'LogTap informer failed')
    clearTimeout(timer)
    timer = setTimeout(() => void run(), wait)
  })

  async function run(): Promise<void> {
    if (stopped) return
    failedDuringStart = false
    await informer.start()
    if (!failedDuringStart) synced = true
  }

  return {
    get(namespace, name) {
      const obj = informer.get(name, namespace)
      return obj ? tapInfoOf(obj as Partial<LogTap>) : undefined
    },
    onRemoved(listener) {
      removed.push(listener)
    },
    synced: () => synced,
    start: run,
    stop() {
      stopped = true
      clearTimeout(timer)
      void informer.stop()
    },
  }
}
