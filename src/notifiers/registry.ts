import type { Config } from '../config.js';
import type { AuditStore } from '../audit/store.js';
import type { Logger } from '../log.js';
import type { Notifier } from './types.js';
import type { Pool } from 'pg';

/** The notifiers the configuration enables; each runs on its own queue. */
export function buildNotifiers(_config: Config, _deps: { audit: AuditStore; pool: Pool; schema: string; env: NodeJS.ProcessEnv; log: Logger }): Notifier[] {
  return [];
}
