// log-socket in the real pipeline, as a user sees it: the controller+relay program, the real
// logging-operator accepting and rendering what the controller makes, real fluentd following what it
// renders (reloading as the config-reloader does), and k8stail printing what fluentd delivered. Each
// kind of tap comes and goes with the operator never reporting a missing output and the Logging
// still rendering; fluentd left running a deleted tap's store drops its chunks without a file or a
// retry. One Logging, one relay and one fluentd serve the file's tests.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { CustomObjectsApi, type KubeConfig, RbacAuthorizationV1Api, Watch } from '@kubernetes/client-node'
import t from 'tap'
import { GROUP, type LogTap, PLURAL, VERSION } from '../api/logtap.ts'
import type { TestCluster } from '../local-cluster/cluster.ts'
import { fluentBitTag, startFluentd } from '../local-cluster/real-pipeline/fluentd.ts'
import { flowSection, outputBlock, outputIds } from '../local-cluster/real-pipeline/fluentd-config.ts'
import { followFlows } from '../local-cluster/real-pipeline/live-fluentd.ts'
import {
  accepted,
  createLogging,
  getLoggingObject,
  type Logging,
  renderedConfig,
  waitForRendered,
  waitForStatus,
} from '../local-cluster/real-pipeline/logging.ts'
import { containerdRecord, samplePods } from '../local-cluster/sample-records.ts'
import { startLogSocket, writeTokenKubeconfig } from '../local-cluster/stack.ts'
import { InvariantWatcher, runController } from './controller-helpers.ts'
import { startReceiver } from './support/http-receiver.ts'
import { realPipeline } from './support/real-pipeline.ts'

const L = 'logging.banzaicloud.io'
const repoRoot = path.resolve(import.meta.dirname, '..')

