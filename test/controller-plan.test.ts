// The executor runs any plan the same way, and the sweep's and the watches' decisions are pure
// functions of the caches: these pin both without a cluster.
import t from 'tap'
import { KINDS } from '../api/kinds.ts'
import { LABEL_MANAGED_BY, LABEL_TAP, LABEL_TAP_UID, type LogTap, MANAGED_BY } from '../api/logtap.ts'
import type { KObject } from '../controller/kube/objects.ts'
import { runPlan } from '../controller/reconciler/actions.ts'
import type { Action, Plan } from '../controller/reconciler/desired/plan.ts'
import { danglingRefRepairs, orphanOwnerKeys } from '../controller/reconciler/desired/repairs.ts'
import { affectedTaps } from '../controller/reconciler/watches.ts'

const del = (name: string): Action => ({
  type: 'DeleteOutput',
  output: { kind: 'Output', namespace: 'ns', name },
})
const nameOf = (a: Action) => (a.type === 'DeleteOutput' ? a.output.name : a.type)

t.test('runPlan: a stage runs together, the next waits for it, a failure stops the plan', async (t) => {
  const log: string[] = []
  const step = async (a: Action) => {
    log.push(`start ${nameOf(a)}`)
    await new Promise((r) => setTimeout(r, nameOf(a) === 'slow' ? 30 : 1))
    log.push(`end ${nameOf(a)}`)
    if (nameOf(a) === 'bad') throw new Error('bad failed')
  }
  await runPlan([[del('slow'), del('fast')], [del('last')]], step)
  t.same(log, ['start slow', 'start fast', 'end fast', 'end slow', 'start last', 'end last'])

  log.length = 0
  const plan: Plan = [[del('bad'), del('slow')], [del('never')]]
  await t.rejects(runPlan(plan, step), /bad failed/)
  t.same(log, ['start bad', 'start slow', 'end bad', 'end slow'], 'its stage finished, nothing after it ran')
})

t.test('runPlan: a crash before a step leaves the later steps of its stage unstarted', async (t) => {
  const started: string[] = []
  const step = async (a: Action) => {
    started.push(nameOf(a))
  }
  const before = (a: Action) => {
    if (nameOf(a) === 'b') throw new Error('crash before b')
  }
  await t.rejects(runPlan([[del('a'), del('b'), del('c')], [del('d')]], step, before), /crash before b/)
  t.same(started, ['a'])
})

const flow = (name: string, spec: Record<string, unknown>, kind = 'Flow', ns = 'ns'): KObject => ({
  kind,
  metadata: { name, namespace: ns, uid: `uid-${name}` },
  spec,
})
const out = (name: string, kind = 'Output', ns = 'ns'): KObject => ({
  kind,
  metadata: { name, namespace: ns },
})

const describe = (r: Action) =>
  r.type === 'RemoveDanglingRef' &&
  `${r.flow.kind} ${r.flow.namespace}/${r.flow.name} ${r.field} ${r.output.kind} ${r.output.name} in ${r.output.namespaces}`

t.test('dangling refs: only refs shaped like ours, per namespace and kind', async (t) => {
  const flows = [
    flow('a', { localOutputRefs: ['es', 'logtap-gone', 'logtap-here'] }),
    flow('b', { globalOutputRefs: ['logtap-here'] }, 'ClusterFlow'),
    flow('c', { localOutputRefs: ['logtap-here'] }, 'Flow', 'other'),
  ]
  const repairs = danglingRefRepairs(flows, [out('logtap-here'), out('es')], [], () => true)
  t.same(repairs.map(describe), [
    'Flow ns/a localOutputRefs Output logtap-gone in ns',
    'ClusterFlow ns/b globalOutputRefs ClusterOutput logtap-here in ns',
    'Flow other/c localOutputRefs Output logtap-here in other',
  ])
})

