// desired() for taps of syslog-ng flows (SyslogNGFlow, SyslogNGClusterFlow): the same plans and
// ordering invariant as for fluentd's, with the syslog-ng kinds, and an http() output that batches,
// says its Content-Type, takes its credential from the Secret, queues in memory only and drops what
// the relay refuses.
import t from 'tap'
import { KINDS } from '../api/kinds.ts'
import { FINALIZER_TAP, type FlowKind, type LogTap } from '../api/logtap.ts'
import type { KObject } from '../controller/kube/objects.ts'
import { desiredCredentialSecret } from '../controller/reconciler/desired/credential-secret.ts'
import { type DesiredConfig, desired, type Observed } from '../controller/reconciler/desired/desired.ts'
import { routesTo } from '../controller/reconciler/desired/flows.ts'
import { desiredOutput } from '../controller/reconciler/desired/output.ts'
import { danglingRefRepairs } from '../controller/reconciler/desired/repairs.ts'
import { affectedTaps } from '../controller/reconciler/watches.ts'

const cfg: DesiredConfig = {
  ingestBaseUrl: 'http://relay:10000/',
  ingestKey: new Uint8Array(32),
  leaseGraceMs: 3000,
  startGraceMs: 30_000,
  defaultLeaseDurationSeconds: 30,
  operatorWaitMs: 60_000,
}
const NOW = Date.parse('2026-01-01T00:10:00Z')

function mkTap(kind: FlowKind, over: Partial<LogTap['spec']> = {}, meta: Partial<LogTap['metadata']> = {}) {
  const tap: LogTap = {
    apiVersion: KINDS.LogTap.apiVersion,
    kind: 'LogTap',
    metadata: {
      name: 't',
      namespace: 'ns',
      uid: 'u1',
      generation: 1,
      finalizers: [FINALIZER_TAP],
      creationTimestamp: '2026-01-01T00:00:00Z',
      ...meta,
    },
    spec: { flow: { kind, name: 'f' }, mode: 'inject', lifetime: 'persistent', replay: 10, ...over },
  }
  return tap
}
function mkFlow(name: string, spec: Record<string, unknown>, kind: string, namespace = 'ns'): KObject {
  return {
    apiVersion: KINDS.SyslogNGFlow.apiVersion,
    kind,
    metadata: { name, namespace, uid: `uid-${name}`, resourceVersion: '1' },
    spec,
  }
}
function ourOutput(tap: LogTap, meta: Partial<KObject['metadata']> = {}): KObject {
  const o = desiredOutput(tap, undefined, cfg)
  return { ...o, metadata: { ...o.metadata, uid: 'out-uid', ...meta }, status: { active: true } }
}
function ourSecret(tap: LogTap, kind: 'SyslogNGOutput' | 'SyslogNGClusterOutput'): KObject {
  const s = desiredCredentialSecret(tap, undefined, { kind, name: 'logtap-t', uid: 'out-uid' }, cfg.ingestKey)
  return { ...s, metadata: { ...s.metadata, uid: 'secret-uid' } }
}
const obs = (o: Partial<Observed>): Observed => ({
  namespace: 'ns',
  name: 't',
  outputs: [],
  flows: [],
  now: NOW,
  ...o,
})
const types = (a: readonly { type: string }[]) => a.map((x) => x.type)
const cond = (d: ReturnType<typeof desired>, type: string) =>
  d.status?.conditions.find((c) => c.type === type)
const applied = (d: ReturnType<typeof desired>, type: string) =>
  (d.plan.flat().find((a) => a.type === type) as { object: KObject } | undefined)?.object

