import type { Remediation } from './types.js';
import { breakerReset } from './breaker-reset.js';
import { idleConnectionKill } from './idle-connection-kill.js';
import { notifyOnly } from './notify.js';
import { numberRotation } from './number-rotation.js';
import { workerRestart } from './worker-restart.js';

/**
 * Every remediation remediator can run, listed explicitly (no auto-discovery), keyed by name.
 * Adding one: write src/remediations/<name>.ts, add it here, add its example to the tests.
 */
export const remediations: readonly Remediation<any, any>[] = [notifyOnly, breakerReset, numberRotation, idleConnectionKill, workerRestart];

export type Registry = ReadonlyMap<string, Remediation<any, any>>;

export function buildRegistry(list: readonly Remediation<any, any>[] = remediations): Registry {
  const map = new Map<string, Remediation<any, any>>();
  const kinds = new Map<string, string>();
  for (const r of list) {
    if (map.has(r.name)) throw new Error(`duplicate remediation name ${r.name}`);
    map.set(r.name, r);
    if (r.targetKind && r.targetSchema) {
      if (kinds.has(r.targetKind)) throw new Error(`target kind ${r.targetKind} has a schema in both ${kinds.get(r.targetKind)} and ${r.name}`);
      kinds.set(r.targetKind, r.name);
    }
  }
  return map;
}

