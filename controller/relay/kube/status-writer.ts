// Writes this relay replica's counters back to each LogTap's status: its own entry of
// `status.relays` (name, listeners, recordsReceived, lastRecordTime) and nothing else, by
// server-side apply on the status subresource under a field manager of its own (one per replica,
// so replicas never overwrite each other, and the controller owns the other status fields under
// its managers). The leading controller sums the entries into status.listeners/recordsReceived.
// Rate-limited: the hub reports on every change, we remember the newest counters and write each
// changed tap at most once per interval. `metadata.uid` in the patch makes the API server reject
// writes to a tap recreated under the same name.
import { CustomObjectsApi, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { API_VERSION, GROUP, KIND, PLURAL, relayFieldManager, VERSION } from '../../../api/logtap.ts'
import type { StatusSink, TapCounters } from '../tap-status.ts'

interface Pending {
  tap: { namespace: string; name: string; uid: string }
  counters: TapCounters
}

export interface StatusWriter {
  sink: StatusSink
  // Writes everything pending now (e.g. at shutdown, after listeners were closed).
  flush(): Promise<void>
  stop(): Promise<void>
}

const same = (a: TapCounters | undefined, b: TapCounters): boolean =>
  !!a &&
  a.listeners === b.listeners &&
  a.recordsReceived === b.recordsReceived &&
  a.lastRecordTime === b.lastRecordTime

// Pure: the apply patch for one tap's counters on replica `replica`.
function statusPatch(tap: Pending['tap'], replica: string, c: TapCounters): object {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: tap.name, namespace: tap.namespace, uid: tap.uid },
    status: {
      relays: [
        {
          name: replica,
          listeners: c.listeners,
          recordsReceived: c.recordsReceived,
          ...(c.lastRecordTime ? { lastRecordTime: c.lastRecordTime } : {}),
        },
      ],
    },
  }
}

// `replica`: this relay's name (its pod), the key of its status.relays entries.
export function k8sStatusWriter(
  kc: KubeConfig,
  o: { logger: Logger; replica: string; intervalMs?: number },
): StatusWriter {
  const fieldManager = relayFieldManager(o.replica)
  const custom = kc.makeApiClient(CustomObjectsApi)
  const pending = new Map<string, Pending>()
  const written = new Map<string, TapCounters & { uid: string }>()
  let running: Promise<void> = Promise.resolve()
  const applyHeader = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply)

  async function write(key: string, p: Pending): Promise<void> {
    try {
      await custom.patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace: p.tap.namespace,
          name: p.tap.name,
          body: statusPatch(p.tap, o.replica, p.counters),
          fieldManager,
          force: true,
        },
        applyHeader,
      )
      written.set(key, { ...p.counters, uid: p.tap.uid })
    } catch (err) {
      const code = (err as { code?: number }).code
      // Gone or replaced (404 / uid conflict 409): nothing to report to any more.
      if (code === 404 || code === 409) {
        written.delete(key)
        return
      }
      o.logger.warn({ tap: key, code, err: (err as Error).message }, 'writing LogTap status failed')
      // Retry on the next tick unless newer counters arrived meanwhile.
      if (!pending.has(key)) pending.set(key, p)
    }
  }

  function tick(): Promise<void> {
    running = running.then(async () => {
      const batch = [...pending]
      pending.clear()
      for (const [key, p] of batch) {
        const w = written.get(key)
        if (w && w.uid === p.tap.uid && same(w, p.counters)) continue
        await write(key, p)
      }
    })
    return running
  }

  const timer = setInterval(() => void tick(), o.intervalMs ?? 5000)
  timer.unref()

  return {
    sink(tap, counters) {
      pending.set(`${tap.namespace}/${tap.name}`, { tap, counters })
    },
    flush: tick,
    async stop() {
      clearInterval(timer)
      await running
    },
  }
}
