// The periodic sweep (leader only): resync every tap (which restores refs removed by hand),
// enqueue the owners of orphaned objects (their reconcile tears them down in the safe order), and
// remove refs of ours that point at outputs that no longer exist, in every flow of every namespace
// (such a dangling ref makes logging-operator stop rendering the whole Logging). The repairs are Actions run by the same
// executor as a reconcile's.
import type pino from 'pino'
import { FLOW_KINDS, KINDS, OUTPUT_KINDS } from '../../api/kinds.ts'
import { errorText } from '../kube/api-errors.ts'
import type { EventRecorder } from '../kube/events.ts'
import type { ObjectClient } from '../kube/object-client.ts'
import { describeRef } from '../kube/objects.ts'
import { execute, type Pass, runPlan, startPass } from './actions.ts'
import { keyOfObject } from './desired/naming.ts'
import { type Action, oneByOne } from './desired/plan.ts'
import { danglingRefRepairs, orphanOwnerKeys } from './desired/repairs.ts'
import type { ControllerMetrics } from './metrics.ts'
import type { Caches } from './watches.ts'

interface SweepDeps {
  client: ObjectClient
  caches: Caches
  events: EventRecorder
  log: pino.Logger
  metrics: ControllerMetrics
  enqueue(key: string): void
  // The namespaces whose outputs the controller watches (all, unless it is scoped to one).
  inScope(namespace: string): boolean
}

export async function sweep(d: SweepDeps): Promise<void> {
  const { caches } = d
  for (const t of caches.LogTap.list()) d.enqueue(keyOfObject(t))

  const outputs = OUTPUT_KINDS.flatMap((k) => caches[k].list())
  const flows = FLOW_KINDS.flatMap((k) => caches[k].list())
  const tapUid = (namespace: string, name: string) => caches.LogTap.get(name, namespace)?.metadata.uid
  for (const key of orphanOwnerKeys([...outputs, ...flows], tapUid)) {
    d.metrics.sweepRepairs.inc({ kind: 'orphan' })
    d.enqueue(key)
  }

  // Each repair is tried on its own: one that fails does not hold back the others.
  const loggings = caches.Logging.synced() ? caches.Logging.list() : undefined
  const plan = oneByOne(danglingRefRepairs(flows, outputs, loggings, d.inScope))
  const pass = startPass(d.client, { namespace: '', name: '' }, plan)
  await runPlan(plan, (repair) => runRepair(d, pass, repair))
}

async function runRepair(d: SweepDeps, pass: Pass, a: Action): Promise<void> {
  if (a.type !== 'RemoveDanglingRef') throw new Error(`not a sweep repair: ${a.type}`)
  const flow = describeRef(a.flow)
  try {
    const r = await execute(pass, a)
    if (!r.did) return
    d.metrics.sweepRepairs.inc({ kind: 'dangling-ref' })
    const { namespaces, name, kind } = a.output
    const where =
      namespaces.length === 1 ? `${namespaces[0]}/${name}` : `${name} (in ${namespaces.join(', ')})`
    const message = `Removed ${name} from .spec.${a.field}: ${kind} ${where} does not exist, and a reference to a missing output stops logging-operator from rendering the whole Logging`
    d.log.warn({ flow, ref: name }, 'Removed dangling output ref')
    const target = {
      apiVersion: KINDS[a.flow.kind].apiVersion,
      kind: a.flow.kind,
      metadata: { name: a.flow.name, namespace: a.flow.namespace, uid: a.flow.uid },
    }
    void d.events.record(target, 'Warning', 'RemovedDanglingRef', message)
  } catch (err) {
    d.log.warn({ flow, ref: a.output.name, err: errorText(err) }, 'Dangling output ref not removed')
  }
}
