import type { Config } from '../config.js';
import type { Logger } from '../log.js';

/**
 * One start-up line when the status page (/ui) and the API (/api) are off or read-only for want of
 * a token: they then answer 403, which otherwise nothing at start explains. Receiver processes
 * only (they serve both). See src/receivers/roles.ts for who may do what.
 */
export function sayIfAdminOff(config: Pick<Config, 'ADMIN_TOKEN' | 'VIEWER_TOKEN'>, log: Logger): void {
  if (!config.ADMIN_TOKEN && !config.VIEWER_TOKEN) log.info('status page (/ui) and admin API (/api) are off: neither ADMIN_TOKEN nor VIEWER_TOKEN is set');
  else if (!config.ADMIN_TOKEN) log.info('status page (/ui) and admin API (/api) are read-only: ADMIN_TOKEN is not set (pause, resume, lift and approve need it)');
}
