// Tapping syslog-ng flows end to end with the real parts: the controller+relay program, the real
// logging-operator rendering the tap's SyslogNGOutput/SyslogNGClusterOutput and the tapped flow
// into syslog-ng.conf, Debian's real syslog-ng running exactly that destination and log path fed
// with fluent-bit's JSON lines, and `k8stail` (a child process, through the API server's service
// proxy) printing what syslog-ng posted.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { CustomObjectsApi } from '@kubernetes/client-node'
import t, { type Test } from 'tap'
import { type OutputKindName, resourceOf } from '../api/kinds.ts'
import { GROUP, LABEL_TAP, type LogTap, PLURAL, VERSION } from '../api/logtap.ts'
import { tapObjectName } from '../controller/reconciler/desired/naming.ts'
import {
  accepted,
  createLogging,
  getLoggingObject,
  waitForRendered,
} from '../local-cluster/real-pipeline/logging.ts'
import { fluentBitJsonLine, type SyslogNg, startSyslogNg } from '../local-cluster/real-pipeline/syslog-ng.ts'
import {
  destinationStatement,
  logPathsTo,
  syslogNgDestinationName,
} from '../local-cluster/real-pipeline/syslog-ng-config.ts'
import { generateRecords, samplePods } from '../local-cluster/sample-records.ts'
import { startLogSocket, writeTokenKubeconfig } from '../local-cluster/stack.ts'
import { grantTapper, type K8stailRun, k8stail, until } from './support/k8stail-user.ts'
import { realPipeline } from './support/real-pipeline.ts'
import { createTapIn } from './support/real-taps.ts'

