import type { Problem, SourcePositions } from './problems.js';
import { fieldPath } from './problems.js';

/**
 * A secret a rule file names: every `*_env` field of a target or a rule (`token_env`, `url_env`,
 * `routing_key_env`) holds the name of an environment variable, read only when it is used. An
 * unset one is otherwise found only when an alert fires, so it is checked at start (a warning)
 * and by `remediator rules check --env`.
 */
export interface SecretRef {
  /** The environment variable's name. */
  variable: string;
  file: string;
  line: number;
  col: number;
  /** `target "image-gen"` or `rule "x"`. */
  subject: string;
  /** The field inside the subject: `status.token_env`, `notify.pagerduty.routing_key_env`. */
  path: string;
}

/** Every `*_env` string field inside `value` (a target's or rule's fields, as written). */
export function findSecrets(value: unknown, o: { pos: SourcePositions; base: (string | number)[]; subject: string }): SecretRef[] {
  const out: SecretRef[] = [];
  const walk = (v: unknown, path: (string | number)[]) => {
    if (Array.isArray(v)) v.forEach((item, i) => walk(item, [...path, i]));
    else if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        if (k.endsWith('_env') && typeof child === 'string') {
          out.push({ variable: child, file: o.pos.file, ...o.pos.at([...o.base, ...path, k]), subject: o.subject, path: fieldPath([...path, k]) });
        } else walk(child, [...path, k]);
      }
    }
  };
  walk(value, []);
  return out;
}

/** What happens when the variable is unset, by the field that names it. */
export function consequence(ref: SecretRef): string {
  return ref.path.endsWith('routing_key_env') ? 'PagerDuty events of this rule are not sent' : 'runs that need it fail with reason missing_secret';
}

/** The secret references whose variable `env` does not set (empty counts as unset, as at run time). */
export function unsetSecrets(refs: readonly SecretRef[], env: NodeJS.ProcessEnv): SecretRef[] {
  return refs.filter((r) => env[r.variable] === undefined || env[r.variable] === '');
}

/** The same as problems, for `rules check --env`. */
export function missingSecrets(refs: readonly SecretRef[], env: NodeJS.ProcessEnv): Problem[] {
  return unsetSecrets(refs, env).map((r) => ({
    file: r.file,
    line: r.line,
    col: r.col,
    subject: r.subject,
    path: r.path,
    message: `environment variable ${r.variable} is not set: ${consequence(r)}`,
  }));
}
