import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse } from 'yaml'
import { CHART_CRD_PATH, CRD_PATH, render } from '../scripts/gen-crd.ts'

t.test('the committed CRD is what the schema generates (npm run gen:crd)', async (t) => {
  t.equal(readFileSync(CRD_PATH, 'utf8'), render())
  t.equal(readFileSync(CHART_CRD_PATH, 'utf8'), render(), 'the chart carries the same CRD')
  const r = spawnSync(process.execPath, ['scripts/gen-crd.ts', '--check'], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
})

t.test('the CRD is structural and prints useful columns', async (t) => {
  const crd = parse(render())
  const v = crd.spec.versions[0]
  t.same(crd.spec.names.shortNames, ['ltap'])
  t.same(v.subresources, { status: {} })
  t.same(
    v.additionalPrinterColumns
      .filter((c: { priority?: number }) => !c.priority)
      .map((c: { name: string }) => c.name),
    ['Flow', 'Kind', 'Mode', 'Lifetime', 'Ready', 'Listeners', 'Records', 'Age'],
  )
  const untyped: string[] = []
  const walk = (s: Record<string, unknown>, path: string) => {
    if (typeof s['type'] !== 'string') untyped.push(path)
    for (const [k, c] of Object.entries((s['properties'] as Record<string, Record<string, unknown>>) ?? {}))
      walk(c, `${path}.${k}`)
    if (s['items']) walk(s['items'] as Record<string, unknown>, `${path}[]`)
  }
  const root = v.schema.openAPIV3Schema
  walk(root, '')
  t.same(untyped, [], 'every schema node has a type')
  const spec = root.properties.spec
  t.same(spec.properties.mode, {
    ...spec.properties.mode,
    type: 'string',
    enum: ['inject', 'mirror'],
    default: 'inject',
  })
  t.same(spec.required, ['flow'], 'defaulted fields are not required')
  const conds = root.properties.status.properties.conditions
  t.equal(conds['x-kubernetes-list-type'], 'map')
  t.same(conds['x-kubernetes-list-map-keys'], ['type'])
})