t.test('SyslogNGFlow tap: a SyslogNGOutput with http() to the tap’s ingest URL, then the ref', async (t) => {
  const tap = mkTap('SyslogNGFlow', {}, { finalizers: [] })
  const flow = mkFlow('f', { loggingRef: 'lr', localOutputRefs: ['es'] }, 'SyslogNGFlow')
  const d = desired(obs({ tap, flows: [flow] }), cfg)
  t.same(
    d.plan.map(types),
    [['AddTapFinalizer', 'ApplySecret'], ['ApplyOutput'], ['Attach']],
    'finalizer and Secret together; the output that names it next; the ref last',
  )
  const out = applied(d, 'ApplyOutput')!
  t.equal(out.kind, 'SyslogNGOutput')
  t.equal(out.apiVersion, KINDS.SyslogNGOutput.apiVersion)
  t.equal(out.spec?.['loggingRef'], 'lr', 'the tapped flow’s loggingRef')
  const http = out.spec?.['http'] as Record<string, unknown>
  t.equal(http['url'], 'http://relay:10000/ingest/ns/t')
  t.equal(http['method'], 'POST')
  t.same(http['headers'], ['Content-Type: application/x-ndjson'], 'an explicit Content-Type')
  t.equal(http['user'], 't')
  t.same(
    http['password'],
    { valueFrom: { secretKeyRef: { name: 'logtap-t', key: 'password' } } },
    'the credential comes from the Secret, never in the spec',
  )
  t.equal(http['batch-timeout'], 1000, 'a batch leaves within a second')
  t.ok((http['batch-lines'] as number) > 0 && (http['batch-bytes'] as number) > 0, 'batched')
  t.ok((http['log-fifo-size'] as number) > 0, 'a bounded queue')
  t.notOk('disk_buffer' in http, 'nothing on disk')
  t.notOk('body' in http, 'the default body: MESSAGE, the fluent-bit JSON line')
  const actions = http['response-action'] as Record<string, string>
  for (const code of ['403', '404', '413']) t.equal(actions[code], 'drop', `${code} is dropped, not retried`)
  t.equal(actions['503'], 'retry', '503 is a failed batch, retried a bounded number of times')
  t.match(applied(d, 'ApplySecret')?.metadata.annotations, { 'logging.banzaicloud.io/lr': 'watched' })
  t.match(d.plan.flat().at(-1), {
    type: 'Attach',
    flow: { kind: 'SyslogNGFlow', name: 'f' },
    field: 'localOutputRefs',
    output: { kind: 'SyslogNGOutput', name: 'logtap-t' },
  })
  t.equal(d.status?.outputKind, 'SyslogNGOutput')
  t.match(cond(d, 'Ready'), { status: 'False', reason: 'WaitingForLoggingOperator' })
})

t.test('a fluentd Flow of the tapped name is not a SyslogNGFlow: the tap waits, with a hint', async (t) => {
  const tap = mkTap('SyslogNGFlow')
  const d = desired(obs({ tap, flows: [mkFlow('f', {}, 'Flow')] }), cfg)
  t.same(d.plan.flat(), [])
  t.match(cond(d, 'FlowFound'), { reason: 'FlowNotFound', message: /a Flow of that name exists/ })
})

t.test('converged SyslogNGFlow tap is Ready and says syslog-ng gets it', async (t) => {
  const tap = mkTap('SyslogNGFlow')
  const d = desired(
    obs({
      tap,
      outputs: [ourOutput(tap)],
      secret: ourSecret(tap, 'SyslogNGOutput'),
      flows: [mkFlow('f', { localOutputRefs: ['es', 'logtap-t'] }, 'SyslogNGFlow')],
    }),
    cfg,
  )
  t.same(d.plan.flat(), [])
  t.match(cond(d, 'Accepted'), { status: 'True', message: /syslog-ng receives it/ })
  t.match(cond(d, 'Ready'), { status: 'True', message: /SyslogNGFlow f/ })
})

