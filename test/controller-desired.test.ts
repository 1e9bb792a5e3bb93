// desired() decides every step; these tables pin the ordering invariant and the conditions.
import t from 'tap'
import { KINDS } from '../api/kinds.ts'
import { FINALIZER_OUTPUT, FINALIZER_TAP, type FlowKind, type LogTap } from '../api/logtap.ts'
import type { KObject } from '../controller/kube/objects.ts'
import { desiredCredentialSecret } from '../controller/reconciler/desired/credential-secret.ts'
import { type DesiredConfig, desired, type Observed } from '../controller/reconciler/desired/desired.ts'
import { desiredOutput } from '../controller/reconciler/desired/output.ts'

const cfg: DesiredConfig = {
  ingestBaseUrl: 'http://relay:10000',
  ingestKey: new Uint8Array(32),
  leaseGraceMs: 3000,
  startGraceMs: 30_000,
  defaultLeaseDurationSeconds: 30,
  operatorWaitMs: 60_000,
}
const NOW = Date.parse('2026-01-01T00:10:00Z')

function mkTap(over: Partial<LogTap['spec']> = {}, meta: Partial<LogTap['metadata']> = {}): LogTap {
  return {
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
    spec: { flow: { kind: 'Flow', name: 'f' }, mode: 'inject', lifetime: 'persistent', replay: 10, ...over },
  }
}
function mkFlow(
  name: string,
  spec: Record<string, unknown>,
  kind: FlowKind = 'Flow',
  meta: Partial<KObject['metadata']> = {},
): KObject {
  return {
    apiVersion: KINDS[kind].apiVersion,
    kind,
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, resourceVersion: '1', ...meta },
    spec,
  }
}
function ourOutput(tap: LogTap, meta: Partial<KObject['metadata']> = {}): KObject {
  const o = desiredOutput(tap, undefined, cfg)
  return { ...o, metadata: { ...o.metadata, uid: 'out-uid', ...meta } }
}
// What logging-operator writes on an Output it took into a Logging's configuration.
const accepted = (o: KObject, status: Record<string, unknown> = { active: true }): KObject => ({
  ...o,
  status,
})
// The credential Secret as the API server holds it once applied next to ourOutput(tap).
function ourSecret(tap: LogTap, outputUid = 'out-uid'): KObject {
  const s = desiredCredentialSecret(
    tap,
    undefined,
    { kind: 'Output', name: 'logtap-t', uid: outputUid },
    cfg.ingestKey,
  )
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
const stages = (d: ReturnType<typeof desired>) => d.plan.map(types)
const cond = (d: ReturnType<typeof desired>, type: string) =>
  d.status?.conditions.find((c) => c.type === type)

t.test(
  'new inject tap: finalizer and the Secret, the Output that names it, then the ref — in that order',
  async (t) => {
    const tap = mkTap({}, { finalizers: [] })
    const d = desired(obs({ tap, flows: [mkFlow('f', { localOutputRefs: ['es'] })] }), cfg)
    t.same(types(d.plan.flat()), ['AddTapFinalizer', 'ApplySecret', 'ApplyOutput', 'Attach'])
    t.same(
      stages(d),
      [['AddTapFinalizer', 'ApplySecret'], ['ApplyOutput'], ['Attach']],
      'finalizer and Secret together; the Output next; the ref last',
    )
    t.match(cond(d, 'Attached'), { status: 'True' })
    t.match(cond(d, 'Ready'), { status: 'False', reason: 'WaitingForLoggingOperator' })
    t.equal(d.requeueAfterMs, 60_000, 'back when the wait for the operator runs out')
    t.equal(d.status?.outputName, 'logtap-t')
    t.equal(d.status?.streamPath, '/taps/ns/t')
  },
)

t.test('converged tap: no actions, status unchanged on re-evaluation', async (t) => {
  const tap = mkTap()
  const o = obs({
    tap,
    outputs: [accepted(ourOutput(tap))],
    secret: ourSecret(tap),
    flows: [mkFlow('f', { localOutputRefs: ['es', 'logtap-t'] })],
  })
  const d1 = desired(o, cfg)
  t.same(d1.plan.flat(), [])
  t.match(cond(d1, 'Ready'), { status: 'True', reason: 'Ready' })
  tap.status = d1.status
  const d2 = desired({ ...o, now: NOW + 60_000 }, cfg)
  t.same(d2.status, d1.status, 'lastTransitionTime kept')
})

t.test('deleting tap: ref removed, then Output released and deleted, then tap finalizer', async (t) => {
  const tap = mkTap({}, { deletionTimestamp: '2026-01-01T00:09:00Z' })
  const out = ourOutput(tap)
  const flows = [mkFlow('f', { localOutputRefs: ['es', 'logtap-t'] })]
  t.same(types(desired(obs({ tap, outputs: [out], flows }), cfg).plan.flat()), [
    'Detach',
    'ReleaseOutput',
    'DeleteOutput',
  ])
  const released = { ...out, metadata: { ...out.metadata, finalizers: [], deletionTimestamp: 'x' } }
  t.same(
    types(
      desired(
        obs({ tap, outputs: [released], flows: [mkFlow('f', { localOutputRefs: ['es'] })] }),
        cfg,
      ).plan.flat(),
    ),
    [],
    'waits for the Output to vanish',
  )
  t.same(types(desired(obs({ tap, flows: [mkFlow('f', { localOutputRefs: ['es'] })] }), cfg).plan.flat()), [
    'RemoveTapFinalizer',
  ])
})

t.test('mirror: flow copy created after the Output; deleted before the Output is released', async (t) => {
  const tap = mkTap({ mode: 'mirror' })
  const src = mkFlow('f', { match: [{ select: { labels: { a: 'b' } } }], localOutputRefs: ['es'] })
  const d = desired(obs({ tap, flows: [src] }), cfg)
  t.same(types(d.plan.flat()), ['ApplySecret', 'ApplyOutput', 'ApplyMirrorFlow'])
  t.equal(d.status?.mirrorFlowName, 'logtap-t')
  const mirror = (d.plan.flat()[2] as { object: KObject }).object
  t.same(mirror.spec, { match: [{ select: { labels: { a: 'b' } } }], localOutputRefs: ['logtap-t'] })
  t.same(src.spec?.['localOutputRefs'], ['es'], "the user's flow is not touched")

  const gone = mkTap({ mode: 'mirror' }, { deletionTimestamp: 'x' })
  const m = { ...mirror, metadata: { ...mirror.metadata, uid: 'm1' } }
  t.same(
    types(desired(obs({ tap: gone, outputs: [ourOutput(tap)], flows: [src, m] }), cfg).plan.flat()),
    ['DeleteMirrorFlow'],
    'Output kept while the mirror exists',
  )
  const mDeleting = { ...m, metadata: { ...m.metadata, deletionTimestamp: 'x' } }
  t.same(
    types(desired(obs({ tap: gone, outputs: [ourOutput(tap)], flows: [src, mDeleting] }), cfg).plan.flat()),
    [],
    'still waiting while it is being deleted',
  )
  t.same(types(desired(obs({ tap: gone, outputs: [ourOutput(tap)], flows: [src] }), cfg).plan.flat()), [
    'ReleaseOutput',
    'DeleteOutput',
  ])
})

t.test('tap object gone (finalizer force-removed): orphans torn down in the safe order', async (t) => {
  const tap = mkTap()
  const d = desired(
    obs({
      outputs: [ourOutput(tap, { deletionTimestamp: 'x' })],
      flows: [mkFlow('f', { localOutputRefs: ['logtap-t', 'es'] })],
    }),
    cfg,
  )
  t.same(types(d.plan.flat()), ['Detach', 'ReleaseOutput'])
  t.equal(d.status, undefined)
})

t.test('flow not found: nothing created, clear condition with a kind hint', async (t) => {
  const tap = mkTap()
  const d = desired(obs({ tap, flows: [mkFlow('f', {}, 'ClusterFlow')] }), cfg)
  t.same(types(d.plan.flat()), [])
  t.match(cond(d, 'FlowFound'), {
    status: 'False',
    reason: 'FlowNotFound',
    message: /ClusterFlow of that name exists/,
  })
  t.match(cond(d, 'Ready'), { status: 'False', reason: 'FlowNotFound' })
})

t.test('name collision with an object that is not ours: never adopted', async (t) => {
  const tap = mkTap()
  const foreign: KObject = {
    kind: 'Output',
    metadata: { name: 'logtap-t', namespace: 'ns', uid: 'x' },
    spec: {},
  }
  const d = desired(obs({ tap, outputs: [foreign], flows: [mkFlow('f', {})] }), cfg)
  t.same(types(d.plan.flat()), [])
  t.match(cond(d, 'OutputReady'), { status: 'False', reason: 'NameConflict' })
  t.match(cond(d, 'Attached'), { status: 'False' })
})

t.test('ClusterFlow tap outside every control namespace', async (t) => {
  const tap = mkTap({ flow: { kind: 'ClusterFlow', name: 'f' } })
  const logging: KObject = { kind: 'Logging', metadata: { name: 'l' }, spec: { controlNamespace: 'logging' } }
  const d = desired(obs({ tap, flows: [mkFlow('f', {}, 'ClusterFlow')], loggings: [logging] }), cfg)
  t.same(types(d.plan.flat()), [])
  t.match(cond(d, 'FlowFound'), { status: 'False', reason: 'WrongNamespace', message: /logging/ })
  const ok = desired(
    obs({
      tap,
      flows: [mkFlow('f', {}, 'ClusterFlow')],
      loggings: [{ ...logging, spec: { controlNamespace: 'ns' } }],
    }),
    cfg,
  )
  t.same(types(ok.plan.flat()), ['ApplySecret', 'ApplyOutput', 'Attach'])
  t.equal((ok.plan.flat()[1] as { object: KObject }).object.kind, 'ClusterOutput')
  t.match(ok.plan.flat()[2], { field: 'globalOutputRefs' })
})

t.test(
  'Output deleted by someone while the tap lives: detach first, release, then recreate later',
  async (t) => {
    const tap = mkTap()
    const out = ourOutput(tap, { deletionTimestamp: 'x' })
    const d = desired(
      obs({ tap, outputs: [out], flows: [mkFlow('f', { localOutputRefs: ['logtap-t'] })] }),
      cfg,
    )
    t.same(types(d.plan.flat()), ['Detach', 'ReleaseOutput'])
    t.match(cond(d, 'OutputReady'), { reason: 'OutputDeleting' })
  },
)

t.test('previous incarnation of the same tap name is torn down before the new Output', async (t) => {
  const tap = mkTap()
  const old = ourOutput(mkTap({}, { uid: 'old' }))
  const d = desired(
    obs({ tap, outputs: [old], flows: [mkFlow('f', { localOutputRefs: ['logtap-t'] })] }),
    cfg,
  )
  t.same(types(d.plan.flat()), ['Detach', 'ReleaseOutput', 'DeleteOutput'])
  t.match(cond(d, 'OutputReady'), { reason: 'PreviousOutputTerminating' })
})

t.test('spec drift of our Output is re-applied; a ref removed by hand is restored', async (t) => {
  const tap = mkTap()
  const drifted = ourOutput(tap)
  drifted.spec = { http: { endpoint: 'http://elsewhere' } }
  const d = desired(
    obs({
      tap,
      outputs: [drifted],
      secret: ourSecret(tap),
      flows: [mkFlow('f', { localOutputRefs: ['es'] })],
    }),
    cfg,
  )
  t.same(types(d.plan.flat()), ['ApplyOutput', 'Attach'], 'the Secret is as wanted: left alone')
  t.equal(
    (d.plan.flat()[0] as { existingUid?: string }).existingUid,
    'out-uid',
    'update pinned to the existing uid',
  )
})

t.test('session tap: expired Lease deletes the tap; a live one schedules the next check', async (t) => {
  const tap = mkTap({ lifetime: 'session' })
  const lease = { renewTime: '2026-01-01T00:09:50.000000Z', leaseDurationSeconds: 15, ownerUids: ['u1'] }
  const live = desired(
    obs({
      tap,
      lease,
      outputs: [ourOutput(tap)],
      secret: ourSecret(tap),
      flows: [mkFlow('f', { localOutputRefs: ['logtap-t'] })],
    }),
    cfg,
  )
  t.same(live.plan.flat(), [])
  t.equal(live.requeueAfterMs, 8000)
  const dead = desired(obs({ tap, lease, now: NOW + 9000 }), cfg)
  t.same(types(dead.plan.flat()), ['DeleteTap'])
})

t.test('mirror of a flow with a custom flowLabel is refused', async (t) => {
  const tap = mkTap({ mode: 'mirror' })
  const d = desired(obs({ tap, flows: [mkFlow('f', { flowLabel: '@x' })] }), cfg)
  t.same(types(d.plan.flat()), ['ApplySecret', 'ApplyOutput'])
  t.match(cond(d, 'Attached'), { status: 'False', reason: 'MirrorUnsupported' })
})

t.test('output finalizer is part of the created Output', async (t) => {
  const d = desired(obs({ tap: mkTap(), flows: [mkFlow('f', {})] }), cfg)
  const apply = d.plan.flat().find((a) => a.type === 'ApplyOutput') as { object: KObject }
  t.same(apply.object.metadata.finalizers, [FINALIZER_OUTPUT])
})

t.test(
  'credential Secret: never over a foreign one; a previous tap’s goes first; owners kept current',
  async (t) => {
    const tap = mkTap()
    const flows = [mkFlow('f', { localOutputRefs: ['es'] })]
    const foreign: KObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'logtap-t', namespace: 'ns', uid: 's' },
    }
    const conflict = desired(obs({ tap, flows, secret: foreign }), cfg)
    t.same(types(conflict.plan.flat()), [], 'nothing created next to a Secret that is not ours')
    t.match(cond(conflict, 'OutputReady'), {
      status: 'False',
      reason: 'NameConflict',
      message: /Secret logtap-t/,
    })

    const previous = ourSecret(mkTap({}, { uid: 'old' }))
    const d = desired(obs({ tap, flows, secret: previous }), cfg)
    t.same(stages(d), [['DeleteSecret'], ['ApplySecret'], ['ApplyOutput'], ['Attach']])
    t.match(d.plan[0]?.[0], { type: 'DeleteSecret', uid: 'secret-uid' }, 'exactly that incarnation')
    t.equal((d.plan[1]![0] as { existingUid?: string }).existingUid, undefined, 'then a new one is created')
    t.same(
      (d.plan[1]![0] as { object: KObject }).object.metadata.ownerReferences?.map((r) => r.kind),
      ['LogTap'],
      'owned by the tap until the Output has a uid',
    )

    // Our Output was recreated (new uid): the Secret's owner reference follows it.
    const recreated = ourOutput(tap, { uid: 'out-uid-2' })
    const follow = desired(
      obs({
        tap,
        outputs: [recreated],
        secret: ourSecret(tap),
        flows: [mkFlow('f', { localOutputRefs: ['logtap-t'] })],
      }),
      cfg,
    )
    t.same(types(follow.plan.flat()), ['ApplySecret'])
    t.equal(
      (follow.plan[0]![0] as { existingUid?: string }).existingUid,
      'secret-uid',
      'pinned to the live one',
    )
    const secret = (follow.plan[0]![0] as { object: KObject }).object
    t.same(
      secret.metadata.ownerReferences?.map((r) => [r.kind, r.name, r.uid, r.controller ?? false]),
      [
        ['LogTap', 't', 'u1', true],
        ['Output', 'logtap-t', 'out-uid-2', false],
      ],
      'owned by the tap and by the Output: it lives while either does',
    )
  },
)

