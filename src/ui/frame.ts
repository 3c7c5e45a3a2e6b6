import type { Role } from '../receivers/roles.js';
import type { ReloadResult } from '../rules/reload-status.js';
import type { InForce } from './in-force.js';

/** What every page shows around its body: who reads it, and what holds automation back. */
export interface Frame {
  /** A logged-in person (name, CSRF token for their forms), or a bearer-token script (no name). */
  reader: { role: Role; name?: string; csrf?: string };
  /** Everything in force; `error` when it could not be read (the page says so); undefined: no source. */
  inForce: InForce[] | { error: string } | undefined;
  /** The last rules reload, when it was refused. */
  refusedReload?: ReloadResult;
  /** The table that runs instead, to say so in the banner. */
  table?: { rules: number; loadedAt: Date };
  /** This page's path and query: operator actions come back to it. */
  path: string;
}

/** True when the reader may press operator buttons (a session of an operator: forms need its CSRF token). */
export const operates = (f: Frame): f is Frame & { reader: { csrf: string } } => f.reader.role === 'operator' && f.reader.csrf !== undefined;

