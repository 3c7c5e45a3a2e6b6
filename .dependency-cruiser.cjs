/**
 * The layers of src/, bottom to top (README: How the code is laid out). An import may only point
 * down (or within its own layer); no cycles anywhere. `npm test` runs this first
 * (`npm run lint:deps`), so a change that runs back up fails CI with the name of the rule it breaks.
 *
 *   core                      the alert, the run, errors, durations, deadlines, text, redaction
 *   infra                     log.ts, metrics.ts, config.ts
 *   rules                     pure: the rule table, given the action catalog
 *   store, redis              all SQL; all Redis state (stream, queues, locks, safety, outbox)
 *   remediations              one file per remediation
 *   run                       the journal, gates, execute, operator actions, lanes, verdicts
 *   notifiers                 follow the journal: Slack, PagerDuty
 *   workers                   intake, remediation, notification, verify
 *   receivers, ui, reconcile, cli   the edges: HTTP, status page, Alertmanager API, command line
 *   root                      app.ts, service.ts, main.ts, components.ts, lifecycle.ts, http-server.ts
 */
const layer = {
  core: '^src/core/',
  infra: '^src/(log|metrics|config)\\.ts$',
  rules: '^src/rules/',
  store: '^src/store/',
  redis: '^src/redis/',
  remediations: '^src/remediations/',
  run: '^src/run/',
  notifiers: '^src/notifiers/',
  workers: '^src/workers/',
  edges: '^src/(receivers|ui|reconcile|cli)/|^src/cli\\.ts$',
  root: '^src/(app|service|main|components|lifecycle|http-server)\\.ts$',
};
const order = ['core', 'infra', 'rules', 'store', 'redis', 'remediations', 'run', 'notifiers', 'workers', 'edges', 'root'];
/** store and redis are one level: neither may import the other. */
const sameLevel = { store: ['redis'], redis: ['store'] };

const forbidden = order.flatMap((name, i) => {
  const above = [...order.slice(i + 1), ...(sameLevel[name] ?? [])];
  if (above.length === 0) return [];
  return [{
    name: `${name}-points-down`,
    comment: `${name} may only import from layers below it (${order.slice(0, i).join(', ') || 'none of ours'}): it imports ${above.join(' or ')}. Move the shared piece down (README: How the code is laid out).`,
    severity: 'error',
    from: { path: layer[name] },
    to: { path: above.map((a) => layer[a]).join('|') },
  }];
});

module.exports = {
  forbidden: [
    ...forbidden,
    {
      name: 'core-imports-nothing-of-ours',
      comment: 'src/core is the domain kernel: it imports nothing else of ours.',
      severity: 'error',
      from: { path: layer.core },
      to: { path: '^src/', pathNot: layer.core },
    },
    {
      name: 'no-circular',
      comment: 'A cycle of imports: break it by moving the shared piece down a layer.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-orphans',
      comment: 'A module nothing imports (dead code), apart from the entry points.',
      severity: 'error',
      from: { orphan: true, path: '^src/', pathNot: ['^src/main\\.ts$', '^src/cli\\.ts$', '\\.d\\.ts$'] },
      to: {},
    },
    {
      name: 'tests-do-not-reach-shared',
      comment: 'A clone has no ../shared: tests and benchmarks read only files inside the repository.',
      severity: 'error',
      from: { path: '^(test|bench)/' },
      to: { path: '^\\.\\./shared|^shared/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^(src|test|bench)/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