t.test('objects whose owner references were stripped (--cascade=orphan) are still ours', async (t) => {
  const tap = mkTap({ mode: 'mirror' }, { deletionTimestamp: '2026-01-01T00:09:00Z' })
  const strip = (o: KObject): KObject => ({ ...o, metadata: { ...o.metadata, ownerReferences: [] } })
  const src = mkFlow('f', { localOutputRefs: ['es'] })
  const made = desired(obs({ tap: mkTap({ mode: 'mirror' }), flows: [src] }), cfg)
  const mirror = (made.plan.flat().find((a) => a.type === 'ApplyMirrorFlow') as { object: KObject }).object
  const d = desired(
    obs({
      tap,
      outputs: [strip(ourOutput(tap))],
      flows: [src, strip({ ...mirror, metadata: { ...mirror.metadata, uid: 'm1' } })],
    }),
    cfg,
  )
  t.same(
    types(d.plan.flat()),
    ['DeleteMirrorFlow'],
    'the mirror goes first, then the Output: not the finalizer',
  )
  // Another tap of the same name must not take the orphans for its own.
  const again = desired(
    obs({ tap: mkTap({}, { uid: 'u2' }), outputs: [strip(ourOutput(tap))], flows: [src] }),
    cfg,
  )
  t.match(cond(again, 'OutputReady'), { reason: 'PreviousOutputTerminating' })
})

