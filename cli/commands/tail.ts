// The root command: `k8stail [flags] <ns>/<flow>`; `k8stail version` is routed from here because
// citty would otherwise read the flow reference as an unknown sub-command name.
import { defineCommand, runCommand } from 'citty'
import { EXIT_CODES_HELP, type ExitCode, exitCodeFor, formatError } from '../errors.ts'
import { parseTailOptions, type RawTailArgs } from '../options.ts'
import { runTail, type TailDeps } from '../tail.ts'
import { kubeconfigArgs, outputArgs, relayArgs, selectionArgs, verbosityArgs } from './_shared.ts'
import { packageVersion, versionCommand } from './version.ts'

const tailArgs = {
  flow: {
    type: 'positional',
    required: false,
    valueHint: 'ns/name',
    description: 'The Flow to tap (with -c: the ClusterFlow, ns = its control namespace)',
  },
  clusterflow: { type: 'boolean', alias: 'c', description: 'Tap a ClusterFlow instead of a Flow' },
  'syslog-ng': {
    type: 'boolean',
    description: 'Tap a SyslogNGFlow (with -c: a SyslogNGClusterFlow), for a Logging run by syslog-ng',
  },
  kind: {
    type: 'string',
    valueHint: 'kind',
    description: 'The flow kind by name: Flow, ClusterFlow, SyslogNGFlow or SyslogNGClusterFlow',
  },
  ...kubeconfigArgs,
  ...relayArgs,
  ...outputArgs,
  ...selectionArgs,
  for: {
    type: 'string',
    valueHint: 'duration',
    description: 'Stop after streaming this long (e.g. 30s, 5m, 1h)',
  },
  count: { type: 'string', valueHint: 'n', description: 'Stop after printing n records' },
  tail: { type: 'string', valueHint: 'n', description: 'First replay up to n recent records the relay kept' },
  attach: {
    type: 'string',
    valueHint: 'logtap',
    description: 'Stream from this existing LogTap in ns, creating nothing',
  },
  reconnect: {
    type: 'boolean',
    default: true,
    description: 'Reconnect and resume when the connection drops',
    negativeDescription: 'Exit with code 2 when the connection drops',
  },
  'lease-duration': {
    type: 'string',
    valueHint: 'duration',
    description: 'Session heartbeat: the tap is removed this long after k8stail dies (default 30s)',
  },
  ...verbosityArgs,
} as const

const COMMANDS_HELP = [['version', 'Print the k8stail version']] as const

const EXAMPLES_HELP = [
  'k8stail default/flow1                  tap Flow default/flow1 (creates a session LogTap)',
  'k8stail -c logging/all -o json         tap ClusterFlow all in control namespace logging',
  'k8stail --syslog-ng default/flow1      tap SyslogNGFlow default/flow1 (-c: a SyslogNGClusterFlow)',
  'k8stail default/flow1 --attach shared  stream from the existing LogTap default/shared',
  'k8stail default/flow1 -t "$(kubectl create token viewer -n default)" --grep error --for 5m',
  "k8stail default/flow1 --where 'kubernetes.labels.app == web && level == error' --fields message",
  'k8stail default/flow1 --sample 5% --sample-by trace_id --pod-rate 50',
] as const

export type TailCommandDeps = Omit<TailDeps, 'env'> & {
  env?: TailDeps['env']
  run?: typeof runTail // what runs the parsed options (tests look at them instead)
}

export function createTailCommand(deps: TailCommandDeps) {
  return defineCommand({
    meta: {
      name: 'k8stail',
      version: packageVersion(),
      description: 'Watch, live, the records flowing through a logging-operator flow (fluentd or syslog-ng)',
    },
    args: tailArgs,
    async run({ args }): Promise<ExitCode> {
      if (args.flow === 'version' && args._.length <= 1) {
        await runCommand(versionCommand, { rawArgs: args._.slice(1), data: deps })
        return 0
      }
      try {
        const options = parseTailOptions(args as RawTailArgs, deps.stdout.isTTY === true)
        return await (deps.run ?? runTail)(options, { ...deps, env: deps.env ?? {} })
      } catch (err) {
        deps.stderr.write(`${formatError(err)}\n`)
        return exitCodeFor(err)
      }
    },
  })
}

// Sections citty's usage does not have; appended by main.ts and checked by the tests.
export function helpAppendix(): string {
  const cols = (rows: readonly (readonly [string, string])[]) => rows.map(([a, b]) => `  ${a.padEnd(8)} ${b}`)
  return [
    'COMMANDS',
    '',
    ...cols(COMMANDS_HELP),
    '',
    'EXIT CODES',
    '',
    ...cols(EXIT_CODES_HELP),
    '',
    'EXAMPLES',
    '',
    ...EXAMPLES_HELP.map((e) => `  ${e}`),
    '',
  ].join('\n')
}