t.test(
  'SyslogNGClusterFlow tap: a SyslogNGClusterOutput in globalOutputRefs, in the control namespace',
  async (t) => {
    const tap = mkTap('SyslogNGClusterFlow')
    const flows = [mkFlow('f', {}, 'SyslogNGClusterFlow')]
    const logging = (ns: string): KObject => ({
      kind: 'Logging',
      metadata: { name: 'l' },
      spec: { controlNamespace: ns },
    })
    const wrong = desired(obs({ tap, flows, loggings: [logging('logging')] }), cfg)
    t.same(wrong.plan.flat(), [])
    t.match(cond(wrong, 'FlowFound'), {
      reason: 'WrongNamespace',
      message: /SyslogNGClusterFlow taps must live in the logging control namespace \(logging\)/,
    })
    const ok = desired(obs({ tap, flows, loggings: [logging('ns')] }), cfg)
    t.same(types(ok.plan.flat()), ['ApplySecret', 'ApplyOutput', 'Attach'])
    t.equal(applied(ok, 'ApplyOutput')?.kind, 'SyslogNGClusterOutput')
    t.match(ok.plan.flat()[2], { field: 'globalOutputRefs', output: { kind: 'SyslogNGClusterOutput' } })
  },
)

t.test('deleting a SyslogNGClusterFlow tap: every syslog-ng flow naming it is detached first', async (t) => {
  const tap = mkTap('SyslogNGClusterFlow', {}, { deletionTimestamp: 'x' })
  const out = ourOutput(tap)
  t.equal(out.kind, 'SyslogNGClusterOutput')
  const clusterFlow = mkFlow('f', { globalOutputRefs: ['logtap-t'] }, 'SyslogNGClusterFlow')
  const tenant = mkFlow('app', { globalOutputRefs: ['es', 'logtap-t'] }, 'SyslogNGFlow', 'shop')
  // A fluentd Flow naming a ClusterOutput of the same name: not ours, left alone.
  const fluentd = mkFlow('app', { globalOutputRefs: ['logtap-t'] }, 'Flow', 'shop')
  const loggings: KObject[] = [
    { kind: 'Logging', metadata: { name: 'l' }, spec: { controlNamespace: 'ns', watchNamespaces: ['shop'] } },
  ]
  for (const known of [loggings, undefined]) {
    const d = desired(
      obs({ tap, outputs: [out], flows: [clusterFlow], elsewhere: [tenant, fluentd], loggings: known }),
      cfg,
    )
    t.same(
      d.plan
        .flat()
        .map((a) =>
          a.type === 'Detach' ? `Detach ${a.flow.kind} ${a.flow.namespace}/${a.flow.name}` : a.type,
        ),
      ['Detach SyslogNGClusterFlow ns/f', 'Detach SyslogNGFlow shop/app', 'ReleaseOutput', 'DeleteOutput'],
      known ? 'Loggings known' : 'Loggings unknown',
    )
  }
  const gone = desired(obs({ tap, flows: [mkFlow('f', {}, 'SyslogNGClusterFlow')] }), cfg)
  t.same(types(gone.plan.flat()), ['RemoveTapFinalizer'], 'the finalizer goes last')
})

t.test(
  'mirror of a SyslogNGFlow: a SyslogNGFlow copy feeding only the tap, without outputMetrics',
  async (t) => {
    const tap = mkTap('SyslogNGFlow', { mode: 'mirror' })
    const match = { regexp: { value: 'json.kubernetes.labels.app', pattern: 'shop', type: 'string' } }
    const src = mkFlow(
      'f',
      {
        match,
        filters: [{ rewrite: [] }],
        localOutputRefs: ['es'],
        globalOutputRefs: ['all'],
        outputMetrics: [{}],
      },
      'SyslogNGFlow',
    )
    const d = desired(obs({ tap, flows: [src] }), cfg)
    t.same(types(d.plan.flat()), ['ApplySecret', 'ApplyOutput', 'ApplyMirrorFlow'])
    const copy = applied(d, 'ApplyMirrorFlow')!
    t.equal(copy.kind, 'SyslogNGFlow')
    t.same(copy.spec, { match, filters: [{ rewrite: [] }], localOutputRefs: ['logtap-t'] })
    const gone = mkTap('SyslogNGFlow', { mode: 'mirror' }, { deletionTimestamp: 'x' })
    const m = { ...copy, metadata: { ...copy.metadata, uid: 'm1' } }
    t.same(types(desired(obs({ tap: gone, outputs: [ourOutput(tap)], flows: [src, m] }), cfg).plan.flat()), [
      'DeleteMirrorFlow',
    ])
  },
)