t.test('a ClusterOutput is detached from Flows in other namespaces that its Logging renders', async (t) => {
  const tap = mkTap({ flow: { kind: 'ClusterFlow', name: 'all' } }, { deletionTimestamp: 'x' })
  const out = { ...ourOutput(tap), kind: 'ClusterOutput' }
  const clusterFlow = mkFlow('all', { globalOutputRefs: ['logtap-t'] }, 'ClusterFlow')
  const tenant = mkFlow('app', { loggingRef: 'a', globalOutputRefs: ['es', 'logtap-t'] }, 'Flow', {
    namespace: 'shop',
  })
  // Same name, but its Logging's ClusterOutputs live in another control namespace.
  const stranger = mkFlow('app', { loggingRef: 'b', globalOutputRefs: ['logtap-t'] }, 'Flow', {
    namespace: 'lab',
  })
  const loggings: KObject[] = [
    {
      kind: 'Logging',
      metadata: { name: 'a' },
      spec: { loggingRef: 'a', controlNamespace: 'ns', watchNamespaces: ['shop'] },
    },
    { kind: 'Logging', metadata: { name: 'b' }, spec: { loggingRef: 'b', controlNamespace: 'lab-logging' } },
  ]
  const d = desired(
    obs({ tap, outputs: [out], flows: [clusterFlow], elsewhere: [tenant, stranger], loggings }),
    cfg,
  )
  t.same(
    d.plan
      .flat()
      .map((a) => (a.type === 'Detach' ? `Detach ${a.flow.namespace}/${a.flow.name} ${a.fields}` : a.type)),
    ['Detach ns/all globalOutputRefs', 'Detach shop/app globalOutputRefs', 'ReleaseOutput', 'DeleteOutput'],
  )
  const unknown = desired(
    obs({ tap, outputs: [out], flows: [clusterFlow], elsewhere: [tenant, stranger] }),
    cfg,
  )
  t.equal(
    unknown.plan.flat().filter((a) => a.type === 'Detach').length,
    3,
    'Loggings not known: every flow naming it is detached first',
  )
})

