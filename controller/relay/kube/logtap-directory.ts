// The relay's TapDirectory in production: the process's shared LogTap informer. Lookups are
// answered from its cache (no API call on the ingest or connect path); whoever owns the informer
// starts and stops it.
import type { LogTap } from '../../../api/logtap.ts'
import { parseSelection, SelectionError } from '../../../api/selection.ts'
import type { InformerHandler, SharedInformer } from '../../kube/informers.ts'
import type { TapDirectory, TapInfo, TapSelection } from '../tap-directory.ts'

const DEFAULT_REPLAY = 1000

interface K8sTapDirectory extends TapDirectory {
  close(): void // stops listening to the informer
}

// Parsed once per version of the informer's object (lookups happen on every ingest request).
const parsed = new WeakMap<object, TapSelection>()

function tapSelectionOf(spec: unknown): TapSelection | undefined {
  if (spec === undefined || spec === null) return undefined
  if (typeof spec !== 'object') return { key: JSON.stringify(spec), error: 'an object expected' }
  let s = parsed.get(spec)
  if (s) return s
  const key = JSON.stringify(spec)
  try {
    s = { key, selection: parseSelection(spec) }
  } catch (err) {
    if (!(err instanceof SelectionError)) throw err
    s = { key, error: err.describe((p) => (p ? `spec.selection.${p}` : 'spec.selection')) }
  }
  parsed.set(spec, s)
  return s
}

// Pure: the relay's view of one LogTap object.
function tapInfoOf(obj: Partial<LogTap>): TapInfo | undefined {
  const m = obj.metadata
  if (!m?.name || !m.namespace || !m.uid) return undefined
  const replay = obj.spec?.replay
  return {
    namespace: m.namespace,
    name: m.name,
    uid: m.uid,
    replay: Number.isInteger(replay) && (replay as number) >= 0 ? (replay as number) : DEFAULT_REPLAY,
    deleting: Boolean(m.deletionTimestamp),
    ...(obj.spec?.selection !== undefined ? { selection: tapSelectionOf(obj.spec.selection) } : {}),
  }
}

export function k8sTapDirectory(logTaps: SharedInformer): K8sTapDirectory {
  const removed: ((namespace: string, name: string) => void)[] = []
  const onEvent: InformerHandler = (event, obj) => {
    const { namespace, name } = obj.metadata ?? {}
    if (event === 'delete' && namespace && name) for (const f of removed) f(namespace, name)
  }
  logTaps.on(onEvent)
  return {
    get(namespace, name) {
      const obj = logTaps.get(name, namespace)
      return obj ? tapInfoOf(obj as Partial<LogTap>) : undefined
    },
    onRemoved(listener) {
      removed.push(listener)
    },
    synced: () => logTaps.synced(),
    close: () => logTaps.off(onEvent),
  }
}
