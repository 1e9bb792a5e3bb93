// log-socket in the real pipeline (see test/support/real-taps.ts), part 1: an inject tap made by
// k8stail, accepted by the real logging-operator and delivering through real fluentd; what fluentd
// does with a deleted tap's store until its reload; Ready while no operator answers, while it reports
// problems, and once it accepts; kubectl get logging. Part 2 (-delete) is mirror and ClusterFlow taps.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { KINDS, resourceOf } from '../api/kinds.ts'
import { GROUP, type LogTap, PLURAL, VERSION } from '../api/logtap.ts'
import { fluentBitTag, startFluentd } from '../local-cluster/real-pipeline/fluentd.ts'
import { flowSection } from '../local-cluster/real-pipeline/fluentd-config.ts'
import {
  createLogging,
  getLoggingObject,
  type Logging,
  renderedConfig,
  waitForRendered,
} from '../local-cluster/real-pipeline/logging.ts'
import { startLogSocket, writeTokenKubeconfig } from '../local-cluster/stack.ts'
import { runController } from './controller-helpers.ts'
import { k8stail, until } from './support/k8stail-user.ts'
import { realPipeline } from './support/real-pipeline.ts'
import { createTapIn, getTap, realTaps } from './support/real-taps.ts'

const rp = await realPipeline(['operator', 'fluentd'])
if (rp) {
  const ls = await startLogSocket(rp.cluster, { namespace: await rp.cluster.newNamespace('rp-taps') })
  t.teardown(() => ls.stop())
  const x = await realTaps(rp, {
    ls,
    kubeconfigFor: (token, dir) => writeTokenKubeconfig(rp.cluster, dir, token, 'viewer'),
  })
  const { c, kc, custom, ns, logging, sink, live, inv, problems, viewer } = x
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
      t.match(await x.condition(session!, 'Accepted'), { status: 'True', reason: 'Accepted' })
      t.match(await x.condition(session!, 'Ready'), { status: 'True' })
      t.notMatch(run.err(), /logging-operator has not accepted|reports on/, 'no operator trouble was shown')

      const id = `flow:${ns}:app:output:${ns}:logtap-${session}`
      const conf = await x.rendered((s) => s.includes(id), `@id ${id}`)
      const section = flowSection(conf, `flow:${ns}:app`)
      t.same(
        section?.stores.map((s) => s.params.get('@id')),
        [`flow:${ns}:app:output:${ns}:es`, id],
        "the tap's store comes last in the flow's copy",
      )
      const store = x.storeOf(conf, id)!
      t.equal(store.children.find((d) => d.name === 'buffer')?.params.get('disable_chunk_backup'), 'true')
      t.equal(store.params.get('error_response_as_unrecoverable'), 'false')
      staleStore = store.text
      await x.fluentdRuns(id, true, before)

      const { printed, sent } = await x.streamed(run, 'inject', 6)
      t.same(
        printed.filter((l) => !sent.has(JSON.stringify({ ...JSON.parse(l), tapped_by: undefined }))),
        [],
        'every printed record is one fluent-bit sent',
      )
      t.ok(
        printed.every((l) => JSON.parse(l).tapped_by === 'app'),
        "the Flow's filters ran first: each record has what record_transformer added",
      )
      // Its own output flushes on its own interval (1 s): the tap's store may deliver first.
      await until("the Flow's own output got them too", 15_000, () =>
        sink.requests.some((r) => r.path === '/es' && r.body.toString().includes('"inject record ')),
      )
      t.pass("the Flow's own output got them too")

      const reloads = live.reloads
      run.child.kill('SIGINT')
      t.equal(await run.exit, 0, 'Ctrl-C exits 0')
      await x.goneAndRendered(t, session!, 'Output', [id], reloads)
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
        const records = x.batch('stale')
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
    'Ready: False while no operator answers, False with its problems, True once it accepts',
    async (t) => {
      const pns = await c.newNamespace('rp-ready')
      const ctl = await runController(c, pns, { operatorAcceptanceTimeoutMs: 3000 })
      t.teardown(() => ctl.stop())
      const ref = `lsock-ready-${pns.slice(-6)}`
      const create = (kind: 'Flow' | 'Output', name: string, spec: Record<string, unknown>) =>
        custom.createNamespacedCustomObject({
          ...resourceOf(kind),
          namespace: pns,
          body: {
            apiVersion: KINDS[kind].apiVersion,
            kind,
            metadata: { name },
            spec: { ...spec, loggingRef: ref },
          },
        })
      await create('Output', 'es', x.userOutput('ready-es'))
      await create('Flow', 'raw', {
        // A raw filter, which this Logging does not allow until told: the operator's problem.
        filters: [{ raw: { config: '@type record_transformer\n<record>\n  raw yes\n</record>' } }],
        localOutputRefs: ['es'],
      })
      // A Logging no logging-operator answers for (it may write nothing there).
      await custom.createClusterCustomObject({
        ...resourceOf('Logging'),
        body: {
          apiVersion: KINDS.Logging.apiVersion,
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
      await custom.deleteClusterCustomObject({ ...resourceOf('Logging'), name: ref })
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
        ...resourceOf('Logging'),
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
