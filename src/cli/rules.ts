import { heldBy } from './replay.js';
import { budgetsFor } from '../run/gates/budget.js';
import { formatDuration } from '../core/duration.js';
import { readFile } from 'node:fs/promises';
import type { Registry } from '../remediations/registry.js';
import type { AlertInfo } from '../core/alert.js';
import { loadRules, type CompiledRule, type RuleTable } from '../rules/load.js';
import { formatProblem, sortProblems } from '../rules/problems.js';
import { missingSecrets, unsetSecrets } from '../rules/secrets.js';
import { decide } from '../rules/table.js';
import { webhookSchema } from '../core/alert.js';
import { parseLabelSet, webhookFor } from './alert.js';

export interface Out {
  out: (line: string) => void;
  err: (line: string) => void;
}

/**
 * `rules check [--env]`: loads the rules exactly as the service does. With `env`, also every
 * secret the rules name must be set there (the environment the service will run with).
 * Problems go to stderr as `file:line:col: ...`, exit 2.
 */
export async function rulesCheck(dir: string, env: NodeJS.ProcessEnv | undefined, registry: Registry, io: Out): Promise<number> {
  const table = await loadRules(dir, registry);
  const summary = `${table.rules.length} rules and ${table.targets.size} targets in ${table.files.length} files (${dir})`;
  if (env) {
    const missing = sortProblems(missingSecrets(table.secrets, env));
    if (missing.length > 0) {
      for (const p of missing) io.err(formatProblem(p));
      const variables = new Set(unsetSecrets(table.secrets, env).map((r) => r.variable));
      io.err(`rules check: the rules are valid, but ${variables.size} secret variable${variables.size === 1 ? '' : 's'} they name ${variables.size === 1 ? 'is' : 'are'} not set here: ${[...variables].sort().join(', ')}`);
      return 2;
    }
    const names = new Set(table.secrets.map((s) => s.variable));
    io.out(`ok: ${summary}; all ${names.size} secret variables they name are set`);
    return 0;
  }
  io.out(`ok: ${summary}`);
  return 0;
}

/**
 * `rules test`: per alert, which rules match, the job each would enqueue and why the others do
 * not match. It only decides: it never enqueues, runs a remediation or calls a target.
 */
export async function rulesTest(
  source: { file?: string; alerts?: string[]; resolved?: boolean },
  dir: string,
  /** json: the whole report; all: every rule that does not match, not only the near misses. */
  show: { json: boolean; all: boolean },
  registry: Registry,
  io: Out,
  /** Today's pauses and quarantines (`--state`, read from Redis); none when not asked. */
  state: SafetyState = { pauses: [], quarantines: [] },
): Promise<number> {
  const table = await loadRules(dir, registry);
  let body: unknown;
  const what = source.file ?? '--alert';
  if (source.file) {
    try {
      body = JSON.parse(await readFile(source.file, 'utf8'));
    } catch (err) {
      io.err(`${source.file}: ${(err as Error).message}`);
      return 2;
    }
  } else {
    body = webhookFor((source.alerts ?? []).map((a) => ({ labels: parseLabelSet(a), status: source.resolved ? 'resolved' : 'firing' })));
  }
  const parsed = webhookSchema.safeParse(body);
  if (!parsed.success) {
    for (const i of parsed.error.issues) io.err(`${what}: ${i.path.join('.') || '(body)'}: ${i.message}`);
    return 2;
  }
  const hook = parsed.data;
  const ctx = { groupKey: hook.groupKey, receiver: hook.receiver, externalURL: hook.externalURL, receivedAt: new Date().toISOString(), dryRun: false };
  const report = hook.alerts.map((a) => {
    const alert: AlertInfo = { fingerprint: a.fingerprint, status: a.status, startsAt: a.startsAt, endsAt: a.endsAt, labels: a.labels, annotations: a.annotations, generatorURL: a.generatorURL };
    const { verdicts, decisions } = decide(table, alert, ctx);
    return {
      alert: { fingerprint: a.fingerprint, status: a.status, labels: a.labels },
      verdicts: verdicts.map((v, i) => ({ ...v, nearMiss: !v.matched && isNearMiss(table.rules[i]!, a.labels) })),
      decisions: decisions.map(({ job, ...d }) => ({ ...d, job: job && { action: job.action, target: job.target, params: job.params, dryRun: job.dryRun }, safety: job && safetyNotes(table, job, state) })),
    };
  });
  if (show.json) {
    io.out(JSON.stringify(report, null, 2));
    return 0;
  }
  for (const r of report) {
    const labels = Object.entries(r.alert.labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',');
    io.out(`alert ${r.alert.labels.alertname ?? '(no alertname)'} ${r.alert.fingerprint} (${r.alert.status}) {${labels}}`);
    for (const d of r.decisions) {
      if (d.kind === 'no_match') io.out('  no rule matches');
      else if (d.kind === 'enqueue') {
        io.out(`  MATCH ${d.rule}: would enqueue ${d.job!.action}${d.job!.target ? ` on ${d.job!.target}` : ''} params=${JSON.stringify(d.job!.params)}${d.job!.dryRun ? ' (dry run)' : ''}`);
        for (const note of d.safety ?? []) io.out(`    ${note}`);
      }
      else io.out(`  MATCH ${d.rule}: ${d.kind.replace('_', ' ')}: ${d.reason}`);
    }
    // With a large table most rules have nothing to do with the alert: by default only the rules
    // that failed on one matcher (a typo in a label value, a missing label) are worth reading.
    const misses = r.verdicts.filter((x) => !x.matched);
    const shown = show.all ? misses : misses.filter((x) => x.nearMiss);
    for (const v of shown) io.out(`  ${v.nearMiss ? 'near miss' : 'no match'} ${v.rule}: ${v.reason}`);
    const hidden = misses.length - shown.length;
    if (hidden > 0) io.out(`  (${hidden} other rule${hidden === 1 ? ' does' : 's do'} not match: --all lists ${hidden === 1 ? 'it' : 'them'})`);
  }
  io.out('(a test only: nothing was enqueued, run or called)');
  return 0;
}

type SafetyState = Parameters<typeof heldBy>[0];

/**
 * A near miss: every matcher of the rule but one holds for these labels. A rule with a single
 * matcher is never one (it would be a near miss of every other alert).
 */
function isNearMiss(rule: CompiledRule, labels: Record<string, string>): boolean {
  const failed = rule.matchers.filter((m) => !m.matches(labels)).length;
  return failed === 1 && rule.matchers.length > 1;
}

/** What the safety gates say about a job: held now (with --state), budgets, approval, resolved handling. */
function safetyNotes(table: RuleTable, job: { rule: string; action: string; target?: string }, state: SafetyState): string[] {
  const rule = table.rules.find((r) => r.spec.name === job.rule)!;
  const notes: string[] = [];
  const held = heldBy(state, job);
  if (held) notes.push(`HELD: would be skipped (${held})`);
  for (const b of budgetsFor(rule, table)) notes.push(`budget: ${b.label}`);
  if (rule.spec.approval?.required) notes.push(`approval: waits for ${rule.spec.approval.approvers.join(', ')} (timeout ${formatDuration(rule.spec.approval.timeout)})`);
  if (rule.spec.run_if_resolved) notes.push('runs even if the alert resolved before it starts');
  return notes;
}
