// The pure parts of the real-pipeline harness: finding blocks in rendered configurations and
// building what fluentd and syslog-ng run. Above all, that nothing the harness runs can send
// anywhere but loopback or the test host. (What the real operator renders is tested against it
// in real-pipeline-operator/-fluentd/-syslog-ng.cluster.test.ts.)
import t from 'tap'
import { harnessConfig } from '../local-cluster/real-pipeline/fluentd.ts'
import {
  flowSection,
  outputBlock,
  outputIds,
  parseFluentdConfig,
} from '../local-cluster/real-pipeline/fluentd-config.ts'
import {
  destinationsOf,
  logPathsTo,
  parseSyslogNgConfig,
  syslogNgHarnessConfig,
} from '../local-cluster/real-pipeline/syslog-ng-config.ts'

// Shaped like logging-operator's rendering (two-space indents, one token per line).
const fluentd = `<source>
  @type forward
  @id main_forward
</source>
<label @9f0c>
  <filter **>
    @type grep
    <exclude>
      key message
      pattern /cart updated/
    </exclude>
  </filter>
  <match **>
    @type copy
    <store>
      @type http
      @id flow:shop:checkout:output:shop:es
      endpoint https://es.example.com:9200/x
    </store>
    <store>
      @type http
      @id flow:shop:checkout:output:shop:tap
      endpoint http://log-socket.log-socket.svc:10000/v1/ingest/shop/x
      <buffer []>
        @type file
        path /buffers/flow:shop:checkout:output:shop:tap.*.buffer
      </buffer>
    </store>
  </match>
</label>
<label @ab12>
  <match **>
    @type null
    @id flow:shop:checkoutx:output:shop:none
  </match>
</label>
`
const opts = { inputPort: 1, rpcPort: 2, bufferRoot: '/tmp/run/buffers', secretDir: '/tmp/run/secret' }
const toRelay = (u: string) => u.replace('log-socket.log-socket.svc', '10.250.0.1')

t.test('fluentd: blocks by @id and a flow’s section', async (t) => {
  t.equal(outputBlock(fluentd, 'flow:shop:checkout:output:shop:tap')?.name, 'store')
  t.equal(outputBlock(fluentd, 'flow:shop:checkout:output:shop:nope'), undefined)
  t.same(outputIds(fluentd), [
    'flow:shop:checkout:output:shop:es',
    'flow:shop:checkout:output:shop:tap',
    'flow:shop:checkoutx:output:shop:none',
  ])
  const section = flowSection(fluentd, 'flow:shop:checkout')
  t.equal(section?.label, '@9f0c')
  t.same(
    section?.stores.map((s) => s.params.get('@id')),
    ['flow:shop:checkout:output:shop:es', 'flow:shop:checkout:output:shop:tap'],
    'its stores in order, not those of a flow whose name only starts the same',
  )
  t.equal(section?.filters.length, 1)
  t.throws(() => parseFluentdConfig('<match **>\n  @type null\n'), /never closed/)
  t.throws(() => parseFluentdConfig('</match>\n'), /unexpected/)
})

t.test('fluentd: the harness config rewrites buffers and endpoints, and refuses other hosts', async (t) => {
  const tap = outputBlock(fluentd, 'flow:shop:checkout:output:shop:tap')!
  const conf = harnessConfig({ outputs: [tap] }, { ...opts, endpoint: toRelay, allowHosts: ['10.250.0.1'] })
  t.match(conf, 'endpoint http://10.250.0.1:10000/v1/ingest/shop/x')
  t.match(conf, 'path /tmp/run/buffers/flow:shop:checkout:output:shop:tap.*.buffer')
  t.match(conf, 'root_dir /tmp/run/buffers')
  t.notMatch(conf, ' /buffers/', 'no path left on the operator’s volume')
  t.doesNotThrow(() => parseFluentdConfig(conf), 'well formed')
  t.throws(
    () => harnessConfig({ outputs: [tap] }, opts),
    /would send to http:\/\/log-socket\.log-socket\.svc:10000.*only to loopback or the test host/,
    'an in-cluster name not mapped: refused',
  )
  const es = outputBlock(fluentd, 'flow:shop:checkout:output:shop:es')!
  t.throws(
    () => harnessConfig({ outputs: [es] }, { ...opts, allowHosts: ['10.250.0.1'] }),
    /would send to https:\/\/es\.example\.com/,
  )
})

