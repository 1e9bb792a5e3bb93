// Real fluentd running the <store> blocks the real logging-operator rendered for http Outputs: what
// it delivers, and what it does with each HTTP status (retry, drop, or back the chunk up to disk
// under the buffer volume, where nothing ever deletes it). docs/real-pipeline.md lists the facts.
import { setTimeout as sleep } from 'node:timers/promises'
import { CustomObjectsApi } from '@kubernetes/client-node'
import t from 'tap'
import { fluentBitTag, startFluentd } from '../local-cluster/real-pipeline/fluentd.ts'
import { flowSection } from '../local-cluster/real-pipeline/fluentd-config.ts'
import { followFlows } from '../local-cluster/real-pipeline/live-fluentd.ts'
import {
  accepted,
  createLogging,
  waitForRendered,
  waitForStatus,
} from '../local-cluster/real-pipeline/logging.ts'
import { generateRecords, samplePods } from '../local-cluster/sample-records.ts'
import { type Receiver, startReceiver } from './support/http-receiver.ts'
import { realPipeline } from './support/real-pipeline.ts'

const rp = await realPipeline(['operator', 'fluentd'])
if (rp) {
  const c = rp.cluster
  const kc = c.kc
  // Where the Outputs say they post; the runner maps it to each receiver on loopback.
  const serviceUrl = (name: string) => `http://receiver.test.svc:8080/${name}`
  // Like the controller's Output: memory buffer, no chunk keys, 1 s flush, bounded retries.
  const httpOutput = (
    name: string,
    http: Record<string, unknown> = {},
    buffer: Record<string, unknown> = {},
  ) => ({
    http: {
      endpoint: serviceUrl(name),
      format: { type: 'json' },
      json_array: false,
      ...http,
      buffer: {
        type: 'memory',
        tags: '[]',
        flush_mode: 'interval',
        flush_interval: '1s',
        retry_forever: false,
        retry_max_times: 2,
        retry_wait: '1s',
        retry_max_interval: '2s',
        ...buffer,
      },
    },
  })

  // Renders Outputs `cases` and one Flow referencing them all; returns the flow's rendered section.
  async function render(t: Tap, cases: Record<string, ReturnType<typeof httpOutput>>) {
    const ns = await c.newNamespace('rp-fluentd')
    const logging = await createLogging(kc, {
      aggregator: 'fluentd',
      controlNamespace: ns,
      watchNamespaces: [ns],
    })
    t.teardown(() => logging.delete())
    for (const [name, spec] of Object.entries(cases)) await logging.create('Output', ns, name, spec)
    await logging.create('Flow', ns, 'shop', {
      match: [{ select: { labels: { 'app.kubernetes.io/part-of': 'shop' } } }],
      localOutputRefs: Object.keys(cases),
    })
    await waitForStatus(kc, 'Flow', ns, 'shop', accepted, 'active and no problems')
    const id = (name: string) => `flow:${ns}:shop:output:${ns}:${name}`
    const conf = await waitForRendered(
      kc,
      logging,
      (s) => Object.keys(cases).every((n) => s.includes(id(n))),
      'every Output',
    )
    const section = flowSection(conf, `flow:${ns}:shop`)
    if (!section) throw new Error(`no flow section for shop in:\n${conf}`)
    return { ns, conf, section, id }
  }

  async function receivers(t: Tap, statuses: Record<string, number>) {
    const r: Record<string, Receiver> = {}
    for (const [name, status] of Object.entries(statuses)) {
      r[name] = await startReceiver({ status })
      t.teardown(() => r[name]!.close())
    }
    const endpoint = (url: string) => {
      const name = new URL(url).pathname.slice(1)
      const to = r[name]
      if (!to) throw new Error(`no receiver for ${url}`)
      return `${to.url}/${name}`
    }
    return { r, endpoint }
  }

  const records = generateRecords(samplePods('shop'), 8)
  const tag = fluentBitTag(records[0] as { kubernetes: Record<string, unknown> })

  t.test(
    'fluentd runs the rendered <store> and delivers NDJSON records as fluent-bit sent them',
    async (t) => {
      const { section, id } = await render(t, { tap: httpOutput('tap') })
      const { r, endpoint } = await receivers(t, { tap: 200 })
      const fd = await startFluentd({ outputs: section.stores, filters: section.filters, endpoint })
      t.teardown(() => fd.stop())
      t.match(fd.config, `@id ${id('tap')}`, 'the store runs under its rendered @id')
      await fd.emit(tag, records)
      const [req] = await r.tap!.until(1)
      t.equal(req!.method, 'POST')
      t.equal(req!.headers['content-type'], 'application/x-ndjson')
      t.equal(
        req!.body.toString('utf8'),
        records.map((rec) => `${JSON.stringify(rec)}\n`).join(''),
        'the body is each record exactly as fluent-bit sent it, one per line',
      )
      t.same(fd.files(), [], 'a memory buffer leaves no file behind')
    },
  )

  t.test(
    'what fluentd does with each HTTP status: retry, back up the chunk to disk, or drop it',
    async (t) => {
      const cases = {
        s403: httpOutput('s403'),
        s404: httpOutput('s404'),
        s413: httpOutput('s413'),
        s429: httpOutput('s429'),
        s503: httpOutput('s503'),
        'nobackup-404': httpOutput('nobackup-404', {}, { disable_chunk_backup: true }),
        'recoverable-404': httpOutput('recoverable-404', { error_response_as_unrecoverable: false }),
        'retryable-404': httpOutput('retryable-404', { retryable_response_codes: [404, 503] }),
      }
      const { section, id } = await render(t, cases)
      const { r, endpoint } = await receivers(t, {
        s403: 403,
        s404: 404,
        s413: 413,
        s429: 429,
        s503: 503,
        'nobackup-404': 404,
        'recoverable-404': 404,
        'retryable-404': 404,
      })
      const fd = await startFluentd({ outputs: section.stores, endpoint })
      t.teardown(() => fd.stop())
      await fd.emit(tag, records)
      // Retries: 1 s, then 2 s (retry_max_times 2), then the chunk is given up.
      await Promise.all(Object.values(r).map((x) => x.until(1)))
      await sleep(7000)
      const backups = (name: string) => {
        const dir = `backup/worker0/${id(name).replaceAll(':', '_')}/`
        return fd.files().filter((f) => f.startsWith(dir))
      }
      const count = (name: string) => r[name]!.requests.length
      for (const s of ['s403', 's404', 's413', 's429']) {
        t.equal(count(s), 1, `${s.slice(1)}: one request, never retried`)
        t.equal(
          backups(s).length,
          1,
          `${s.slice(1)}: the chunk is backed up under <root_dir>/backup/worker0/<@id>/`,
        )
      }
      t.equal(count('s503'), 3, '503: retried (1 + retry_max_times requests)')
      t.same(backups('s503'), [], '503: given up after the retries without a backup')
      t.equal(count('nobackup-404'), 1, '404 with disable_chunk_backup: one request')
      t.same(backups('nobackup-404'), [], '404 with disable_chunk_backup: the chunk is thrown away')
      t.equal(count('recoverable-404'), 1, '404 with error_response_as_unrecoverable false: one request')
      t.same(
        backups('recoverable-404'),
        [],
        '404 with error_response_as_unrecoverable false: dropped, no backup',
      )
      t.equal(count('retryable-404'), 3, '404 listed in retryable_response_codes: retried like 503')
      t.same(backups('retryable-404'), [], '… and given up without a backup')
      t.match(fd.log(), /disable_chunk_backup is true/, 'fluentd says it threw the chunk away')
      t.same(
        fd.files().filter((f) => !f.startsWith('backup/')),
        [],
        'nothing else under the buffer root',
      )
    },
  )

  t.test('fluentd following a Logging reloads when the operator renders a new output', async (t) => {
    const ns = await c.newNamespace('rp-follow')
    const logging = await createLogging(kc, {
      aggregator: 'fluentd',
      controlNamespace: ns,
      watchNamespaces: [ns],
    })
    t.teardown(() => logging.delete())
    await logging.create('Output', ns, 'first', httpOutput('first'))
    await logging.create('Flow', ns, 'shop', { localOutputRefs: ['first'] })
    const { r, endpoint } = await receivers(t, { first: 200, second: 200 })
    const live = await followFlows({ kc, logging, flows: [`flow:${ns}:shop`], endpoint, pollMs: 500 })
    t.teardown(() => live.stop())
    await live.emit(records.slice(0, 2))
    await r.first!.until(1)

    // What an inject-mode tap does: a new Output, then its name appended to the Flow.
    await logging.create('Output', ns, 'second', httpOutput('second'))
    await kc.makeApiClient(CustomObjectsApi).patchNamespacedCustomObject({
      group: 'logging.banzaicloud.io',
      version: 'v1beta1',
      namespace: ns,
      plural: 'flows',
      name: 'shop',
      body: [{ op: 'add', path: '/spec/localOutputRefs/-', value: 'second' }],
    })
    const deadline = Date.now() + 30_000
    while (live.reloads < 1 && Date.now() < deadline) await sleep(200)
    t.equal(live.reloads, 1, 'it reloaded once the operator rendered the second output')
    await live.emit(records.slice(2, 4))
    const [got] = await r.second!.until(1)
    t.equal(
      got!.body.toString('utf8'),
      records
        .slice(2, 4)
        .map((rec) => `${JSON.stringify(rec)}\n`)
        .join(''),
      'the new output gets what came after the reload',
    )
    await r.first!.until(2)
    t.equal(r.first!.requests.length, 2, 'the first output goes on receiving')
  })
}

// What the helpers need of a test.
interface Tap {
  teardown(fn: () => unknown): void
}