const rp = await realPipeline(['operator', 'fluentd'])
if (rp) {
  const c = rp.cluster
  const kc = c.kc
  const custom = kc.makeApiClient(CustomObjectsApi)
  // ns: the Flows, the Logging's control namespace (ClusterFlows), the LogTaps and the relay.
  // tenant: another team's namespace of the same Logging.
  const ns = await c.newNamespace('rp-taps')
  const tenant = await c.newNamespace('rp-tenant')
  const logging = await createLogging(kc, {
    aggregator: 'fluentd',
    controlNamespace: ns,
    watchNamespaces: [ns, tenant],
  })
  t.teardown(() => logging.delete())
  const ls = await startLogSocket(c, { namespace: ns })
  t.teardown(() => ls.stop())
  const dir = mkdtempSync(path.join(tmpdir(), 'rp-taps-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  // The users' own outputs post to a receiver on loopback; the taps' go to the relay.
  const sink = await startReceiver()
  t.teardown(() => sink.close())
  const endpoint = (url: string) =>
    url.startsWith('http://receiver.test.svc') ? `${sink.url}${new URL(url).pathname}` : ls.resolve(url)
  const userOutput = (name: string) => ({
    http: {
      endpoint: `http://receiver.test.svc:8080/${name}`,
      format: { type: 'json' },
      buffer: { type: 'memory', tags: '[]', flush_mode: 'interval', flush_interval: '1s' },
    },
  })
  await logging.create('Output', ns, 'es', userOutput('es'))
  await logging.create('Flow', ns, 'app', {
    match: [{ select: { labels: { 'app.kubernetes.io/name': 'checkout' } } }],
    // stdout acts outside the record: a mirror leaves it out; record_transformer is copied.
    filters: [{ stdout: {} }, { record_transformer: { records: [{ tapped_by: 'app' }] } }],
    localOutputRefs: ['es'],
  })
  await logging.create('ClusterOutput', ns, 'ces', userOutput('ces'))
  await logging.create('ClusterFlow', ns, 'all', { globalOutputRefs: ['ces'] })
  await logging.create('Output', tenant, 'es', userOutput('tenant-es'))
  await logging.create('Flow', tenant, 'tenant', { localOutputRefs: ['es'] })
  for (const [kind, where, name] of [
    ['Flow', ns, 'app'],
    ['ClusterFlow', ns, 'all'],
    ['Flow', tenant, 'tenant'],
  ] as const)
    await waitForStatus(kc, kind, where, name, accepted, 'active and no problems')

  // What the operator says about every flow of the Logging, at every revision it writes.
  const problems = await watchProblems(kc, [ns, tenant])
  t.teardown(() => problems.stop())
  const inv = new InvariantWatcher(kc, ns, { tenants: [tenant] })
  await inv.start()
  t.teardown(async () => {
    await inv.stop()
  })

  // fluentd as in the Logging's pod: the user flows, and a mirror's copy once rendered.
  const live = await followFlows({
    kc,
    logging,
    flows: [`flow:${ns}:app`, `clusterflow:${ns}:all`, `flow:${ns}:logtap-m`],
    require: [`flow:${ns}:app`, `clusterflow:${ns}:all`],
    endpoint,
    allowHosts: [c.testHost.ip],
    pollMs: 500,
  })
  t.teardown(() => live.stop())

  // The user: a ServiceAccount that may tap in ns; checkout's records allow everyone (rbac/policy).
  const viewer = await viewerKubeconfig(c, ns, dir)
  const checkout = samplePods(ns).find((p) => p.labels['rbac/policy'] === 'allow')!
  let n = 0
  const batch = (label: string) => [0, 1, 2].map(() => containerdRecord(checkout, `${label} record ${n++}`))

  // Feeds fluentd until k8stail printed `count` records of `label`; returns what it printed.
  async function streamed(run: Run, label: string, count: number) {
    const sent = new Set<string>()
    const deadline = Date.now() + 90_000
    const printed = () => lines(run.out()).filter((l) => l.includes(`"${label} record `))
    while (printed().length < count) {
      if (Date.now() > deadline || run.exited())
        throw new Error(`k8stail printed ${printed().length} ${label} records\nstderr:\n${run.err()}`)
      const records = batch(label)
      for (const r of records) sent.add(JSON.stringify(r))
      await live.emit(records)
      await sleep(1000)
    }
    return { printed: printed(), sent }
  }

  // Waits until fluentd reloaded (after reload number `since`) into a configuration with (or
  // without) output `id`, as its config-reloader would once the operator rendered it.
  async function fluentdRuns(id: string, present: boolean, since: number) {
    const deadline = Date.now() + 60_000
    while (live.reloads <= since || live.fluentd.config.includes(`@id ${id}`) !== present) {
      if (Date.now() > deadline)
        throw new Error(`fluentd never reloaded into a configuration ${present ? 'with' : 'without'} ${id}`)
      await sleep(200)
    }
  }

  const tapObject = async (name: string) => {
    try {
      return (await custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: PLURAL,
        name,
      })) as LogTap
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined
      throw err
    }
  }
  const condition = async (tap: string, type: string) =>
    (await tapObject(tap))?.status?.conditions?.find((x) => x.type === type)
  const createTap = (name: string, spec: Record<string, unknown>) =>
    custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: PLURAL,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'LogTap', metadata: { name }, spec },
    })
  const deleteTap = (name: string) =>
    custom.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: PLURAL,
      name,
    })

  // Gone, and the Logging renders on: its configuration no longer has any of `ids`.
  async function goneAndRendered(
    tt: Tap,
    tap: string,
    kind: 'Output' | 'ClusterOutput',
    ids: string[],
    since: number, // fluentd's reloads before the deletion
  ) {
    await until(`LogTap ${tap} and its ${kind} gone`, 60_000, async () => {
      const [lt, out] = await Promise.all([tapObject(tap), getLoggingObject(kc, kind, ns, `logtap-${tap}`)])
      return !lt && !out
    })
    const conf = await rendered(
      (s) => ids.every((id) => !s.includes(id)),
      `a configuration without ${ids.join(', ')}`,
    )
    tt.same(
      outputIds(conf).filter((id) => id.includes(':logtap-')),
      [],
      'the Logging renders on: its configuration has no tap output left',
    )
    await fluentdRuns(ids[0]!, false, since)
    tt.same(problems.seen(), [], 'logging-operator never reported a missing output')
  }

  const storeOf = (conf: string, id: string) => outputBlock(conf, id)
  // What the operator logged about this file's namespaces, for a rendering that never came.
  const operatorSays = () =>
    readFileSync(rp.operator!.logFile, 'utf8')
      .split('\n')
      .filter((l) => /error|fail/i.test(l) && (l.includes(ns) || l.includes(logging.name)))
      .slice(-20)
      .join('\n')
  const rendered = (pred: (s: string) => boolean, what: string, ms = 60_000) =>
    waitForRendered(kc, logging, pred, what, ms).catch((err: Error) => {
      throw new Error(`${err.message.split(';')[0]}\nthe operator logged:\n${operatorSays()}`)
    })

  let staleStore: string | undefined // the inject tap's store, as fluentd ran it

  t.test(
    'inject: k8stail waits for the operator to accept the tap, then prints what fluentd delivered',
    async (t) => {
      const before = live.reloads
      const run = k8stail(viewer, ns, ['-o', 'raw', `${ns}/app`])
      t.teardown(() => run.kill('SIGKILL'))
      await until('k8stail streaming', 90_000, () => run.err().includes('; streaming'), run)
      const [session] = (
        (
          await custom.listNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            namespace: ns,
            plural: PLURAL,
          })
        ).items as LogTap[]
      ).map((x) => x.metadata.name!)
      t.ok(session?.startsWith('k8stail-app-'), `k8stail made session tap ${session}`)
      const out = await getLoggingObject(kc, 'Output', ns, `logtap-${session}`)
      t.match(out?.status, { active: true }, 'logging-operator accepted the Output')
      t.notOk(out?.status?.problems?.length, '… with no problems')
      t.match(await condition(session!, 'Accepted'), { status: 'True', reason: 'Accepted' })
      t.match(await condition(session!, 'Ready'), { status: 'True' })
      t.notMatch(run.err(), /logging-operator has not accepted|reports on/, 'no operator trouble was shown')

      const id = `flow:${ns}:app:output:${ns}:logtap-${session}`
      const conf = await rendered((s) => s.includes(id), `@id ${id}`)
      const section = flowSection(conf, `flow:${ns}:app`)
      t.same(
        section?.stores.map((s) => s.params.get('@id')),
        [`flow:${ns}:app:output:${ns}:es`, id],
        "the tap's store comes last in the flow's copy",
      )
      const store = storeOf(conf, id)!
      t.equal(store.children.find((d) => d.name === 'buffer')?.params.get('disable_chunk_backup'), 'true')
      t.equal(store.params.get('error_response_as_unrecoverable'), 'false')
      staleStore = store.text
      await fluentdRuns(id, true, before)

      const { printed, sent } = await streamed(run, 'inject', 6)
      t.same(
        printed.filter((l) => !sent.has(JSON.stringify({ ...JSON.parse(l), tapped_by: undefined }))),
        [],
        'every printed record is one fluent-bit sent',
      )
      t.ok(
        printed.every((l) => JSON.parse(l).tapped_by === 'app'),
        "the Flow's filters ran first: each record has what record_transformer added",
      )
      t.ok(
        sink.requests.some((r) => r.path === '/es' && r.body.toString().includes('"inject record ')),
        "the Flow's own output got them too",
      )

      const reloads = live.reloads
      run.child.kill('SIGINT')
      t.equal(await run.exit, 0, 'Ctrl-C exits 0')
      await goneAndRendered(t, session!, 'Output', [id], reloads)
      t.same(
        (await getLoggingObject(kc, 'Flow', ns, 'app'))?.spec?.['localOutputRefs'],
        ['es'],
        'the Flow is back to its own outputs',
      )
    },
  )

  t.test(
    "fluentd still running a deleted tap's store drops each chunk once: no file, no retry",
    async (t) => {
      if (!staleStore) {
        t.fail('the inject test did not get as far as the rendered store')
        return
      }
      // The relay no longer knows the tap (404): what fluentd does until its config-reloader reloads.
      const fd = await startFluentd({
        outputs: [staleStore],
        endpoint: ls.resolve,
        allowHosts: [c.testHost.ip],
      })
      t.teardown(() => fd.stop())
      // Three batches a little over a flush interval apart: one to three chunks.
      for (let i = 0; i < 3; i++) {
        const records = batch('stale')
        await fd.emit(fluentBitTag(records[0] as { kubernetes: Record<string, unknown> }), records)
        await sleep(1200)
      }
      const refused = () => fd.log().match(/got error response from 'Post [^']+' : \d{3}[^\n]*/g) ?? []
      await until('fluentd to post', 30_000, () => refused().length >= 1).catch((err) => {
        throw new Error(`${(err as Error).message}\nfluentd's log:\n${fd.log().slice(-3000)}`)
      })
      await sleep(2000) // the last chunk's flush
      const posted = refused().length
      t.ok(posted >= 1 && posted <= 3, `${posted} requests for 3 batches: one per chunk`)
      t.match(refused()[0], /: 404 Not Found .*unknown-tap/, 'the relay answers 404: no such tap')
      await sleep(6000) // well past the retry waits (1 s, 2 s, …), were there any
      t.equal(refused().length, posted, 'no request after that: the refused chunks are not retried')
      t.notMatch(fd.log(), /retry_times|failed to flush the buffer/, 'fluentd never retries them')
      t.same(fd.files(), [], 'no file under the buffer root (no backup of the refused chunks)')
    },
  )

  t.test(
    'mirror: the copy is accepted, rendered without stdout, and delivers; deleting it leaves the Flow alone',
    async (t) => {
      const flowBefore = await getLoggingObject(kc, 'Flow', ns, 'app')
      const before = live.reloads
      await createTap('m', { flow: { kind: 'Flow', name: 'app' }, mode: 'mirror', lifetime: 'persistent' })
      const ready = await until('tap m Ready', 60_000, async () => {
        const r = await condition('m', 'Ready')
        return r?.status === 'True' ? r : undefined
      })
      t.ok(ready)
      t.match(await condition('m', 'Attached'), { message: /stdout filters are left out of the copy/ })
      t.match((await getLoggingObject(kc, 'Flow', ns, 'logtap-m'))?.status, { active: true })
      t.notOk((await getLoggingObject(kc, 'Flow', ns, 'logtap-m'))?.status?.problems?.length)
      const id = `flow:${ns}:logtap-m:output:${ns}:logtap-m`
      const conf = await rendered((s) => s.includes(id), `@id ${id}`)
      const copy = flowSection(conf, `flow:${ns}:logtap-m`)
      t.same(
        copy?.filters.map((f) => f.params.get('@type')),
        ['record_transformer'],
        'the rendered copy runs record_transformer, not stdout',
      )
      t.same(
        flowSection(conf, `flow:${ns}:app`)?.filters.map((f) => f.params.get('@type')),
        ['stdout', 'record_transformer'],
        "the Flow's own filters are untouched",
      )
      await fluentdRuns(id, true, before)

      const run = k8stail(viewer, ns, ['-o', 'raw', '--count', '4', `${ns}/app`])
      t.teardown(() => run.kill('SIGKILL'))
      const { printed } = await streamed(run, 'mirror', 4)
      t.equal(await run.exit, 0, '--count reached')
      t.match(run.err(), new RegExp(`attaching to persistent LogTap ${ns}/m`))
      t.ok(
        printed.every((l) => JSON.parse(l).tapped_by === 'app'),
        'the copied filter ran on the tap',
      )

      const reloads = live.reloads
      await deleteTap('m')
      await goneAndRendered(t, 'm', 'Output', [id], reloads)
      const flowAfter = await getLoggingObject(kc, 'Flow', ns, 'app')
      t.same(flowAfter?.spec, flowBefore?.spec, 'the Flow was never changed')
      t.equal(await getLoggingObject(kc, 'Flow', ns, 'logtap-m'), undefined, 'the copy is gone')
    },
  )

  t.test(
    "ClusterFlow tap named by another namespace's Flow: detached there first, the Logging never frozen",
    async (t) => {
      const before = live.reloads
      await createTap('c', { flow: { kind: 'ClusterFlow', name: 'all' }, lifetime: 'persistent' })
      await until('tap c Ready', 60_000, async () => (await condition('c', 'Ready'))?.status === 'True')
      t.match((await getLoggingObject(kc, 'ClusterOutput', ns, 'logtap-c'))?.status, { active: true })
      // Another team sends its Flow to the tap's ClusterOutput too.
      await custom.patchNamespacedCustomObject({
        group: L,
        version: 'v1beta1',
        namespace: tenant,
        plural: 'flows',
        name: 'tenant',
        body: [{ op: 'add', path: '/spec/globalOutputRefs', value: ['logtap-c'] }],
      })
      const cid = `clusterflow:${ns}:all:clusteroutput:${ns}:logtap-c`
      const tid = `flow:${tenant}:tenant:clusteroutput:${ns}:logtap-c`
      await rendered((s) => s.includes(cid) && s.includes(tid), `${cid} and ${tid}`)
      await waitForStatus(kc, 'Flow', tenant, 'tenant', accepted, 'active and no problems')
      await fluentdRuns(cid, true, before)

      const run = k8stail(viewer, ns, ['-o', 'raw', '--count', '4', '--clusterflow', `${ns}/all`])
      t.teardown(() => run.kill('SIGKILL'))
      await streamed(run, 'cluster', 4)
      t.equal(await run.exit, 0, '--count reached')
      t.match(run.err(), new RegExp(`attaching to persistent LogTap ${ns}/c`))

      const reloads = live.reloads
      await deleteTap('c')
      await goneAndRendered(t, 'c', 'ClusterOutput', [cid, tid], reloads)
      const tenantFlow = await getLoggingObject(kc, 'Flow', tenant, 'tenant')
      t.same(
        tenantFlow?.spec?.['globalOutputRefs'] ?? [],
        [],
        "the tap's ref was taken off the tenant's Flow",
      )
      t.same(tenantFlow?.spec?.['localOutputRefs'], ['es'], "the tenant's own output is kept")
      await waitForStatus(kc, 'Flow', tenant, 'tenant', accepted, 'active and no problems')
      // Not frozen: a new Flow is rendered.
      await logging.create('Flow', tenant, 'after', { localOutputRefs: ['es'] })
      await rendered((s) => s.includes(`flow:${tenant}:after:`), 'the new Flow')
      t.same(inv.violations, [], 'no Flow referenced a missing output at any revision')
      t.same(problems.seen(), [], 'logging-operator never reported a missing output')
    },
  )

  t.test(
    'Ready: False while no operator answers, False with its problems, True once it accepts',
    async (t) => {
      const pns = await c.newNamespace('rp-ready')
      const ctl = await runController(c, pns, { operatorAcceptanceTimeoutMs: 3000 })
      t.teardown(() => ctl.stop())
      const ref = `lsock-ready-${pns.slice(-6)}`
      const create = (kind: string, name: string, spec: Record<string, unknown>) =>
        custom.createNamespacedCustomObject({
          group: L,
          version: 'v1beta1',
          namespace: pns,
          plural: `${kind.toLowerCase()}s`,
          body: { apiVersion: `${L}/v1beta1`, kind, metadata: { name }, spec: { ...spec, loggingRef: ref } },
        })
      await create('Output', 'es', userOutput('ready-es'))
      await create('Flow', 'raw', {
        // A raw filter, which this Logging does not allow until told: the operator's problem.
        filters: [{ raw: { config: '@type record_transformer\n<record>\n  raw yes\n</record>' } }],
        localOutputRefs: ['es'],
      })
      // A Logging no logging-operator answers for (it may write nothing there).
      await custom.createClusterCustomObject({
        group: L,
        version: 'v1beta1',
        plural: 'loggings',
        body: {
          apiVersion: `${L}/v1beta1`,
          kind: 'Logging',
          metadata: { name: ref },
          spec: {
            loggingRef: ref,
            controlNamespace: pns,
            watchNamespaces: [pns],
            fluentd: {},
            flowConfigCheckDisabled: true,
          },
        },
      })
      await createTapIn(custom, pns, 'r', { flow: { kind: 'Flow', name: 'raw' }, mode: 'mirror' })
      const cond = async (type: string) =>
        ((await getTap(custom, pns, 'r'))?.status?.conditions ?? []).find((x) => x.type === type)
      const silent = await until('LoggingOperatorNotResponding', 30_000, async () => {
        const r = await cond('Ready')
        return r?.reason === 'LoggingOperatorNotResponding' ? r : undefined
      })
      t.equal(silent.status, 'False')
      t.match(silent.message, `is logging-operator running for Logging ${ref}?`)

      // Now a logging-operator answers for that Logging: it reports the copy's raw filter.
      await custom.deleteClusterCustomObject({ group: L, version: 'v1beta1', plural: 'loggings', name: ref })
      const real: Logging = await createLogging(kc, {
        aggregator: 'fluentd',
        name: ref,
        controlNamespace: pns,
        watchNamespaces: [pns],
      })
      t.teardown(() => real.delete())
      const problem = await until('OperatorProblems', 60_000, async () => {
        const r = await cond('Ready')
        return r?.reason === 'OperatorProblems' ? r : undefined
      })
      t.equal(problem.status, 'False')
      t.match(
        problem.message,
        'logging-operator reports on Flow logtap-r: raw filter is disabled; set logging.spec.enableRawFluentdFilter=true',
        "the operator's words, verbatim",
      )
      // The Logging's owner allows raw filters: the operator accepts the copy, the tap turns Ready.
      await custom.patchClusterCustomObject({
        group: L,
        version: 'v1beta1',
        plural: 'loggings',
        name: ref,
        body: [{ op: 'add', path: '/spec/enableRawFluentdFilter', value: true }],
      })
      const ok = await until('Ready', 60_000, async () => {
        const r = await cond('Ready')
        return r?.status === 'True' ? r : undefined
      })
      t.ok(ok)
      t.match(await cond('Accepted'), {
        status: 'True',
        message: /logging-operator accepted Output logtap-r/,
      })
      await waitForRendered(
        kc,
        real,
        (s) => s.includes(`flow:${pns}:logtap-r:output:${pns}:logtap-r`),
        'the copy',
      )
    },
  )

  t.test('kubectl get logging still lists Loggings', async (t) => {
    const got = await c.kubectl(['get', 'logging', logging.name, '-o', 'name'])
    t.equal(got.code, 0, got.stderr)
    t.equal(got.stdout.trim(), `logging.logging.banzaicloud.io/${logging.name}`)
    const all = await c.kubectl(['get', 'logging-all', '-n', ns, '-o', 'name'])
    t.equal(all.code, 0, all.stderr)
    t.match(all.stdout, `flow.logging.banzaicloud.io/app`, 'logging-all lists the Flows')
  })

  t.test('finally: no Flow ever referenced a missing output', async (t) => {
    t.same(inv.violations, [])
    t.ok(inv.checks > 1, `checked at ${inv.checks} revisions`)
    t.same(problems.seen(), [])
    const conf = await renderedConfig(kc, logging)
    t.notMatch(conf ?? '', /logtap-/, 'no tap left in the rendered configuration')
  })
}