t.test('routes: a flow reaches only outputs of its own aggregator', async (t) => {
  const target = (kind: 'SyslogNGOutput' | 'SyslogNGClusterOutput' | 'Output' | 'ClusterOutput') => ({
    kind,
    namespace: 'ns',
    name: 'logtap-t',
  })
  const local = mkFlow('a', { localOutputRefs: ['logtap-t'] }, 'SyslogNGFlow')
  const global = mkFlow('b', { globalOutputRefs: ['logtap-t'] }, 'SyslogNGClusterFlow')
  t.ok(routesTo(local, target('SyslogNGOutput'), []))
  t.notOk(routesTo(local, target('Output'), []))
  t.ok(routesTo(global, target('SyslogNGClusterOutput'), undefined))
  t.notOk(routesTo(global, target('ClusterOutput'), undefined))
  t.notOk(
    routesTo(
      mkFlow('c', { globalOutputRefs: ['logtap-t'] }, 'ClusterFlow'),
      target('SyslogNGClusterOutput'),
      undefined,
    ),
  )
})

t.test('the sweep: a syslog-ng ref of ours to a missing syslog-ng output is dangling', async (t) => {
  const flows = [
    mkFlow('a', { localOutputRefs: ['logtap-gone', 'logtap-here'] }, 'SyslogNGFlow'),
    mkFlow('b', { globalOutputRefs: ['logtap-here'] }, 'SyslogNGClusterFlow'),
  ]
  // A fluentd ClusterOutput of that name does not count for a syslog-ng flow.
  const outputs: KObject[] = [
    { kind: 'SyslogNGOutput', metadata: { name: 'logtap-here', namespace: 'ns' } },
    { kind: 'ClusterOutput', metadata: { name: 'logtap-here', namespace: 'ns' } },
  ]
  const repairs = danglingRefRepairs(flows, outputs, [], () => true)
  t.same(
    repairs.map((r) =>
      r.type === 'RemoveDanglingRef' ? `${r.flow.kind} ${r.field} ${r.output.kind} ${r.output.name}` : r.type,
    ),
    [
      'SyslogNGFlow localOutputRefs SyslogNGOutput logtap-gone',
      'SyslogNGClusterFlow globalOutputRefs SyslogNGClusterOutput logtap-here',
    ],
  )
})

t.test('watches: syslog-ng events reach the taps they concern', async (t) => {
  const tap = (name: string, kind: string): KObject =>
    ({ metadata: { name, namespace: 'ns' }, spec: { flow: { kind, name: 'f' } } }) as LogTap
  const taps = [tap('s', 'SyslogNGFlow'), tap('c', 'SyslogNGClusterFlow')]
  const tapsIn = () => taps
  t.same(affectedTaps('Logging', { kind: 'Logging', metadata: { name: 'l' } }, tapsIn), ['ns/s', 'ns/c'])
  const clusterOutputs = () => [ourOutput(mkTap('SyslogNGClusterFlow', {}, { name: 'c', uid: 'u' }))]
  t.same(
    affectedTaps(
      'SyslogNGFlow',
      mkFlow('x', { globalOutputRefs: ['logtap-c'] }, 'SyslogNGFlow', 'shop'),
      tapsIn,
      clusterOutputs,
    ),
    ['ns/c'],
    "a SyslogNGFlow elsewhere naming a tap's SyslogNGClusterOutput",
  )
})