t.test('mirror: stdout and prometheus filters are left out of the copy, and the tap says so', async (t) => {
  const tap = mkTap({ mode: 'mirror' })
  const filters = [
    { stdout: {} },
    { dedot: {} },
    { prometheus: { metrics: [] } },
    { throttle: { group_key: 'a' } },
  ]
  const src = mkFlow('f', { match: [], filters, localOutputRefs: ['es'] })
  const d = desired(obs({ tap, outputs: [ourOutput(tap)], secret: ourSecret(tap), flows: [src] }), cfg)
  const apply = d.plan.flat().find((a) => a.type === 'ApplyMirrorFlow')
  t.same((apply as { object: KObject }).object.spec?.['filters'], [
    { dedot: {} },
    { throttle: { group_key: 'a' } },
  ])
  t.same((apply as { omittedFilters: string[] }).omittedFilters, ['stdout', 'prometheus'])
  t.match(cond(d, 'Attached'), { status: 'True', message: /stdout and prometheus filters are left out/ })
})

t.test("Ready waits for logging-operator's acceptance, and says why not", async (t) => {
  const tap = mkTap()
  const attachedFlow = (status?: Record<string, unknown>, loggingRef?: string) => ({
    ...mkFlow('f', { localOutputRefs: ['es', 'logtap-t'], ...(loggingRef ? { loggingRef } : {}) }),
    ...(status ? { status } : {}),
  })
  const world = (o: Partial<Observed>) =>
    desired(
      obs({ tap, outputs: [ourOutput(tap)], secret: ourSecret(tap), flows: [attachedFlow()], ...o }),
      cfg,
    )
  const logging = (spec: Record<string, unknown>): KObject => ({
    kind: 'Logging',
    metadata: { name: 'l' },
    spec,
  })

  t.match(cond(world({ loggings: [] }), 'Ready'), { status: 'False', reason: 'NoLogging' })
  t.match(cond(world({ loggings: [logging({ loggingRef: 'other', controlNamespace: 'x' })] }), 'Ready'), {
    reason: 'NoMatchingLogging',
    message: /No Logging has the empty loggingRef/,
  })
  t.match(
    cond(
      world({ loggings: [logging({ controlNamespace: 'x', watchNamespaces: ['elsewhere'] })] }),
      'Accepted',
    ),
    { reason: 'NamespaceNotWatched', message: /watches namespace ns/ },
  )
  const covered = [logging({ controlNamespace: 'x' })]

  // The operator's own words, as it wrote them.
  const problem = world({
    loggings: covered,
    outputs: [
      accepted(ourOutput(tap), { active: false, problems: ['failed to get kubernetes secret ns:logtap-t'] }),
    ],
  })
  t.match(cond(problem, 'Ready'), {
    status: 'False',
    reason: 'OperatorProblems',
    message: 'logging-operator reports on Output logtap-t: failed to get kubernetes secret ns:logtap-t',
  })
  const flowProblems = {
    problems: ['dangling local output reference: es', 'local output reference: logtap-t has problems'],
  }
  t.match(cond(world({ loggings: covered, flows: [attachedFlow(flowProblems)] }), 'Accepted'), {
    reason: 'OperatorProblems',
    message: 'logging-operator reports on Flow f: local output reference: logtap-t has problems',
  })
  const ok = world({
    loggings: covered,
    outputs: [accepted(ourOutput(tap))],
    flows: [attachedFlow({ problems: ['dangling local output reference: es'] })],
  })
  t.match(
    cond(ok, 'Accepted'),
    { status: 'True', reason: 'Accepted' },
    "another output's problem is not the tap's",
  )
  t.match(cond(ok, 'Ready'), { status: 'True' })

  // Silence: Unknown while waiting, then told it does not respond (counted from the wait's start).
  const at = (status: LogTap['status'], now: number, loggings = covered) =>
    desired(
      obs({
        tap: { ...tap, status },
        outputs: [ourOutput(tap)],
        secret: ourSecret(tap),
        flows: [attachedFlow()],
        loggings,
        now,
      }),
      cfg,
    )
  const waiting = world({ loggings: covered })
  t.match(cond(waiting, 'Accepted'), { status: 'Unknown', reason: 'WaitingForLoggingOperator' })
  t.match(cond(waiting, 'Ready'), { status: 'False', reason: 'WaitingForLoggingOperator' })
  const later = at(waiting.status, NOW + 59_000)
  t.equal(later.requeueAfterMs, 1000)
  t.match(cond(later, 'Accepted'), { status: 'Unknown', lastTransitionTime: new Date(NOW).toISOString() })
  const silent = at(later.status, NOW + 61_000)
  t.match(cond(silent, 'Ready'), {
    status: 'False',
    reason: 'LoggingOperatorNotResponding',
    message: /has not accepted Output logtap-t in 60s .*is logging-operator running for Logging l\?/,
  })
  t.equal(silent.requeueAfterMs, undefined)
  t.match(
    cond(at(silent.status, NOW + 62_000), 'Accepted'),
    { reason: 'LoggingOperatorNotResponding' },
    'told once, it stands: no flapping back to waiting',
  )
  // A Logging that appears long after the attachment: the whole wait, from then on.
  const attachedLongAgo = world({ loggings: [] })
  t.match(cond(attachedLongAgo, 'Accepted'), { reason: 'NoLogging' })
  const appears = at(attachedLongAgo.status, NOW + 3_600_000)
  t.match(cond(appears, 'Accepted'), { status: 'Unknown', reason: 'WaitingForLoggingOperator' })
  t.equal(appears.requeueAfterMs, 60_000)
  t.match(cond(at(appears.status, NOW + 3_659_000), 'Accepted'), { reason: 'WaitingForLoggingOperator' })
  t.match(cond(at(appears.status, NOW + 3_661_000), 'Accepted'), { reason: 'LoggingOperatorNotResponding' })
  // …and after being told, a change of Loggings starts a new wait.
  const gone = at(silent.status, NOW + 70_000, [])
  t.match(cond(at(gone.status, NOW + 80_000), 'Accepted'), {
    status: 'Unknown',
    reason: 'WaitingForLoggingOperator',
  })
})

