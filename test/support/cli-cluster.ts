// Cluster-side helpers for the k8stail integration tests: make sure the LogTap CRD is served, and
// a stand-in for the controller's status writing (the real controller is wired by the end-to-end
// test): it marks the session taps k8stail creates Ready, or FlowFound=False when no such Flow exists.
import { setTimeout as sleep } from 'node:timers/promises'
import { ApiextensionsV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node'
import { GROUP, type LogTap, PLURAL, VERSION } from '../../api/logtap.ts'

// The harness installs the generated LogTap CRD (crds/); wait until discovery serves it.
export async function ensureLogTapCrd(kc: KubeConfig): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api)
  const name = `${PLURAL}.${GROUP}`
  for (let i = 0; i < 100; i++) {
    const crd = await api.readCustomResourceDefinition({ name })
    if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) {
      // Discovery catches up a moment after Established.
      const custom = kc.makeApiClient(CustomObjectsApi)
      try {
        await custom.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: 'default',
          plural: PLURAL,
        })
        return
      } catch {
        // not served yet
      }
    }
    await sleep(100)
  }
  throw new Error(`CRD ${name} not established`)
}

export interface StandIn {
  seen: string[] // "<ns>/<name>" of the taps it answered
  stop(): void
}

// Polls the namespace and writes conditions the way the controller would report them.
export function controllerStandIn(
  kc: KubeConfig,
  namespace: string,
  flowExists: (kind: string, name: string) => Promise<boolean>,
  onReady: (tap: LogTap) => void,
): StandIn {
  const custom = kc.makeApiClient(CustomObjectsApi)
  const seen: string[] = []
  let stopped = false
  const ref = { group: GROUP, version: VERSION, namespace, plural: PLURAL }
  const loop = async () => {
    while (!stopped) {
      const list = (await custom.listNamespacedCustomObject(ref).catch(() => ({ items: [] }))) as {
        items: LogTap[]
      }
      for (const tap of list.items) {
        const key = `${namespace}/${tap.metadata.name}`
        if (seen.includes(key) || tap.status?.conditions?.length) continue
        seen.push(key)
        const now = new Date().toISOString()
        const found = await flowExists(tap.spec.flow.kind ?? 'Flow', tap.spec.flow.name)
        const conditions = found
          ? [
              { type: 'FlowFound', status: 'True', reason: 'Found', message: '', lastTransitionTime: now },
              {
                type: 'Ready',
                status: 'True',
                reason: 'Streaming',
                message: 'output active',
                lastTransitionTime: now,
              },
            ]
          : [
              {
                type: 'FlowFound',
                status: 'False',
                reason: 'FlowNotFound',
                message: `${tap.spec.flow.kind} ${namespace}/${tap.spec.flow.name} does not exist`,
                lastTransitionTime: now,
              },
            ]
        await custom
          .replaceNamespacedCustomObjectStatus({
            ...ref,
            name: tap.metadata.name!,
            body: { ...tap, status: { conditions } },
          })
          .then(() => found && onReady(tap))
          .catch(() => seen.splice(seen.indexOf(key), 1)) // conflict: try again next round
      }
      await sleep(200)
    }
  }
  void loop()
  return {
    seen,
    stop: () => {
      stopped = true
    },
  }
}
