// Argument parsing of k8stail, through citty's runCommand exactly as main.ts runs it (no process.exit).
import { runCommand } from 'citty'
import t from 'tap'
import { createTailCommand, helpAppendix } from '../cli/commands/tail.ts'
import { ExitCodes } from '../cli/errors.ts'
import type { TailOptions } from '../cli/options.ts'
import { parseDuration } from '../cli/options.ts'

function sink(isTTY = false) {
  const chunks: string[] = []
  return {
    isTTY,
    chunks,
    write: (c: string | Uint8Array) => chunks.push(Buffer.from(c).toString()),
    text: () => chunks.join(''),
  }
}

// Runs `k8stail <rawArgs>` and returns the options it would stream with (or the exit code of a usage error).
async function parse(rawArgs: string[], tty = false) {
  const stdout = sink(tty)
  const stderr = sink()
  let seen: TailOptions | undefined
  const cmd = createTailCommand({
    stdout,
    stderr,
    signal: new AbortController().signal,
    run: async (o) => {
      seen = o
      return ExitCodes.Ok
    },
  })
  const { result } = await runCommand(cmd, { rawArgs })
  return { code: result as number, options: seen, stdout: stdout.text(), stderr: stderr.text() }
}

t.test('the original flags keep their meaning and defaults', async (t) => {
  const { code, options } = await parse(['default/flow1'])
  t.equal(code, 0)
  t.match(options, {
    flowNamespace: 'default',
    flowName: 'flow1',
    flowKind: 'Flow',
    serviceNamespace: 'log-socket',
    service: 'log-socket',
    port: '10001',
    serviceScheme: 'http',
    token: undefined,
    listenAddr: undefined,
    output: 'raw', // stdout is not a TTY
    reconnect: true,
    leaseDurationSeconds: 30,
    verbosity: 0,
  })
  const short = await parse([
    '-t',
    'tok',
    '-c',
    '-n',
    'logging',
    '-s',
    'relay',
    '-p',
    'stream',
    '-v',
    '2',
    'ctl/all',
  ])
  t.match(short.options, {
    token: 'tok',
    flowKind: 'ClusterFlow',
    serviceNamespace: 'logging',
    service: 'relay',
    port: 'stream',
    verbosity: 2,
    flowNamespace: 'ctl',
    flowName: 'all',
  })
  // pflag allowed flags after the positional: so do we.
  const after = await parse(['default/flow1', '--token=abc', '--listen-addr', '10.0.0.1:10001'])
  t.match(after.options, { token: 'abc', listenAddr: '10.0.0.1:10001', flowName: 'flow1' })
})

t.test('new flags', async (t) => {
  const { options } = await parse([
    'ns/f',
    '--kubeconfig',
    '/tmp/kc',
    '--context',
    'prod',
    '-o',
    'json',
    '--grep',
    'err(or)?',
    '--exclude',
    'health',
    '--fields',
    'kubernetes.pod_name,log',
    '--where',
    'level == error',
    '--sample',
    '10%',
    '--sample-by',
    'trace_id',
    '--pod-rate',
    '50',
    '--for',
    '1m30s',
    '--count',
    '5',
    '--tail',
    '100',
    '--attach',
    'shared-tap',
    '--no-reconnect',
    '--lease-duration',
    '45s',
    '--service-scheme',
    'https',
  ])
  t.match(options, {
    kubeconfig: '/tmp/kc',
    context: 'prod',
    output: 'json',
    forMs: 90_000,
    count: 5,
    tail: 100,
    attach: 'shared-tap',
    reconnect: false,
    leaseDurationSeconds: 45,
    serviceScheme: 'https',
    fields: [['kubernetes', 'pod_name'], ['log']],
  })
  t.same(
    options?.selection,
    {
      where: 'level == error',
      grep: 'err(or)?',
      exclude: 'health',
      fields: ['kubernetes.pod_name', 'log'],
      sample: { percent: 10, by: 'trace_id' },
      podRate: 50,
    },
    'the selection the relay is sent',
  )
  t.equal((await parse(['ns/f'])).options?.selection, undefined, 'no selection flags: none sent')
  t.equal((await parse(['ns/f'], true)).options?.output, 'pretty', 'pretty by default on a TTY')
  t.equal((await parse(['ns/f', '-v'])).options?.verbosity, 1, '-v alone is 1')
})

t.test('the syslog-ng kinds: --syslog-ng (with -c for the cluster flow) or --kind', async (t) => {
  const kind = async (...args: string[]) => (await parse([...args, 'ns/f'])).options?.flowKind
  t.equal(await kind('--syslog-ng'), 'SyslogNGFlow')
  t.equal(await kind('--syslog-ng', '-c'), 'SyslogNGClusterFlow')
  t.equal(await kind('-c', '--syslog-ng'), 'SyslogNGClusterFlow', 'in any order')
  t.equal(await kind('--clusterflow'), 'ClusterFlow', 'the original -c is unchanged')
  t.equal(await kind('--kind', 'SyslogNGClusterFlow'), 'SyslogNGClusterFlow')
  t.equal(await kind('--kind', 'syslogngflow'), 'SyslogNGFlow', 'any case')
  t.equal(await kind('--kind=ClusterFlow'), 'ClusterFlow')
  t.equal(await kind('--kind', 'Flow'), 'Flow')
})

