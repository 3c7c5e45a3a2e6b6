import type { Config } from '../config.js';
import type { Logger } from '../log.js';

/**
 * One start-up line when `ADMIN_TOKEN` is unset: the status page (/ui) and the admin API
 * (/api/...) then answer 403, which otherwise nothing at start explains. Receiver processes only
 * (they serve both).
 */
export function sayIfAdminOff(config: Pick<Config, 'ADMIN_TOKEN'>, log: Logger): void {
  if (!config.ADMIN_TOKEN) log.info('status page (/ui) and admin API (/api/runs, /api/pause ...) are off: ADMIN_TOKEN is not set');
}
