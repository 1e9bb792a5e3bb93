// The walls of the house, checked by `npm run lint` (depcruise). Each rule says which wall it keeps;
// its `comment` is what a violation prints, so it says why the wall is there and how to stay inside.
// Paths are relative to the repository root. Unused dependencies, exports and files: see knip.jsonc.

const CORE_IO = [
  // the I/O, logging and metrics libraries the pure desired-state core must never reach
  '(^|/)node_modules/@kubernetes/client-node/',
  '(^|/)node_modules/fastify/',
  '(^|/)node_modules/@fastify/',
  '(^|/)node_modules/ws/',
  '(^|/)node_modules/pino/',
  '(^|/)node_modules/prom-client/',
  // node builtins appear without their node: prefix
  '^(net|http|https|http2|tls|dgram|fs|fs/promises|child_process)$',
]

// The relay's ports: the modules that declare what the relay needs from Kubernetes, which the
// adapters in controller/relay/kube/ implement. A new port module is added here, nothing else.
const RELAY_PORTS = '^controller/relay/(options|tap-directory|access|tap-status)[.]ts$'

// The modules through which test code starts or joins the real control plane (or its test host).
// test/support/real-pipeline.ts is the real parts' gate: it joins the run's cluster, so only cluster
// tests may import it.
const CLUSTER_MODULES = '^(local-cluster/(cluster|stack|test-host)|test/support/real-pipeline)[.]ts$'