t.test('dangling global refs: in any namespace, judged by the Loggings that render the flow', async (t) => {
  const logging = (name: string, spec: Record<string, unknown>): KObject => ({
    kind: 'Logging',
    metadata: { name },
    spec,
  })
  const loggings = [
    logging('a', { loggingRef: 'a', controlNamespace: 'ctl', watchNamespaces: ['shop'] }),
    logging('b', { loggingRef: 'b', controlNamespace: 'elsewhere' }),
  ]
  const flows = [
    flow('gone', { loggingRef: 'a', globalOutputRefs: ['logtap-gone', 'shared'] }, 'Flow', 'shop'),
    flow('here', { loggingRef: 'a', globalOutputRefs: ['logtap-here'] }, 'Flow', 'shop'),
    flow('other', { loggingRef: 'b', globalOutputRefs: ['logtap-gone'] }, 'Flow', 'shop'),
    flow('unwatched', { loggingRef: 'a', globalOutputRefs: ['logtap-gone'] }, 'Flow', 'lab'),
  ]
  const outputs = [out('logtap-here', 'ClusterOutput', 'ctl')]
  const all = () => true
  t.same(danglingRefRepairs(flows, outputs, loggings, all).map(describe), [
    'Flow shop/gone globalOutputRefs ClusterOutput logtap-gone in ctl',
    'Flow shop/other globalOutputRefs ClusterOutput logtap-gone in elsewhere',
  ])
  t.same(
    danglingRefRepairs(flows, outputs, loggings, (ns) => ns === 'ctl').map(describe),
    ['Flow shop/gone globalOutputRefs ClusterOutput logtap-gone in ctl'],
    'only ClusterOutputs of namespaces the controller watches are judged',
  )
  t.same(danglingRefRepairs(flows, outputs, undefined, all), [], 'Loggings unknown: nothing judged')
})

const owned = (name: string, tap: string, uid: string): KObject => ({
  kind: 'Output',
  metadata: {
    name,
    namespace: 'ns',
    ownerReferences: [
      { apiVersion: KINDS.LogTap.apiVersion, kind: 'LogTap', name: tap, uid, controller: true },
    ],
  },
})

const labelled = (name: string, tap: string, uid: string): KObject => ({
  kind: 'Output',
  metadata: {
    name,
    namespace: 'ns',
    labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_TAP]: tap, [LABEL_TAP_UID]: uid },
  },
})

t.test('orphans: owners that are gone or were recreated', async (t) => {
  const taps: Record<string, string> = { 'ns/live': 'u1', 'ns/again': 'u3' }
  const uid = (ns: string, name: string) => taps[`${ns}/${name}`]
  const keys = orphanOwnerKeys(
    [
      owned('a', 'live', 'u1'),
      owned('b', 'gone', 'u2'),
      owned('c', 'again', 'u-old'),
      out('theirs'),
      labelled('d', 'stripped', 'u4'),
    ],
    uid,
  )
  t.same(keys, ['ns/gone', 'ns/again', 'ns/stripped'], 'by owner reference, or by labels alone')
})

t.test('watches: which taps an event affects', async (t) => {
  const tap = (name: string, flowName: string, kind = 'Flow'): KObject =>
    ({ metadata: { name, namespace: 'ns' }, spec: { flow: { kind, name: flowName } } }) as LogTap
  const taps = [tap('t1', 'app'), tap('t2', 'other'), tap('c1', 'all', 'ClusterFlow')]
  const tapsIn = (ns?: string) => (ns === undefined || ns === 'ns' ? taps : [])
  t.same(affectedTaps('LogTap', tap('x', 'y'), tapsIn), ['ns/x'])
  t.same(affectedTaps('Flow', flow('app', {}), tapsIn), ['ns/t1'], 'the tapped flow')
  t.same(
    affectedTaps('Output', owned('logtap-t2', 't2', 'u'), tapsIn),
    ['ns/t2', 'ns/t2'],
    'owner and by name',
  )
  t.same(affectedTaps('Output', out('logtap-t1'), tapsIn), ['ns/t1'], 'a foreign object at our name')
  t.same(
    affectedTaps('Logging', { kind: 'Logging', metadata: { name: 'l' } }, tapsIn),
    ['ns/t1', 'ns/t2', 'ns/c1'],
    'a Logging: every tap (where cluster flows may live, whether any flow is rendered)',
  )
  t.same(affectedTaps('Flow', flow('app', {}, 'Flow', 'elsewhere'), tapsIn), [])
  const clusterOutputs = () => [{ ...labelled('logtap-c1', 'c1', 'u'), kind: 'ClusterOutput' }]
  t.same(
    affectedTaps(
      'Flow',
      flow('tenant', { globalOutputRefs: ['logtap-c1'] }, 'Flow', 'shop'),
      tapsIn,
      clusterOutputs,
    ),
    ['ns/c1'],
    "a flow elsewhere naming a tap's ClusterOutput",
  )
})