const syslogNg = `@version: current

@include "scl.conf"

source "main_input" {
    channel {
        source {
            network(flags("no-parse") port(601) transport("tcp"));
        };
        parser {
            json-parser(prefix("json."));
        };
    };
};

destination "output_shop_es" {
    elasticsearch-http(url("https://es.example.com:9200/_bulk") index("x") type(""));
};

destination "output_shop_tap" {
    http(url("http://log-socket.log-socket.svc:10000/v1/ingest/shop/x") body-suffix("};#") headers("Content-Type: application/x-ndjson"));
};

filter "flow_shop_checkout_ns_filter" {
    match("shop" value("json.kubernetes.namespace_name") type("string"));
};

filter "flow_shop_other_ns_filter" {
    match("shop" value("json.kubernetes.namespace_name") type("string"));
};

# a comment; with a semicolon
log {
    source("main_input");
    filter("flow_shop_checkout_ns_filter");
    log {
        destination("output_shop_es");
    };
    log {
        destination("output_shop_tap");
    };
};

log {
    source("main_input");
    filter("flow_shop_other_ns_filter");
    log {
        destination("output_shop_es");
    };
};
`

t.test('syslog-ng: statements, even with ; and } inside strings', async (t) => {
  const all = parseSyslogNgConfig(syslogNg)
  t.same(
    all.map((s) => `${s.kind}${s.name ? ` ${s.name}` : ''}`),
    [
      'version',
      'include',
      'source main_input',
      'destination output_shop_es',
      'destination output_shop_tap',
      'filter flow_shop_checkout_ns_filter',
      'filter flow_shop_other_ns_filter',
      'log',
      'log',
    ],
  )
  const paths = logPathsTo(syslogNg, 'output_shop_tap')
  t.equal(paths.length, 1)
  t.same(destinationsOf(paths[0]!), ['output_shop_es', 'output_shop_tap'])
})

t.test('syslog-ng: the harness runs one destination and the path to it, on loopback only', async (t) => {
  const conf = syslogNgHarnessConfig(syslogNg, {
    port: 5140,
    destinations: ['output_shop_tap'],
    url: toRelay,
    allowHosts: ['10.250.0.1'],
  })
  t.match(conf, 'port(5140) ip("127.0.0.1")', 'the source listens on loopback only')
  t.match(conf, 'url("http://10.250.0.1:10000/v1/ingest/shop/x")')
  t.notMatch(conf, 'es.example.com', 'other destinations are left out, also from the log path')
  t.notMatch(conf, 'flow_shop_other_ns_filter', 'and so are log paths and filters that do not lead to it')
  t.match(conf, 'filter("flow_shop_checkout_ns_filter")')
  t.same(
    parseSyslogNgConfig(conf).map((s) => s.kind),
    ['version', 'include', 'source', 'destination', 'filter', 'log'],
  )
  t.throws(
    () => syslogNgHarnessConfig(syslogNg, { port: 1, destinations: ['output_shop_tap'] }),
    /would send to http:\/\/log-socket\.log-socket\.svc:10000.*only to loopback or the test host/,
  )
  t.throws(
    () => syslogNgHarnessConfig(syslogNg, { port: 1, destinations: ['nope'] }),
    /no destination "nope"/,
  )
  t.throws(
    () => syslogNgHarnessConfig(syslogNg, { port: 1, destinations: ['output_shop_es'] }),
    /runs http\(\) destinations only/,
    'a driver whose target the harness cannot check is refused',
  )
})
