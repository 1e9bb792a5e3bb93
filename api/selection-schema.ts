// The selection as a typebox schema, for the LogTap CRD (scripts/gen-crd.ts) and the SelectionSpec
// type. Apart from selection.ts so that the relay and k8stail, which validate with parseSelection,
// never load typebox (its type builder alone is ~7 MB of a process's memory).
import Type, { type Static } from 'typebox'
import {
  MAX_FIELDS,
  MAX_PATH_LENGTH,
  MAX_POD_RATE,
  MAX_REGEX_LENGTH,
  MAX_WHERE_LENGTH,
  MIN_SAMPLE_PERCENT,
} from './selection-limits.ts'

// The selection as written: in a LogTap's spec, and as JSON on the stream request.
export const SelectionSpec = Type.Object(
  {
    grep: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_REGEX_LENGTH,
        description: "Only records whose line (the record's JSON text) matches this regex.",
      }),
    ),
    exclude: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_REGEX_LENGTH,
        description: 'Leave out records whose line matches this regex.',
      }),
    ),
    where: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_WHERE_LENGTH,
        description:
          'Predicates on the record joined by &&: path, !path, path == v, path != v, path in [a, b], path not in [...], path =~ regex, path !~ regex. Example: kubernetes.labels["app.kubernetes.io/name"] == checkout && level in [error, warn]',
      }),
    ),
    fields: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: MAX_PATH_LENGTH }), {
        minItems: 1,
        maxItems: MAX_FIELDS,
        description: 'Projection: only these field paths of each record, e.g. message, kubernetes.pod_name.',
      }),
    ),
    sample: Type.Optional(
      Type.Object(
        {
          percent: Type.Number({
            minimum: MIN_SAMPLE_PERCENT,
            maximum: 100,
            description: 'Share of records kept, in percent.',
          }),
          by: Type.Optional(
            Type.String({
              minLength: 1,
              maxLength: MAX_PATH_LENGTH,
              description:
                'Keep or leave out every record with the same value of this field together (e.g. trace_id); records without it are sampled uniformly.',
            }),
          ),
        },
        { description: 'Sampling: records left out are reported to listeners, summarised.' },
      ),
    ),
    podRate: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_POD_RATE,
        description:
          'At most this many records per second from any one pod, so one noisy pod cannot crowd out the others; the rest are reported to listeners, summarised.',
      }),
    ),
  },
  {
    description:
      'Applied by the relay to every record before it is sent (after RBAC), combined (AND) with each listener’s own selection.',
  },
)
export type SelectionSpec = Static<typeof SelectionSpec>
