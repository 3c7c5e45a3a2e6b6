import { approval } from './approval.js';
import { budget } from './budget.js';
import { cooldown } from './cooldown.js';
import { duplicate } from './duplicate.js';
import { humanAck } from './human-ack.js';
import { loop } from './loop.js';
import { pause } from './pause.js';
import { resolved } from './resolved.js';
import type { Gate, GateContext, GateResult } from './types.js';

/**
 * The checks before a run acts, in order, called from one place (the remediation worker, under the
 * target lock). Cheap, certain refusals first; approval late, so nobody is asked about a run a
 * pause or a quarantine would stop anyway; the budget last, because checking it takes a slot. A dry
 * run is gated too: it shows what would happen, and a pause stops dry runs as well.
 * A new gate is one file here and one line in this list.
 */
export const GATES: readonly Gate[] = [duplicate, cooldown, pause, loop, humanAck, resolved, approval, budget];

/** The first gate that holds the run back, or undefined when it may act. */
export async function runGates(c: GateContext, gates: readonly Gate[] = GATES): Promise<(GateResult & object & { gate: string }) | undefined> {
  for (const g of gates) {
    const r = await g.check(c);
    if (r) return { ...r, gate: g.name };
  }
  return undefined;
}

export type { Gate, GateContext, GateResult, Skip, Wait, Done } from './types.js';