const rp = await realPipeline(['operator', 'syslog-ng'])
if (rp) {
  const c = rp.cluster
  const kc = c.kc
  const custom = kc.makeApiClient(CustomObjectsApi)
  const ns = await c.newNamespace('sng-tap')
  // A tenant's namespace, watched by the same Logging: its SyslogNGFlows may name the cluster
  // outputs of the control namespace.
  const tenantNs = await c.newNamespace('sng-tenant')
  const dir = mkdtempSync(path.join(tmpdir(), 'sng-tap-'))
  const ls = await startLogSocket(c, { namespace: ns })
  // One namespace for everything: the Logging's control namespace (SyslogNGClusterFlow taps live
  // there) and the one it watches; the relay's Service is there too.
  const logging = await createLogging(kc, {
    aggregator: 'syslogNG',
    controlNamespace: ns,
    watchNamespaces: [ns, tenantNs],
  })
  t.teardown(async () => {
    await ls.stop()
    await logging.delete()
    rmSync(dir, { recursive: true, force: true })
  })
  await logging.create('SyslogNGOutput', ns, 'es', { http: { url: 'http://elasticsearch.invalid:9200' } })
  await logging.create('SyslogNGFlow', ns, 'shop', { localOutputRefs: ['es'] })
  await logging.create('SyslogNGClusterOutput', ns, 'archive', { http: { url: 'http://archive.invalid:80' } })
  await logging.create('SyslogNGClusterFlow', ns, 'all', { globalOutputRefs: ['archive'] })

  // The user: a ServiceAccount with the tapper rules in this namespace.
  const kubeconfig = writeTokenKubeconfig(c, dir, await grantTapper(c, ns), 'viewer')
  const pods = samplePods(ns)
  const visible = (line: string) => /checkout-|payments-/.test(line) // rbac/policy allow; viewer allow

  type Run = K8stailRun
  const tail = (args: string[]): Run => k8stail(kubeconfig, ns, ['-o', 'raw', ...args])
  const lines = (s: string) => s.split('\n').filter((l) => l.length > 0)
  const taps = async () =>
    (
      (await custom.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: PLURAL,
      })) as {
        items: LogTap[]
      }
    ).items
  const ours = async (kind: OutputKindName) =>
    (
      (await custom.listNamespacedCustomObject({
        ...resourceOf(kind),
        namespace: ns,
        labelSelector: LABEL_TAP,
      })) as {
        items: unknown[]
      }
    ).items
  const spec = async (kind: 'SyslogNGFlow' | 'SyslogNGClusterFlow', name: string, namespace = ns) =>
    (
      (await custom.getNamespacedCustomObject({ ...resourceOf(kind), namespace, name })) as {
        spec: Record<string, unknown>
      }
    ).spec
  // Ingest answers by status code, from the relay's own metrics.
  const ingestAnswers = async (code: number) => {
    const text = await (await fetch(`http://${c.testHost.ip}:${ls.ports.ops}/metrics`)).text()
    const m = new RegExp(`^log_socket_ingest_requests_total\\{code="${code}"\\} (\\d+)`, 'm').exec(text)
    return Number(m?.[1] ?? 0)
  }

  // Waits for the operator to render the tap's destination, then runs it in real syslog-ng.
  async function syslogNgFor(t: Test, kind: OutputKindName, tapName: string) {
    const dest = syslogNgDestinationName(
      kind as 'SyslogNGOutput' | 'SyslogNGClusterOutput',
      ns,
      tapObjectName(tapName),
    )
    // The operator renders every output as a destination; the flow's log path names it once the
    // controller attached it (or made the copy).
    const conf = await waitForRendered(
      kc,
      logging,
      (s) => logPathsTo(s, dest).length > 0,
      `a log path to ${dest}`,
    )
    const sng = await startSyslogNg({
      rendered: conf,
      destinations: [dest],
      url: ls.resolve,
      allowHosts: [c.testHost.ip],
    })
    t.teardown(() => sng.stop())
    return { dest, conf, sng }
  }

  // Sends records until k8stail printed `want` of them; returns every line sent.
  async function feedUntil(run: Run, sng: SyslogNg, want: number): Promise<Set<string>> {
    const sent = new Set<string>()
    let n = 0
    await until(`${want} records printed`, 90_000, async () => {
      const batch = generateRecords(pods, 8, n).map((r) => ({ ts: new Date().toISOString(), ...r }))
      n += 8
      for (const r of batch) sent.add(fluentBitJsonLine(r))
      await sng.send(batch)
      await sleep(1500)
      return lines(run.out()).filter((l) => !l.startsWith('{"error"')).length >= want
    }).catch((err) => {
      run.child.kill('SIGKILL')
      throw new Error(`${(err as Error).message}\nk8stail stderr:\n${run.err()}\nsyslog-ng:\n${sng.log()}`)
    })
    return sent
  }

  function checkPrinted(t: Test, run: Run, sent: Set<string>) {
    const out = lines(run.out())
    const records = out.filter((l) => !l.startsWith('{"error"'))
    const denied = out.filter((l) => l.startsWith('{"error"'))
    t.same(
      records.filter((l) => !sent.has(l)),
      [],
      'every printed record is byte-identical to a JSON line fluent-bit sent syslog-ng',
    )
    t.same(
      records.filter((l) => !visible(l)),
      [],
      'no record of a pod whose labels deny this user',
    )
    t.ok(records.some((l) => l.includes('checkout-')) && records.some((l) => l.includes('payments-')))
    t.ok(denied.length > 0, 'denied records are told as notices')
  }

  t.test(
    'k8stail --syslog-ng: records of a SyslogNGFlow through real syslog-ng; a deleted tap’s stale destination drops',
    async (t) => {
      const run = tail(['--syslog-ng', `${ns}/shop`])
      const tap = await until('the session tap', 30_000, async () => (await taps())[0])
      const name = tap.metadata.name!
      t.equal(tap.spec.flow.kind, 'SyslogNGFlow')
      const { dest, conf, sng } = await syslogNgFor(t, 'SyslogNGOutput', name)
      const http = destinationStatement(conf, dest)!.body
      t.match(http, /batch-timeout\(1000\)/, 'rendered: batches leave within a second')
      t.match(http, /headers\("Content-Type: application\/x-ndjson"\)/, 'rendered: the Content-Type')
      t.match(http, /response-action\([^)]*404 => drop/, 'rendered: 404 dropped')
      t.notMatch(http, /disk-buffer|disk_buffer/, 'rendered: nothing on disk')
      const sent = await feedUntil(run, sng, 8)
      checkPrinted(t, run, sent)
      t.same((await spec('SyslogNGFlow', 'shop'))['localOutputRefs'], ['es', tapObjectName(name)], 'ref last')

      run.child.kill('SIGINT')
      t.equal(await run.exit, 0, 'Ctrl-C exits 0')
      await until('tap, SyslogNGOutput and ref gone', 30_000, async () => {
        const refs = (await spec('SyslogNGFlow', 'shop'))['localOutputRefs']
        return (
          (await taps()).length === 0 &&
          (await ours('SyslogNGOutput')).length === 0 &&
          JSON.stringify(refs) === '["es"]'
        )
      })
      t.pass('the tap, its SyslogNGOutput and its ref are gone')

      // syslog-ng still runs the old configuration (no reload here): its destination now posts
      // to a tap the relay does not know.
      const before404 = await ingestAnswers(404)
      for (let i = 0; i < 3; i++) {
        await sng.send(generateRecords(pods, 10, 1000 + 10 * i))
        await sleep(1500)
      }
      await until(
        'the stale batches answered 404',
        15_000,
        async () => (await ingestAnswers(404)) >= before404 + 3,
      )
      await sleep(5000) // time_reopen is 2 s: any retry would have come by now
      const answered = await ingestAnswers(404)
      const stats = await sng.destinationStats(dest)
      t.equal(stats.queued, 0, 'nothing stays queued in syslog-ng: memory does not grow')
      t.ok(stats.dropped >= 30, `the 30 stale records were dropped (${JSON.stringify(stats)})`)
      t.match(sng.log(), /action='drop'/, 'syslog-ng says it dropped them on the response-action')
      await sleep(5000)
      t.equal(await ingestAnswers(404), answered, 'and never posts them again')

      const flow = await getLoggingObject(kc, 'SyslogNGFlow', ns, 'shop')
      t.ok(
        accepted(flow?.status ?? {}),
        `the operator reports no problem on the flow: ${JSON.stringify(flow?.status)}`,
      )
      const rerendered = await waitForRendered(
        kc,
        logging,
        (s) => !s.includes(`destination "${dest}"`),
        'no tap',
      )
      t.match(rerendered, /destination "output_[^"]+_es"/, 'the flow’s own output is still rendered')
    },
  )

  t.test('a persistent LogTap of a SyslogNGClusterFlow, streamed with k8stail --kind', async (t) => {
    await createTapIn(custom, ns, 'all-records', {
      flow: { kind: 'SyslogNGClusterFlow', name: 'all' },
      lifetime: 'persistent',
    })
    const { sng } = await syslogNgFor(t, 'SyslogNGClusterOutput', 'all-records')
    t.same((await spec('SyslogNGClusterFlow', 'all'))['globalOutputRefs'], ['archive', 'logtap-all-records'])
    await until('the tap Ready', 60_000, async () =>
      (await taps()).some((x) =>
        x.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      ),
    )
    // A tenant names the tap's SyslogNGClusterOutput in its own SyslogNGFlow, in another namespace.
    await logging.create('SyslogNGFlow', tenantNs, 'tenant', {
      globalOutputRefs: ['archive', 'logtap-all-records'],
    })
    await until('the tenant flow accepted', 30_000, async () =>
      accepted((await getLoggingObject(kc, 'SyslogNGFlow', tenantNs, 'tenant'))?.status ?? {}),
    )
    const run = tail(['--kind', 'SyslogNGClusterFlow', `${ns}/all`])
    const sent = await feedUntil(run, sng, 8)
    checkPrinted(t, run, sent)
    t.match(run.err(), /attaching to persistent LogTap/, 'k8stail found the persistent tap')
    run.child.kill('SIGINT')
    t.equal(await run.exit, 0)

    // While the tap goes, the operator's view of every flow naming its output is watched.
    const problems: string[] = []
    let watching = true
    const watcher = (async () => {
      while (watching) {
        for (const [kind, namespace, name] of [
          ['SyslogNGFlow', tenantNs, 'tenant'],
          ['SyslogNGClusterFlow', ns, 'all'],
        ] as const) {
          const p = (await getLoggingObject(kc, kind, namespace, name))?.status?.problems ?? []
          problems.push(...p.map((x) => `${kind} ${namespace}/${name}: ${x}`))
        }
        await sleep(100)
      }
    })()
    await custom.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: PLURAL,
      name: 'all-records',
    })
    await until('tap, SyslogNGClusterOutput and refs gone', 30_000, async () => {
      const refs = (await spec('SyslogNGClusterFlow', 'all'))['globalOutputRefs']
      const tenantRefs = (await spec('SyslogNGFlow', 'tenant', tenantNs))['globalOutputRefs'] ?? []
      return (
        (await taps()).length === 0 &&
        (await ours('SyslogNGClusterOutput')).length === 0 &&
        JSON.stringify(refs) === '["archive"]' &&
        JSON.stringify(tenantRefs) === '["archive"]'
      )
    })
    t.pass('the tap, its SyslogNGClusterOutput and its refs (the tenant’s too) are gone')
    await sleep(3000) // the operator's re-render after the output went
    watching = false
    await watcher
    t.same([...new Set(problems)], [], 'the operator never reported a problem (a missing output) on any flow')
    const flow = await getLoggingObject(kc, 'SyslogNGClusterFlow', ns, 'all')
    t.ok(accepted(flow?.status ?? {}), `the operator reports no problem: ${JSON.stringify(flow?.status)}`)
  })

  t.test('mirror mode: a SyslogNGFlow copy feeds the tap; the user’s flow is never touched', async (t) => {
    await createTapIn(custom, ns, 'shop-copy', {
      flow: { kind: 'SyslogNGFlow', name: 'shop' },
      mode: 'mirror',
      lifetime: 'persistent',
    })
    const { sng } = await syslogNgFor(t, 'SyslogNGOutput', 'shop-copy')
    t.same(await spec('SyslogNGFlow', 'logtap-shop-copy'), {
      loggingRef: logging.loggingRef,
      localOutputRefs: ['logtap-shop-copy'],
    })
    t.same((await spec('SyslogNGFlow', 'shop'))['localOutputRefs'], ['es'], 'the user’s flow is untouched')
    await until('the tap Ready', 60_000, async () =>
      (await taps()).some((x) =>
        x.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      ),
    )
    const run = tail(['--syslog-ng', '--attach', 'shop-copy', `${ns}/shop`])
    const sent = await feedUntil(run, sng, 8)
    checkPrinted(t, run, sent)
    run.child.kill('SIGINT')
    t.equal(await run.exit, 0)
    await custom.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: PLURAL,
      name: 'shop-copy',
    })
    await until('tap, copy and SyslogNGOutput gone', 30_000, async () => {
      const copy = await getLoggingObject(kc, 'SyslogNGFlow', ns, 'logtap-shop-copy')
      return (await taps()).length === 0 && (await ours('SyslogNGOutput')).length === 0 && !copy
    })
    t.pass('the tap, its SyslogNGFlow copy and its SyslogNGOutput are gone')
  })
}