interface Tap {
  same(a: unknown, b: unknown, m: string): unknown
}

interface Run {
  child: ChildProcess
  out: () => string
  err: () => string
  exit: Promise<number>
  exited: () => boolean
  kill: (sig: NodeJS.Signals) => void
}

function k8stail(kubeconfig: string, relayNamespace: string, args: string[]): Run {
  const child = spawn(
    path.join(repoRoot, 'node_modules', '.bin', 'node'),
    [path.join(repoRoot, 'cli', 'main.ts'), '--kubeconfig', kubeconfig, '-n', relayNamespace, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
  )
  let out = ''
  let err = ''
  let done = false
  child.stdout!.setEncoding('utf8').on('data', (d) => {
    out += d
  })
  child.stderr!.setEncoding('utf8').on('data', (d) => {
    err += d
  })
  const exit = new Promise<number>((r) =>
    child.on('exit', (code, sig) => {
      done = true
      r(code ?? (sig ? 128 : 1))
    }),
  )
  return {
    child,
    out: () => out,
    err: () => err,
    exit,
    exited: () => done,
    kill: (sig) => {
      if (!done) child.kill(sig)
    },
  }
}

const lines = (s: string) => s.split('\n').filter((l) => l.length > 0)

async function until<T>(
  what: string,
  ms: number,
  f: () => T | undefined | false | Promise<T | undefined | false>,
  run?: Run,
): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await f()
    if (v) return v
    if (Date.now() > deadline || run?.exited())
      throw new Error(`${what}: not after ${ms} ms${run ? `\nk8stail stderr:\n${run.err()}` : ''}`)
    await sleep(200)
  }
}