t.test('mirror: every problem of the copy is the tap’s', async (t) => {
  const tap = mkTap({ mode: 'mirror' })
  const src = mkFlow('f', { match: [], localOutputRefs: ['es'] })
  const first = desired(obs({ tap, outputs: [ourOutput(tap)], secret: ourSecret(tap), flows: [src] }), cfg)
  const copy = (first.plan.flat().find((a) => a.type === 'ApplyMirrorFlow') as { object: KObject }).object
  const d = desired(
    obs({
      tap,
      outputs: [accepted(ourOutput(tap))],
      secret: ourSecret(tap),
      flows: [
        src,
        {
          ...copy,
          metadata: { ...copy.metadata, uid: 'm' },
          status: { problems: ['raw filter is disabled'] },
        },
      ],
    }),
    cfg,
  )
  t.match(cond(d, 'Accepted'), {
    reason: 'OperatorProblems',
    message: /on Flow logtap-t: raw filter is disabled/,
  })
})

t.test('spec.selection: SelectionValid, Ready only when it parses, and its text in status', async (t) => {
  const flows = [mkFlow('f', { localOutputRefs: ['es'] })]
  const good = mkTap({
    selection: { where: 'level in [error, warn]', sample: { percent: 5, by: 'trace_id' } },
  })
  const d = desired(obs({ tap: good, flows }), cfg)
  t.match(cond(d, 'SelectionValid'), { status: 'True', reason: 'Valid' })
  const plain = desired(obs({ tap: mkTap(), flows }), cfg)
  t.same(cond(d, 'Ready'), cond(plain, 'Ready'), 'a valid selection does not change readiness')
  t.equal(d.status?.selection, 'where level in ["error", "warn"]; sample 5% by trace_id')

  // The CRD schema cannot check the expression language: the controller does, with the relay's parser.
  const bad = mkTap({ selection: { where: 'level == error ||  level == warn' } })
  const b = desired(obs({ tap: bad, flows }), cfg)
  t.match(cond(b, 'SelectionValid'), {
    status: 'False',
    reason: 'InvalidSelection',
    message:
      /^spec\.selection\.where: there is no \|\|: use "in \[a, b\]" or a regex alternation at column 16/,
  })
  t.match(cond(b, 'Ready'), { status: 'False', reason: 'InvalidSelection' })
  t.equal(b.status?.selection, undefined)

  t.equal(cond(plain, 'SelectionValid'), undefined, 'no condition without a selection')
})
