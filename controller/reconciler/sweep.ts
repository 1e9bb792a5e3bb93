// The periodic sweep (leader only): resync every tap (which restores refs removed by hand),
// enqueue the owners of orphaned objects (their reconcile tears them down in the safe order), and
// remove refs of ours that point at outputs that no longer exist (such a dangling ref makes
// logging-operator stop rendering the whole Logging).
import type pino from 'pino'
import { type Api, errorText } from '../kube/client.ts'
import type { EventRecorder } from '../kube/events.ts'
import type { KObject, OutputKind } from '../kube/objects.ts'
import { detachPatch, type RefField, refsIn } from './desired/flows.ts'
import { keyOf, looksLikeTapObjectName } from './desired/naming.ts'
import type { ControllerMetrics } from './metrics.ts'
import type { Caches } from './reconcile.ts'

export interface SweepDeps {
  api: Api
  caches: Caches
  events: EventRecorder
  log: pino.Logger
  metrics: ControllerMetrics
  enqueue(key: string): void
}

export async function sweep(d: SweepDeps): Promise<void> {
  const { caches } = d
  for (const t of caches.taps.list()) d.enqueue(keyOf(t.metadata.namespace ?? '', t.metadata.name ?? ''))

  const owned = [
    ...caches.outputs.list(),
    ...caches.clusterOutputs.list(),
    ...caches.flows.list(),
    ...caches.clusterFlows.list(),
  ]
  for (const o of owned) {
    const owner = (o.metadata.ownerReferences ?? []).find((r) => r.kind === 'LogTap' && r.controller)
    if (!owner) continue
    const tap = caches.taps.get(owner.name, o.metadata.namespace)
    if (!tap || tap.metadata.uid !== owner.uid) {
      d.metrics.sweepRepairs.inc({ kind: 'orphan' })
      d.enqueue(keyOf(o.metadata.namespace ?? '', owner.name))
    }
  }

  const check = async (flow: KObject, field: RefField, outputKind: OutputKind, outputs: Set<string>) => {
    for (const ref of refsIn(flow, field)) {
      if (!looksLikeTapObjectName(ref) || outputs.has(ref)) continue
      await removeDangling(d, flow, field, outputKind, ref)
    }
  }
  for (const f of caches.flows.list()) {
    const ns = f.metadata.namespace ?? ''
    await check(
      f,
      'localOutputRefs',
      'Output',
      new Set(caches.outputs.list(ns).map((x) => x.metadata.name ?? '')),
    )
  }
  for (const f of caches.clusterFlows.list()) {
    const ns = f.metadata.namespace ?? ''
    await check(
      f,
      'globalOutputRefs',
      'ClusterOutput',
      new Set(caches.clusterOutputs.list(ns).map((x) => x.metadata.name ?? '')),
    )
  }
}

async function removeDangling(
  d: SweepDeps,
  flow: KObject,
  field: RefField,
  outputKind: OutputKind,
  ref: string,
) {
  const ns = flow.metadata.namespace ?? ''
  const kind = flow.kind as 'Flow' | 'ClusterFlow'
  try {
    // The cache may lag behind a just-created output: only a live miss counts.
    if (await d.api.get(outputKind, ns, ref)) return
    const r = await d.api.patchFresh(kind, ns, flow.metadata.name ?? '', (cur) =>
      detachPatch(cur, [field], ref),
    )
    if (r !== 'patched') return
    d.metrics.sweepRepairs.inc({ kind: 'dangling-ref' })
    const message = `Removed ${ref} from .spec.${field}: ${outputKind} ${ns}/${ref} does not exist, and a reference to a missing output stops logging-operator from rendering the whole Logging`
    d.log.warn({ flow: `${kind} ${ns}/${flow.metadata.name}`, ref }, 'Removed dangling output ref')
    void d.events.record(
      { ...flow, apiVersion: flow.apiVersion ?? 'logging.banzaicloud.io/v1beta1', kind },
      'Warning',
      'RemovedDanglingRef',
      message,
    )
  } catch (err) {
    d.log.warn(
      { flow: `${kind} ${ns}/${flow.metadata.name}`, ref, err: errorText(err) },
      'Dangling output ref not removed',
    )
  }
}
