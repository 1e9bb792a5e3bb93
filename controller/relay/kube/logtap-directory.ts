// The relay's TapDirectory in production: a LogTap informer over all namespaces. Lookups are
// answered from the informer cache (no API call on the ingest or connect path). The informer is
// the controller's resilient one (restarts with backoff, tracks "synced" itself).
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { GROUP, KIND, type LogTap, PLURAL, VERSION } from '../../../api/logtap.ts'
import { Informer } from '../../kube/informers.ts'
import type { TapDirectory, TapInfo } from '../tap-directory.ts'

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

export function k8sTapDirectory(kc: KubeConfig, o: { logger: Logger }): K8sTapDirectory {
  const custom = kc.makeApiClient(CustomObjectsApi)
  const removed: ((namespace: string, name: string) => void)[] = []
  const informer = new Informer(
    kc,
    {
      name: 'LogTap (relay)',
      kind: KIND,
      path: `/apis/${GROUP}/${VERSION}/${PLURAL}`,
      list: () => custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL }) as never,
    },
    (event, obj) => {
      const { namespace, name } = obj.metadata ?? {}
      if (event === 'delete' && namespace && name) for (const f of removed) f(namespace, name)
    },
    o.logger,
  )
  return {
    get(namespace, name) {
      const obj = informer.get(name, namespace)
      return obj ? tapInfoOf(obj as Partial<LogTap>) : undefined
    },
    onRemoved(listener) {
      removed.push(listener)
    },
    synced: () => informer.synced(),
    // Resolves once the first list succeeded (retrying with backoff until then).
    start: () => informer.start(),
    stop() {
      void informer.stop()
    },
  }
}
