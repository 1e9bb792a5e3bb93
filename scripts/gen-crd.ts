// Generates crds/logsocket.dev_logtaps.yaml from the typebox schemas in api/logtap-schema.ts.
//   node scripts/gen-crd.ts           write the file
//   node scripts/gen-crd.ts --check   exit 1 when the committed file differs from what would be generated
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { CATEGORIES, GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION } from '../api/logtap.ts'
import { LogTapSpec, LogTapStatus } from '../api/logtap-schema.ts'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
export const CRD_PATH = join(root, 'crds', `${GROUP}_${PLURAL}.yaml`)
// Helm installs CRDs only from the chart's own crds/ folder, so the chart carries a copy.
export const CHART_CRD_PATH = join(root, 'charts', 'log-socket', 'crds', `${GROUP}_${PLURAL}.yaml`)

type Schema = Record<string, unknown>

// JSON-schema keywords a structural CRD schema accepts; typebox's own markers are dropped.
const KEEP = new Set([
  'type',
  'description',
  'properties',
  'required',
  'items',
  'enum',
  'default',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'pattern',
  'format',
  'nullable',
  'additionalProperties',
])

// Turns a typebox schema into a Kubernetes structural schema: every node has a `type`, enums get
// the type of their values, and a field with a default is not required (the API server fills it in).
export function structural(schema: Schema): Schema {
  const out: Schema = {}
  for (const [key, value] of Object.entries(schema)) {
    if (!KEEP.has(key) && !key.startsWith('x-kubernetes-')) continue
    out[key] = value
  }
  if (Array.isArray(schema['enum']) && out['type'] === undefined) {
    const values = schema['enum'] as unknown[]
    out['type'] = values.every((v) => typeof v === 'number') ? 'number' : 'string'
  }
  const props = schema['properties'] as Record<string, Schema> | undefined
  if (props) {
    out['properties'] = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, structural(v)]))
    const required = ((schema['required'] as string[] | undefined) ?? []).filter(
      (k) => props[k]?.['default'] === undefined,
    )
    if (required.length > 0) out['required'] = required
    else delete out['required']
  }
  if (schema['items']) out['items'] = structural(schema['items'] as Schema)
  if (out['type'] === undefined) throw new Error(`schema node without a type: ${JSON.stringify(schema)}`)
  return out
}

function statusSchema(): Schema {
  const s = structural(LogTapStatus as unknown as Schema)
  const props = s['properties'] as Record<string, Schema>
  // Conditions merge per type under server-side apply, as metav1.Condition lists do.
  props['conditions'] = {
    ...props['conditions'],
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'],
  }
  return s
}

const readyPath = '.status.conditions[?(@.type=="Ready")]'

export function crd(): Schema {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${PLURAL}.${GROUP}` },
    spec: {
      group: GROUP,
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: SHORT_NAMES,
        categories: CATEGORIES,
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Flow', type: 'string', jsonPath: '.spec.flow.name' },
            { name: 'Kind', type: 'string', jsonPath: '.spec.flow.kind' },
            { name: 'Mode', type: 'string', jsonPath: '.spec.mode' },
            { name: 'Lifetime', type: 'string', jsonPath: '.spec.lifetime' },
            { name: 'Ready', type: 'string', jsonPath: `${readyPath}.status` },
            { name: 'Listeners', type: 'integer', jsonPath: '.status.listeners' },
            { name: 'Records', type: 'integer', jsonPath: '.status.recordsReceived' },
            { name: 'Reason', type: 'string', jsonPath: `${readyPath}.reason`, priority: 1 },
            { name: 'Output', type: 'string', jsonPath: '.status.outputName', priority: 1 },
            { name: 'Selection', type: 'string', jsonPath: '.status.selection', priority: 1 },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description:
                'LogTap streams, live, the records flowing through a logging-operator flow: a Flow or ClusterFlow (fluentd), a SyslogNGFlow or SyslogNGClusterFlow (syslog-ng).',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: structural(LogTapSpec as unknown as Schema),
                status: statusSchema(),
              },
            },
          },
        },
      ],
    },
  }
}

export function render(): string {
  return `# Generated by scripts/gen-crd.ts from api/logtap.ts. Do not edit: run npm run gen:crd.\n${stringify(crd(), { lineWidth: 0 })}`
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const want = render()
  if (process.argv.includes('--check')) {
    for (const path of [CRD_PATH, CHART_CRD_PATH]) {
      let have = ''
      try {
        have = readFileSync(path, 'utf8')
      } catch {}
      if (have !== want) {
        console.error(`${path} is stale: run npm run gen:crd and commit the result`)
        process.exit(1)
      }
    }
  } else {
    for (const path of [CRD_PATH, CHART_CRD_PATH]) {
      mkdirSync(dirname(path), { recursive: true })
      writeFileSync(path, want)
      console.log(`wrote ${path}`)
    }
  }
}
