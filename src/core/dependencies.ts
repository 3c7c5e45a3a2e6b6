import { DependencyError } from './errors.js';
import { redactUrl } from './redact.js';

/**
 * PostgreSQL and Redis failures in plain words: which dependency, which variable points at it,
 * what went wrong and what to do. At start either one down stops the process (exit 1) with
 * this message; later, /readyz uses the same words.
 */

const NETWORK = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET']);

/** `err` from node-postgres, said with the dependency, its variable and the fix. */
export function postgresError(err: unknown, url: string, doing?: string): DependencyError {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  // Node's AggregateError (several addresses for "localhost", all refused) has no message, only a code.
  const text = (typeof e.message === 'string' && e.message) || code || String(err);
  const where = `PostgreSQL at ${redactUrl(url)} (DATABASE_URL)`;
  // SQLSTATEs: https://www.postgresql.org/docs/current/errcodes-appendix.html
  if (code === '28P01' || code === '28000') return new DependencyError('PostgreSQL', `${where} refused the login: ${text}`, 'fix the user or password in DATABASE_URL');
  if (code === '3D000') return new DependencyError('PostgreSQL', `${where}: ${text}`, 'create that database, or name an existing one in DATABASE_URL');
  if (NETWORK.has(code) || code.startsWith('08') || /timeout|terminated|connect/i.test(text)) {
    return new DependencyError('PostgreSQL', `${where} is not reachable: ${text}`, 'start PostgreSQL, or set DATABASE_URL to where it runs');
  }
  if (code === '42501') {
    return new DependencyError('PostgreSQL', `${where}: ${doing ? `${doing}: ` : ''}${text}`, 'let the user create the schema (GRANT CREATE ON DATABASE), or create it for them beforehand');
  }
  return new DependencyError('PostgreSQL', `${where}: ${doing ? `${doing}: ` : ''}${text}${code ? ` (${code})` : ''}`, 'see the PostgreSQL server log');
}

/** A Redis connection error (ioredis), said the same way. */
export function redisError(err: unknown, url: string): DependencyError {
  const code = (err as { code?: unknown }).code;
  const text = (err instanceof Error && err.message) || (typeof code === 'string' && code) || String(err);
  const where = `Redis at ${redactUrl(url)} (REDIS_URL)`;
  if (/NOAUTH|WRONGPASS|invalid password|AUTH/i.test(text)) {
    return new DependencyError('Redis', `${where} refused the login: ${text}`, 'fix the user or password in REDIS_URL');
  }
  return new DependencyError('Redis', `${where} is not reachable: ${text}`, 'start Redis, or set REDIS_URL to where it runs');
}

/**
 * Redis' state for /readyz, in words. ioredis itself says "Stream isn't writeable and
 * enableOfflineQueue options is false" when a fail-fast connection is down, which tells an
 * operator nothing.
 */
export function redisDown(status: string, lastError: string | undefined): string {
  const why = lastError ? `: ${lastError}` : '';
  return `Redis (REDIS_URL) is down: no connection (${status})${why}; webhooks are answered 503 until it is back`;
}