export default {
  forbidden: [
    // Wall: no import circles anywhere (type-only imports count: a circle of types is still a knot).
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'This import closes a circle. Modules in a circle cannot be read, tested or moved apart: move ' +
        'the shared piece (often a type) into a module both can import, or invert the dependency.',
      from: {},
      to: { circular: true },
    },

    // Wall: api/ is the shared contract of k8stail, the controller and the relay; it imports nothing of theirs.
    {
      name: 'api-imports-only-typebox-and-node',
      severity: 'error',
      comment:
        'api/ is the contract k8stail, the relay and the controller share: it may import only api/, ' +
        'typebox and node builtins. Move what it needs into api/ or pass it in.',
      from: { path: '^api/' },
      to: {
        pathNot: ['^api/', '(^|/)node_modules/typebox/'],
        dependencyTypesNot: ['core'],
      },
    },

    // Wall: typebox (the schema builder) stays in the schema modules; the relay and k8stail only
    // need the types derived from them.
    {
      name: 'schemas-load-only-where-needed',
      severity: 'error',
      comment:
        'typebox and the api/*-schema.ts modules are for the CRD generator and the types: loading ' +
        'them costs every process ~7 MB of memory and startup time. Import their types with ' +
        '`import type` (api/logtap.ts and api/selection.ts re-export them); validate with the api/ ' +
        'functions (parseSelection, …).',
      from: { path: '^(api|cli|controller/relay)/', pathNot: '^api/[^/]+-schema[.]ts$' },
      to: {
        path: ['(^|/)node_modules/typebox/', '^api/[^/]+-schema[.]ts$'],
        dependencyTypesNot: ['type-only'],
      },
    },

    // Wall: k8stail (cli/) is a separate package built from cli/ and api/ only.
    {
      name: 'cli-imports-only-api-cli-and-packages',
      severity: 'error',
      comment:
        'k8stail ships dist/cli and dist/api only (package.json "files"): cli/ may import cli/, api/, ' +
        'node builtins and the packages in the root package.json "dependencies". Shared knowledge ' +
        'belongs in api/.',
      from: { path: '^cli/' },
      to: {
        pathNot: ['^(api|cli)/', '(^|/)node_modules/'],
        dependencyTypesNot: ['core'],
      },
    },

    // Wall: what ships (api, controller, cli) never depends on the development tree.
    {
      name: 'production-imports-no-dev-tree',
      severity: 'error',
      comment:
        'api/, controller/ and cli/ are what the image and the k8stail package carry; test/, scripts/ ' +
        'and local-cluster/ are not there. Move the shared piece into the product (or into api/).',
      from: { path: '^(api|controller|cli)/' },
      to: { path: '^(test|scripts|local-cluster)/' },
    },

    // Wall: the in-cluster program (the image: dist/api + dist/controller) never depends on k8stail.
    {
      name: 'controller-imports-no-cli',
      severity: 'error',
      comment:
        'The image carries dist/api and dist/controller only: controller/ may not import cli/. ' +
        'What both need belongs in api/.',
      from: { path: '^controller/' },
      to: { path: '^cli/' },
    },

    // Wall: the process root (controller/program/) sits on top; nothing below imports it.
    {
      name: 'only-program-imports-program',
      severity: 'error',
      comment:
        'controller/program/ is the process root that wires the reconciler, the relay and the edges; ' +
        'they must not import it back. Pass what they need (config values, callbacks) in from program/.',
      from: { path: '^controller/', pathNot: '^controller/program/' },
      to: { path: '^controller/program/' },
    },

    // Wall: the reconciler and the relay never import each other; only controller/program/ wires them.
    {
      name: 'reconciler-and-relay-are-strangers',
      severity: 'error',
      comment:
        'controller/reconciler/ and controller/relay/ (with relay/kube/) are separate concerns: neither ' +
        'imports the other. Only controller/program/ wires them; what both need is in api/ or controller/kube/.',
      from: { path: '^controller/(reconciler|relay)/' },
      to: { path: '^controller/(reconciler|relay)/', pathNot: '^controller/$1/' },
    },

    // Wall: the client-node edges (controller/kube/) are below the reconciler and the relay.
    {
      name: 'kube-edges-import-no-reconciler-or-relay',
      severity: 'error',
      comment:
        'controller/kube/ holds the Kubernetes edges the reconciler and the relay both use (client, ' +
        'informers, work queue, leader election, events, object shapes): it imports api/, itself and ' +
        'packages only, never controller/reconciler/ or controller/relay/. Move the shared piece down ' +
        'into controller/kube/ (or api/) or pass it in.',
      from: { path: '^controller/kube/' },
      to: { path: '^controller/(reconciler|relay)/' },
    },

    // Wall: the relay's Kubernetes adapters (controller/relay/kube/) implement the relay's ports and
    // import nothing else of the relay.
    {
      name: 'relay-kube-imports-only-relay-ports',
      severity: 'error',
      comment:
        'controller/relay/kube/ adapts Kubernetes to the relay: from the relay it may import only the ' +
        'port modules it implements (options.ts, tap-directory.ts, access.ts, tap-status.ts under controller/relay/; ' +
        'see RELAY_PORTS in .dependency-cruiser.mjs). A type the ports need lives in a port module, ' +
        'not in the relay module that uses it.',
      from: { path: '^controller/relay/kube/' },
      to: { path: '^controller/relay/', pathNot: ['^controller/relay/kube/', RELAY_PORTS] },
    },
    {
      name: 'relay-kube-imports-ports-as-types-only',
      severity: 'error',
      comment:
        'controller/relay/kube/ implements the relay ports; it needs their types (import type), not ' +
        'relay code at run time. Pass values in from controller/program/.',
      from: { path: '^controller/relay/kube/' },
      to: { path: RELAY_PORTS, dependencyTypesNot: ['type-only'] },
    },

    // Wall: the desired-state core is pure: plain functions of observed state, no I/O, logging or metrics.
    {
      name: 'desired-core-is-pure',
      severity: 'error',
      comment:
        'controller/reconciler/desired/ computes desired state as plain functions of observed state: ' +
        'it must not reach (even through a helper) the Kubernetes client, fastify, ws, pino, prom-client ' +
        'or node networking/filesystem/process modules. Do the I/O in the reconciler or an edge and ' +
        'pass the data in.',
      from: { path: '^controller/reconciler/desired/' },
      to: { path: CORE_IO, reachable: true },
    },

    // Wall: the embedded local cluster is product (the demo runs on it); it never imports tests.
    {
      name: 'local-cluster-imports-no-tests',
      severity: 'error',
      comment:
        'local-cluster/ is used by the demo, the bench and the tests: it may not import test/. ' +
        'Move the piece into local-cluster/.',
      from: { path: '^local-cluster/' },
      to: { path: '^test/' },
    },
    // Wall: the demo and the bench stand on the product and local-cluster/, not on the test harness.
    {
      name: 'scripts-import-no-tests',
      severity: 'error',
      comment:
        'scripts/ (demo, bench, gen-crd) may not import test/: what they share with the tests belongs ' +
        'in local-cluster/ (or the product).',
      from: { path: '^scripts/' },
      to: { path: '^test/' },
    },
    // Wall: a test file is never imported; shared test code lives in test/support/.
    {
      name: 'no-importing-test-files',
      severity: 'error',
      comment:
        'A *.test.ts file is a tap entry point, not a library: move the shared code into test/support/.',
      from: {},
      to: { path: '[.]test[.]ts$' },
    },

    // Habit: `npm run test:unit` runs every test file except *.cluster.test.ts, so a test that starts or
    // joins the real control plane must say so in its name, and only test files (or the runner) may do it.
    {
      name: 'cluster-tests-are-named-so',
      severity: 'error',
      comment:
        'This test code starts or joins the real control plane (getCluster, startCluster, the stack or ' +
        'the test host). Only a test file named *.cluster.test.ts may do that (`npm run test:unit` leaves ' +
        'those out), or test/support/run-tests.ts; test helpers take the TestCluster as a parameter ' +
        '(import type).',
      from: {
        path: '^test/',
        pathNot: ['[.]cluster[.]test[.]ts$', '^test/support/(run-tests|real-pipeline)[.]ts$'],
      },
      to: { path: CLUSTER_MODULES, dependencyTypesNot: ['type-only'] },
    },

    // Wall: every package a module imports is declared in the package.json nearest to it
    // (controller/package.json for controller/, the root one for everything else).
    {
      name: 'no-undeclared-packages',
      severity: 'error',
      comment:
        'This package is not declared in the package.json nearest to the importing file: ' +
        'controller/package.json for controller/ (what the image carries), the root package.json for ' +
        'api/, cli/ (k8stail) and the development tree. Declare it there, with an exact version ' +
        '(the same version wherever it is declared).',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    // Wall: k8stail's code uses only what its package installs ("dependencies", not "devDependencies").
    {
      name: 'shipped-code-imports-no-dev-dependencies',
      severity: 'error',
      comment:
        'api/ and cli/ ship in the k8stail package, which installs only the root "dependencies": ' +
        'a devDependency is not there. Move the package to "dependencies" (if k8stail really needs it).',
      from: { path: '^(api|cli)/' },
      to: {
        dependencyTypes: ['npm-dev'],
        dependencyTypesNot: ['type-only'],
        pathNot: '(^|/)node_modules/@types/',
      },
    },
    // Wall: every import lands on a file or an installed package (the rules above can only judge those).
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'This import resolves to nothing on disk: a typo, a moved file, or an undeclared package.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: '(^|/)node_modules/' },
    // Type-only imports are walls too (and circles of types are circles).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // Each module's packages are checked against the package.json nearest to it, not a merge.
    combinedDependencies: false,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.d.ts', '.json'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
  },
}