const createTapIn = (custom: CustomObjectsApi, namespace: string, name: string, spec: object) =>
  custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURAL,
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'LogTap', metadata: { name }, spec },
  })

async function getTap(custom: CustomObjectsApi, namespace: string, name: string) {
  try {
    return (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      name,
    })) as LogTap
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined
    throw err
  }
}

// Every problem logging-operator writes on Flows and ClusterFlows of `namespaces` that says an
// output is missing ("dangling … output reference: X"), at every revision it writes.
async function watchProblems(kc: KubeConfig, namespaces: string[]) {
  const seen: string[] = []
  const aborts: AbortController[] = []
  const w = new Watch(kc)
  for (const namespace of namespaces)
    for (const plural of ['flows', 'clusterflows'])
      aborts.push(
        await w.watch(
          `/apis/${L}/v1beta1/namespaces/${namespace}/${plural}`,
          {},
          (_phase, obj) => {
            for (const p of (obj?.status?.problems as string[] | undefined) ?? [])
              if (/dangling/.test(p))
                seen.push(
                  `rv ${obj.metadata?.resourceVersion}: ${obj.kind} ${namespace}/${obj.metadata?.name}: ${p}`,
                )
          },
          () => {},
        ),
      )
  return {
    seen: () => [...seen],
    stop: () => {
      for (const a of aborts) a.abort()
    },
  }
}

// A ServiceAccount `viewer` that may tap in `ns` (where the relay also lives); its kubeconfig.
async function viewerKubeconfig(c: TestCluster, ns: string, dir: string): Promise<string> {
  const rbac = c.kc.makeApiClient(RbacAuthorizationV1Api)
  await rbac.createNamespacedRole({
    namespace: ns,
    body: {
      metadata: { name: 'tapper' },
      rules: [
        { apiGroups: [GROUP], resources: [PLURAL], verbs: ['create', 'get', 'list', 'watch', 'delete'] },
        {
          apiGroups: ['coordination.k8s.io'],
          resources: ['leases'],
          verbs: ['create', 'get', 'update', 'delete'],
        },
        {
          apiGroups: [''],
          resources: ['services/proxy'],
          verbs: ['get'],
          resourceNames: ['log-socket:10001'],
        },
      ],
    },
  })
  await rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: 'viewer-taps' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'tapper' },
      subjects: [{ kind: 'ServiceAccount', name: 'viewer', namespace: ns }],
    },
  })
  return writeTokenKubeconfig(c, dir, await c.serviceAccountToken(ns, 'viewer'), 'viewer')
}
