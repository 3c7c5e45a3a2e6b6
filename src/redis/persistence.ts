import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { withTimeout } from '../core/deadline.js';

/** What Redis keeps across a restart, as its CONFIG says. */
export interface Persistence {
  /** `appendonly yes`: every write is logged (fsync every second by default). */
  aof: boolean;
  /** A non-empty `save`: RDB snapshots at the configured intervals. */
  rdb: boolean;
  save: string;
}

/** CONFIG GET answers a flat [name, value] list (RESP2) or a map (RESP3). */
function configValue(reply: unknown, name: string): string {
  if (Array.isArray(reply)) {
    const i = reply.indexOf(name);
    if (i >= 0 && typeof reply[i + 1] === 'string') return reply[i + 1] as string;
  } else if (reply && typeof reply === 'object' && name in reply) {
    return String((reply as Record<string, unknown>)[name]);
  }
  throw new Error(`CONFIG GET ${name} gave no value`);
}

export async function readPersistence(redis: Redis): Promise<Persistence> {
  const [appendonly, save] = await Promise.all([redis.config('GET', 'appendonly'), redis.config('GET', 'save')]);
  const saveValue = configValue(save, 'save').trim();
  return { aof: configValue(appendonly, 'appendonly') === 'yes', rdb: saveValue !== '', save: saveValue };
}

export interface PersistenceWatch {
  /** The last result; undefined when it could not be checked. */
  current(): Persistence | undefined;
  /** Checks now and logs what it found. */
  check(): Promise<Persistence | undefined>;
}

/**
 * A 2xx to Alertmanager means "this alert is safe in Redis": Alertmanager will not send it again
 * before its repeat_interval (hours). Without persistence a Redis restart drops every accepted
 * alert and queued remediation silently, so this is said loudly at start and after every
 * reconnect (a restarted Redis may run another config). A managed Redis may refuse CONFIG: then
 * it is said that it could not be checked, and nothing else changes.
 * AOF on: fine (with the default `appendfsync everysec` a crash of the machine, not of Redis,
 * loses at most about a second). RDB only: warned, since what was accepted after the last
 * snapshot is lost.
 */
export function watchPersistence(redis: Redis, log: Logger): PersistenceWatch {
  let last: Persistence | undefined;
  const check = async () => {
    try {
      last = await withTimeout(readPersistence(redis), 2000, 'CONFIG GET');
    } catch (err) {
      last = undefined;
      log.warn('could not check Redis persistence (CONFIG GET failed): make sure Redis runs with appendonly yes, or a Redis restart loses every accepted alert', { error: (err as Error).message });
      return last;
    }
    if (last.aof) log.info('redis persistence checked', { appendonly: 'yes', save: last.save });
    else if (last.rdb) {
      log.warn(`REDIS PERSISTS BY RDB SNAPSHOTS ONLY (save "${last.save}"): accepted alerts and queued remediations since the last snapshot are lost if Redis restarts. Set appendonly yes`, { appendonly: 'no', save: last.save });
    } else {
      log.warn('REDIS PERSISTENCE IS OFF (appendonly no, save ""): every accepted alert and queued remediation is lost if Redis restarts, and Alertmanager will not resend them before repeat_interval. Set appendonly yes', { appendonly: 'no', save: '' });
    }
    return last;
  };
  // The first 'ready' is the caller's to check (it may already have passed); later ones are reconnects.
  redis.on('ready', () => void check());
  return { current: () => last, check };
}
