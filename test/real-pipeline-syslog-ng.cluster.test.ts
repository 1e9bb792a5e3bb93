// Real syslog-ng (Debian's 3.38 with the http module) running the destination and log path the real
// logging-operator rendered for a SyslogNGOutput and SyslogNGFlow: what it posts, and what it does
// when the receiver answers 4xx or 5xx. docs/real-pipeline.md lists the facts.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { syslogNgOutputSpec } from '../controller/reconciler/desired/syslog-ng-output.ts'
import {
  accepted,
  createLogging,
  waitForRendered,
  waitForStatus,
} from '../local-cluster/real-pipeline/logging.ts'
import { fluentBitJsonLine, startSyslogNg } from '../local-cluster/real-pipeline/syslog-ng.ts'
import {
  destinationStatement,
  logPathsTo,
  syslogNgDestinationName,
} from '../local-cluster/real-pipeline/syslog-ng-config.ts'
import { generateRecords, samplePods } from '../local-cluster/sample-records.ts'
import { type Receiver, startReceiver } from './support/http-receiver.ts'
import { realPipeline } from './support/real-pipeline.ts'

const rp = await realPipeline(['operator', 'syslog-ng'])
if (rp) {
  const c = rp.cluster
  const kc = c.kc
  const serviceUrl = (name: string) => `http://receiver.test.svc:8080/${name}`
  const httpOutput = (name: string, http: Record<string, unknown> = {}) => ({
    http: {
      url: serviceUrl(name),
      headers: ['Content-Type: application/x-ndjson'],
      'batch-lines': 100,
      'batch-timeout': 500,
      ...http,
    },
  })

  async function render(t: Tap, cases: Record<string, Record<string, unknown>>) {
    const ns = await c.newNamespace('rp-syslog-ng')
    const logging = await createLogging(kc, {
      aggregator: 'syslogNG',
      controlNamespace: ns,
      watchNamespaces: [ns],
    })
    t.teardown(() => logging.delete())
    for (const [name, spec] of Object.entries(cases)) await logging.create('SyslogNGOutput', ns, name, spec)
    await logging.create('SyslogNGFlow', ns, 'shop', { localOutputRefs: Object.keys(cases) })
    await waitForStatus(kc, 'SyslogNGFlow', ns, 'shop', accepted, 'active and no problems')
    const dest = (name: string) => syslogNgDestinationName('SyslogNGOutput', ns, name)
    const conf = await waitForRendered(
      kc,
      logging,
      (s) => Object.keys(cases).every((n) => s.includes(`destination "${dest(n)}"`)),
      'every destination',
    )
    return { ns, conf, dest }
  }

  async function receivers(t: Tap, statuses: Record<string, number>) {
    const r: Record<string, Receiver> = {}
    for (const [name, status] of Object.entries(statuses)) {
      r[name] = await startReceiver({ status })
      t.teardown(() => r[name]!.close())
    }
    const url = (u: string) => {
      const name = new URL(u).pathname.slice(1)
      if (!r[name]) throw new Error(`no receiver for ${u}`)
      return `${r[name].url}/${name}`
    }
    return { r, url }
  }

  t.test(
    'syslog-ng runs the rendered http() destination and posts a batch of fluent-bit JSON lines',
    async (t) => {
      const { ns, conf, dest } = await render(t, { tap: httpOutput('tap') })
      const destination = destinationStatement(conf, dest('tap'))
      t.match(destination?.body, /http\(/, `destination "${dest('tap')}" is an http() driver`)
      const paths = logPathsTo(conf, dest('tap'))
      t.equal(paths.length, 1, 'one log path leads to it: the flow’s')
      t.match(paths[0]?.body, `flow_${ns}_shop_ns_filter`, 'it filters on the flow’s namespace')
      const { r, url } = await receivers(t, { tap: 200 })
      const sng = await startSyslogNg({ rendered: conf, destinations: [dest('tap')], url })
      t.teardown(() => sng.stop())
      const mine = generateRecords(samplePods(ns), 6)
      const others = generateRecords(samplePods('elsewhere'), 2)
      const at = new Date()
      const withTs = [...mine, ...others].map((rec) => ({ ts: at.toISOString(), ...rec }))
      await sng.send(withTs)
      const [req] = await r.tap!.until(1)
      await sleep(1500)
      t.equal(r.tap!.requests.length, 1, 'one POST for the batch')
      t.equal(req!.method, 'POST')
      t.equal(req!.headers['content-type'], 'application/x-ndjson', 'the Content-Type the Output set')
      t.notOk(
        Object.keys(req!.headers).some((h) => h.startsWith('x-syslog-')),
        'no X-Syslog-* headers in batch mode',
      )
      t.equal(
        req!.body.toString('utf8'),
        withTs
          .slice(0, mine.length)
          .map((rec) => fluentBitJsonLine(rec))
          .join('\n'),
        'the body is the JSON lines as fluent-bit sent them, joined by newlines; other namespaces filtered out',
      )
    },
  )

  // Debian's syslog-ng 3.38 here; logging-operator's image runs AxoSyslog, whose defaults for
  // 4xx differ (it drops): only an explicit response-action behaves the same in both.
  t.test('what syslog-ng 3.38 does when the receiver answers 4xx or 5xx', async (t) => {
    const { ns, conf, dest } = await render(t, {
      s404: httpOutput('s404'),
      s403: httpOutput('s403'),
      s503: httpOutput('s503', { time_reopen: 1 }),
      'drop-404': httpOutput('drop-404', { 'response-action': { 404: 'drop' } }),
    })
    t.match(destinationStatement(conf, dest('drop-404'))?.body, /response-action\(\s*404 => drop\s*\)/)
    const { r, url } = await receivers(t, { s404: 404, s403: 403, s503: 503, 'drop-404': 404 })
    const sng = await startSyslogNg({
      rendered: conf,
      destinations: ['s404', 's403', 's503', 'drop-404'].map(dest),
      url,
    })
    t.teardown(() => sng.stop())
    const pods = samplePods(ns)
    await sng.send(generateRecords(pods, 3, 0))
    await Promise.all(Object.values(r).map((x) => x.until(1)))
    await sleep(4000)
    await sng.send(generateRecords(pods, 3, 100))
    await sleep(3000)
    // Which records (by their counter) each request carried.
    const batches = (name: string) =>
      r[name]!.requests.map((q) =>
        q.body
          .toString('utf8')
          .split('\n')
          .map((l) => JSON.parse(JSON.parse(l).message).n),
      )
    for (const s of ['s404', 's403']) {
      const b = batches(s)
      t.same(b[0], [0, 1, 2], `${s.slice(1)}: the first batch is posted`)
      t.same(
        b.at(-1),
        [0, 1, 2, 100, 101, 102],
        `${s.slice(1)}: it is kept and re-sent with the next one: never dropped`,
      )
    }
    const b503 = batches('s503')
    t.ok(b503.filter((b) => b.join() === '0,1,2').length >= 3, '503: retried every time_reopen')
    t.same(b503.at(-1), [0, 1, 2, 100, 101, 102], '503: kept, the batch grows')
    t.same(
      batches('drop-404'),
      [
        [0, 1, 2],
        [100, 101, 102],
      ],
      '404 with response-action drop: each batch posted once and dropped',
    )
    t.match(sng.log(), /handled by response_action; action='drop'/, 'syslog-ng says it dropped them')
  })

  // The http() the controller gives a tap (syslog-ng-output.ts), against each answer of the relay.
  t.test(
    'the tap’s http() as the controller makes it: what syslog-ng 3.38 does with each answer',
    async (t) => {
      const tapOutput = (name: string) => {
        const spec = syslogNgOutputSpec({ url: serviceUrl(name), user: 'tap', secret: 'cred' }) as {
          http: Record<string, unknown>
        }
        // The credential Secret is the controller's business; here a literal value.
        return { http: { ...spec.http, password: { value: 'secret' } } }
      }
      const names = ['ok', 's403', 's404', 's413', 's503']
      const { ns, conf, dest } = await render(t, Object.fromEntries(names.map((n) => [n, tapOutput(n)])))
      const { r, url } = await receivers(t, { ok: 200, s403: 403, s404: 404, s413: 413, s503: 503 })
      const sng = await startSyslogNg({ rendered: conf, destinations: names.map(dest), url })
      t.teardown(() => sng.stop())
      const pods = samplePods(ns)
      await sng.send(generateRecords(pods, 3, 0))
      await Promise.all(Object.values(r).map((x) => x.until(1)))
      await sleep(12_000)
      const counts = Object.fromEntries(names.map((n) => [n, r[n]!.requests.length]))
      t.comment(`requests per receiver: ${JSON.stringify(counts)}`)
      const ok = r['ok']!.requests[0]!
      t.equal(ok.headers['content-type'], 'application/x-ndjson')
      t.equal(ok.headers['authorization'], `Basic ${Buffer.from('tap:secret').toString('base64')}`)
      for (const n of ['s403', 's404', 's413']) t.equal(counts[n], 1, `${n.slice(1)}: posted once, dropped`)
      for (const n of names) {
        const s = await sng.destinationStats(dest(n))
        t.equal(s.queued, 0, `${n}: nothing left queued (${JSON.stringify(s)})`)
      }
      t.ok(
        counts['s503']! >= 2 && counts['s503']! <= 3,
        `503: tried retries(3) times in all (${counts['s503']} requests), then dropped`,
      )
    },
  )
}

interface Tap {
  teardown(fn: () => unknown): void
}
