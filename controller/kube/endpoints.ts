// The pods behind one Service, from its EndpointSlices (label kubernetes.io/service-name): each
// pod's name, the port a named Service port reaches on it, and whether it is ready. The relay
// replicas learn about each other this way and the controller prunes the counters of replicas that
// are gone: Kubernetes (readiness probes, the EndpointSlice controller) is the coordination engine,
// nothing else is kept in sync.
import type { KubeConfig } from '@kubernetes/client-node'
import type pino from 'pino'
import { KINDS } from '../../api/kinds.ts'
import { SharedInformer } from './informers.ts'
import type { KObject } from './objects.ts'

export interface ServiceEndpoint {
  name: string // the pod (the endpoint's targetRef)
  port: number // what the named Service port reaches on that pod
  ready: boolean // ready for traffic: kube-proxy sends it connections
  terminating: boolean // the pod is being deleted
}

// The parts of an EndpointSlice (discovery.k8s.io/v1) read here.
interface SliceShape {
  endpoints?: {
    conditions?: { ready?: boolean | null; terminating?: boolean | null }
    targetRef?: { kind?: string; name?: string }
  }[]
  ports?: { name?: string | null; port?: number | null }[] | null
}

const SERVICE_NAME_LABEL = 'kubernetes.io/service-name'

// Pure: the pods of the slices that carry `portName`, by name. A pod listed twice (while the
// EndpointSlice controller moves it between slices) counts once, ready if either says so. An
// endpoint whose `ready` is unset counts as ready, as the API asks consumers to read it.
export function serviceEndpoints(slices: readonly object[], portName: string): ServiceEndpoint[] {
  const byName = new Map<string, ServiceEndpoint>()
  for (const slice of slices as SliceShape[]) {
    const port = slice.ports?.find((p) => (p.name ?? '') === portName)?.port
    if (typeof port !== 'number') continue
    for (const e of slice.endpoints ?? []) {
      const name = e.targetRef?.kind === 'Pod' ? e.targetRef.name : undefined
      if (!name) continue
      const next: ServiceEndpoint = {
        name,
        port,
        ready: e.conditions?.ready !== false,
        terminating: e.conditions?.terminating === true,
      }
      const prev = byName.get(name)
      if (!prev || (next.ready && !prev.ready)) byName.set(name, next)
    }
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

export interface EndpointsWatch {
  list(): ServiceEndpoint[] // empty until synced
  synced(): boolean
  onChange(listener: () => void): void
  start(): Promise<void> // resolves once the first list arrived
  stop(): Promise<void>
}

// A watch of the EndpointSlices of Service `namespace/service`.
export function watchServiceEndpoints(
  kc: KubeConfig,
  o: { namespace: string; service: string; portName: string; log: pino.Logger },
): EndpointsWatch {
  const informer = new SharedInformer(kc, KINDS.EndpointSlice, {
    namespace: o.namespace,
    labelSelector: `${SERVICE_NAME_LABEL}=${o.service}`,
    log: o.log,
  })
  const listeners = new Set<() => void>()
  let current: ServiceEndpoint[] = []
  let key = ''
  const recompute = (): void => {
    const next = serviceEndpoints(informer.list(o.namespace) as KObject[], o.portName)
    const nextKey = JSON.stringify(next)
    if (nextKey === key) return
    key = nextKey
    current = next
    for (const f of listeners) f()
  }
  informer.on(() => {
    if (informer.synced()) recompute()
  })
  return {
    list: () => current,
    synced: () => informer.synced(),
    onChange: (f) => {
      listeners.add(f)
    },
    async start() {
      await informer.start()
      recompute()
    },
    stop: () => informer.stop(),
  }
}