t.test('bad input: one line on stderr and exit code 1', async (t) => {
  const cases: [string[], RegExp][] = [
    [[], /no flow given: ns\/name expected/],
    [['flow1'], /invalid flow reference "flow1": ns\/name expected/],
    [['a/b/c'], /invalid flow reference "a\/b\/c"/],
    [['Default/flow'], /invalid namespace "Default"/],
    [['ns/f', '-o', 'yaml'], /-o\/--output must be raw, pretty, json, logfmt or template, got "yaml"/],
    [['ns/f', '-o', 'template'], /-o template needs --template/],
    [['ns/f', '-o', 'json', '--template', '{{seq}}'], /--template goes with -o template, not -o json/],
    [['ns/f', '--template', '{{record message}}'], /--template: invalid placeholder \{\{record message\}\}/],
    [['ns/f', '--for', 'soon'], /--for: invalid duration "soon"/],
    [['ns/f', '--count', '-3'], /--count: a whole number expected/],
    [['ns/f', '--count', '0'], /--count: must be at least 1/],
    [['ns/f', '--grep', '('], /--grep: invalid regular expression/],
    [['ns/f', '--grep', '(a)\\1'], /--grep: regular expression needs backtracking/],
    [['ns/f', '--fields', 'a..b'], /--fields: expected a key after "\." at column 3, near '\.b'/],
    [
      ['ns/f', '--where', 'level = error'],
      /^k8stail: --where: expected an operator: .* at column 7, near '= error'\n$/,
    ],
    [['ns/f', '--where', 'a in [x'], /--where: unterminated set: expected \]/],
    [['ns/f', '--sample', 'lots'], /--sample: a percentage expected \(e\.g\. 10%\), got "lots"/],
    [['ns/f', '--sample', '0%'], /--sample: a percentage between 0\.001 and 100 expected/],
    [['ns/f', '--sample-by', 'trace_id'], /--sample-by needs --sample/],
    [['ns/f', '--sample', '5', '--sample-by', 'a.'], /--sample-by: expected a key after "\."/],
    [['ns/f', '--pod-rate', '0'], /--pod-rate: must be at least 1/],
    [['ns/f', '--lease-duration', '2s'], /--lease-duration must be between 10s and 1h/],
    [['ns/f', '--service-scheme', 'ftp'], /--service-scheme must be http or https/],
    [['ns/f', '--attach', 'Not_A_Name'], /--attach: invalid LogTap name/],
    [
      ['ns/f', '--kind', 'Output'],
      /--kind must be one of Flow, ClusterFlow, SyslogNGFlow, SyslogNGClusterFlow, got "Output"/,
    ],
    [['ns/f', '--kind', 'SyslogNGFlow', '-c'], /--kind names the flow kind by itself/],
    [['ns/f', '--kind', 'Flow', '--syslog-ng'], /--kind names the flow kind by itself/],
  ]
  for (const [args, message] of cases) {
    const r = await parse(args)
    t.equal(r.code, ExitCodes.Usage, `${args.join(' ')} exits 1`)
    t.equal(r.options, undefined, `${args.join(' ')} does not run`)
    t.match(r.stderr, message)
    t.match(r.stderr, /^k8stail: [^\n]+\n$/, 'exactly one line')
  }
})

t.test('version sub-command', async (t) => {
  const r = await parse(['version'])
  t.equal(r.code, 0)
  t.equal(r.options, undefined)
  t.match(r.stdout, /^k8stail \d+\.\d+\.\d+\n$/)
})

t.test('help lists commands, exit codes and examples', async (t) => {
  const help = helpAppendix()
  t.match(help, /version\s+Print the k8stail version/)
  for (const code of ['0', '1', '2', '3', '4', '5']) t.match(help, new RegExp(`\\n  ${code}\\s+\\S`))
  t.match(help, /k8stail default\/flow1/)
})

t.test('durations', async (t) => {
  t.equal(parseDuration('30', '--for'), 30_000)
  t.equal(parseDuration('500ms', '--for'), 500)
  t.equal(parseDuration('1h2m3s', '--for'), 3_723_000)
  t.equal(parseDuration('1.5m', '--for'), 90_000)
  t.throws(() => parseDuration('5 m', '--for'), /invalid duration/)
  t.throws(() => parseDuration('', '--for'), /invalid duration/)
  t.throws(() => parseDuration('3d', '--for'), /invalid duration/)
})
