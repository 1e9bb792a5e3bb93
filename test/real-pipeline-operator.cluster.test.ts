// What the real logging-operator does with Flows and Outputs like the ones log-socket makes: what it
// accepts (status.active, status.problems), what it renders, and what a dangling reference does to
// the whole Logging. Facts the controller relies on; docs/real-pipeline.md lists them.
import { setTimeout as sleep } from 'node:timers/promises'
import { CustomObjectsApi } from '@kubernetes/client-node'
import t from 'tap'
import { flowSection, outputBlock, outputIds } from '../local-cluster/real-pipeline/fluentd-config.ts'
import {
  accepted,
  createLogging,
  createLoggingObject,
  getLoggingObject,
  hasProblems,
  renderedConfig,
  waitForRendered,
  waitForStatus,
} from '../local-cluster/real-pipeline/logging.ts'
import { realPipeline } from './support/real-pipeline.ts'

const rp = await realPipeline(['operator'])
if (rp) {
  const c = rp.cluster
  const kc = c.kc
  const custom = kc.makeApiClient(CustomObjectsApi)
  const http = (name: string) => ({
    http: {
      endpoint: `http://log-socket.log-socket.svc:10000/v1/ingest/x/${name}`,
      format: { type: 'json' },
      buffer: { type: 'memory', tags: '[]', flush_mode: 'interval', flush_interval: '1s' },
    },
  })
  const flowSpec = (outputs: string[]) => ({
    match: [{ select: { labels: { 'app.kubernetes.io/name': 'checkout' } } }],
    localOutputRefs: outputs,
  })

  t.test(
    'an http Output and a Flow referencing it are accepted and rendered under a stable @id',
    async (t) => {
      const ns = await c.newNamespace('rp-accept')
      const logging = await createLogging(kc, {
        aggregator: 'fluentd',
        controlNamespace: ns,
        watchNamespaces: [ns],
      })
      t.teardown(() => logging.delete())
      await logging.create('Output', ns, 'tap', http('tap'))
      await logging.create('Flow', ns, 'checkout', flowSpec(['tap']))
      const out = await waitForStatus(kc, 'Output', ns, 'tap', accepted, 'active and no problems')
      t.same(out, { active: true }, 'Output: active, no problems')
      const flow = await waitForStatus(kc, 'Flow', ns, 'checkout', accepted, 'active and no problems')
      t.same(flow, { active: true }, 'Flow: active, no problems')

      const id = `flow:${ns}:checkout:output:${ns}:tap`
      const conf = await waitForRendered(kc, logging, (s) => s.includes(id), `a block with @id ${id}`)
      const alone = outputBlock(conf, id)
      t.equal(alone?.name, 'match', "a Flow's only output is rendered as its own <match **>")
      t.equal(alone?.params.get('@type'), 'http')
      t.equal(alone?.params.get('endpoint'), 'http://log-socket.log-socket.svc:10000/v1/ingest/x/tap')
      const buffer = alone?.children.find((d) => d.name === 'buffer')
      t.equal(buffer?.arg, '[]', 'tags "[]": a buffer without chunk keys')
      t.equal(buffer?.params.get('@type'), 'memory')
      t.equal(buffer?.params.get('flush_interval'), '1s')
      t.same(
        [
          buffer?.params.get('retry_forever'),
          buffer?.params.get('timekey'),
          buffer?.params.get('timekey_wait'),
        ],
        ['true', '10m', '1m'],
        'the operator adds retry_forever true, timekey 10m and timekey_wait 1m the Output did not set',
      )

      // Injecting a second output (what an inject-mode tap does) turns both into <store>s of a copy.
      await logging.create('Output', ns, 'other', http('other'))
      await custom.patchNamespacedCustomObject({
        group: 'logging.banzaicloud.io',
        version: 'v1beta1',
        namespace: ns,
        plural: 'flows',
        name: 'checkout',
        body: [{ op: 'add', path: '/spec/localOutputRefs/-', value: 'other' }],
      })
      const other = `flow:${ns}:checkout:output:${ns}:other`
      const both = await waitForRendered(kc, logging, (s) => s.includes(other), `@id ${other}`)
      const section = flowSection(both, `flow:${ns}:checkout`)
      t.same(
        section?.stores.map((d) => [d.name, d.params.get('@id')]),
        [
          ['store', id],
          ['store', other],
        ],
        'two outputs: <store>s of one copy, in localOutputRefs order, each keeping its @id',
      )
    },
  )

  t.test('a Flow referencing a missing Output gets a problem and freezes the whole Logging', async (t) => {
    const ns = await c.newNamespace('rp-frozen')
    const logging = await createLogging(kc, {
      aggregator: 'fluentd',
      controlNamespace: ns,
      watchNamespaces: [ns],
    })
    t.teardown(() => logging.delete())
    await logging.create('Output', ns, 'a', http('a'))
    await logging.create('Flow', ns, 'a', flowSpec(['a']))
    const idA = `flow:${ns}:a:output:${ns}:a`
    await waitForRendered(kc, logging, (s) => s.includes(idA), `@id ${idA}`)

    await logging.create('Flow', ns, 'dangling', flowSpec(['gone']))
    const problem = await waitForStatus(kc, 'Flow', ns, 'dangling', hasProblems, 'a problem')
    t.same(
      problem.problems,
      ['dangling local output reference: gone', 'flow has become dangling with no valid outputs'],
      'the problems name the missing Output',
    )
    t.not(problem.active, true, 'the dangling Flow is not active')

    // Another tenant's new, valid Output and Flow: accepted, but never rendered while one Flow dangles.
    await logging.create('Output', ns, 'b', http('b'))
    await logging.create('Flow', ns, 'b', flowSpec(['b']))
    await waitForStatus(kc, 'Flow', ns, 'b', accepted, 'active and no problems')
    const idB = `flow:${ns}:b:output:${ns}:b`
    await sleep(5000)
    const frozen = await renderedConfig(kc, logging)
    t.ok(frozen?.includes(idA), 'the configuration rendered before stays')
    t.notOk(frozen?.includes(idB), 'the valid new Flow is not rendered: the whole Logging is frozen')

    // Removing the dangling reference unfreezes it.
    await custom.patchNamespacedCustomObject({
      group: 'logging.banzaicloud.io',
      version: 'v1beta1',
      namespace: ns,
      plural: 'flows',
      name: 'dangling',
      body: [{ op: 'replace', path: '/spec/localOutputRefs', value: ['a'] }],
    })
    const thawed = await waitForRendered(kc, logging, (s) => s.includes(idB), `@id ${idB}`)
    t.same(
      outputIds(thawed)
        .filter((i) => i.startsWith('flow:'))
        .sort(),
      [idA, `flow:${ns}:dangling:output:${ns}:a`, idB].sort(),
      'every Flow is rendered again',
    )
  })

  t.test('a Flow whose globalOutputRefs names a deleted ClusterOutput freezes the Logging too', async (t) => {
    const ns = await c.newNamespace('rp-global')
    const control = await c.newNamespace('rp-control')
    const logging = await createLogging(kc, {
      aggregator: 'fluentd',
      controlNamespace: control,
      watchNamespaces: [ns],
    })
    t.teardown(() => logging.delete())
    await logging.create('ClusterOutput', control, 'tap', http('ctap'))
    await logging.create('ClusterFlow', control, 'all', { globalOutputRefs: ['tap'] })
    await logging.create('Flow', ns, 'tenant', {
      ...flowSpec([]),
      localOutputRefs: undefined,
      globalOutputRefs: ['tap'],
    })
    const cid = `clusterflow:${control}:all:clusteroutput:${control}:tap`
    const fid = `flow:${ns}:tenant:clusteroutput:${control}:tap`
    const before = await waitForRendered(
      kc,
      logging,
      (s) => s.includes(cid) && s.includes(fid),
      `${cid} and ${fid}`,
    )
    t.ok(outputBlock(before, fid), "the tenant Flow's store for the ClusterOutput is rendered")

    // The ClusterOutput goes away while the tenant's Flow still references it.
    await custom.deleteNamespacedCustomObject({
      group: 'logging.banzaicloud.io',
      version: 'v1beta1',
      namespace: control,
      plural: 'clusteroutputs',
      name: 'tap',
    })
    const problem = await waitForStatus(kc, 'Flow', ns, 'tenant', hasProblems, 'a problem')
    t.same(problem.problems, [
      'dangling global output reference: tap',
      'flow has become dangling with no valid outputs',
    ])
    const cflow = await waitForStatus(kc, 'ClusterFlow', control, 'all', hasProblems, 'a problem')
    t.same(
      cflow.problems,
      ['dangling global output reference: tap'],
      'a ClusterFlow gets only the first problem',
    )
    // Another tenant's valid change is never rendered; fluentd keeps the deleted output's store.
    await logging.create('Output', ns, 'b', http('b'))
    await logging.create('Flow', ns, 'b', flowSpec(['b']))
    await waitForStatus(kc, 'Flow', ns, 'b', accepted, 'active and no problems')
    await sleep(5000)
    const frozen = await renderedConfig(kc, logging)
    t.notOk(frozen?.includes(`flow:${ns}:b:output:${ns}:b`), 'the valid new Flow is not rendered')
    t.ok(frozen?.includes(fid), 'the store of the deleted ClusterOutput stays in the configuration')
  })

  t.test('the operator writes nothing outside the Loggings tests granted it', async (t) => {
    // Like the controller tests do: a bare Logging watching every namespace, and a Flow elsewhere.
    const ns = await c.newNamespace('rp-bystander')
    const bare = `bare-${ns}`
    await custom.createClusterCustomObject({
      group: 'logging.banzaicloud.io',
      version: 'v1beta1',
      plural: 'loggings',
      body: {
        apiVersion: 'logging.banzaicloud.io/v1beta1',
        kind: 'Logging',
        metadata: { name: bare },
        spec: { controlNamespace: ns },
      },
    })
    t.teardown(() =>
      custom.deleteClusterCustomObject({
        group: 'logging.banzaicloud.io',
        version: 'v1beta1',
        plural: 'loggings',
        name: bare,
      }),
    )
    const flow = await createLoggingObject(kc, 'Flow', ns, 'bystander', flowSpec(['missing']))
    // A granted Logging elsewhere, to know the operator is busy meanwhile.
    const busy = await c.newNamespace('rp-busy')
    const logging = await createLogging(kc, {
      aggregator: 'fluentd',
      controlNamespace: busy,
      watchNamespaces: [busy],
    })
    t.teardown(() => logging.delete())
    await logging.create('Output', busy, 'o', http('o'))
    await logging.create('Flow', busy, 'f', flowSpec(['o']))
    await waitForStatus(kc, 'Flow', busy, 'f', accepted, 'active')
    await sleep(3000)
    const after = await getLoggingObject(kc, 'Flow', ns, 'bystander')
    t.equal(after?.status, undefined, 'no status written on a Flow no granted Logging watches')
    t.equal(after?.metadata.resourceVersion, flow.metadata.resourceVersion, 'the Flow is untouched')
  })
}
