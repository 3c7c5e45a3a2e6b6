import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pool } from 'pg';
import { inTransaction } from './tx.js';

const migrationsDir = join(dirname(fileURLToPath(import.meta.url)), 'migrations');

/** Quotes a schema name; config.ts already restricts it to a plain identifier. */
export function ident(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad SQL identifier ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/**
 * Applies src/store/migrations/NNN-*.sql in order, each once, inside the given schema.
 * Several processes may start at once: a transaction-level advisory lock serialises them.
 * Returns the versions applied by this call.
 */
export async function migrate(pool: Pool, schema: string): Promise<string[]> {
  const files = (await readdir(migrationsDir)).filter((f) => /^\d+-.*\.sql$/.test(f)).sort();
  const s = ident(schema);
  const applied: string[] = [];
  await inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`remediator-migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await client.query<{ version: string }>(`SELECT version FROM ${s}.schema_migrations`)).rows.map((r) => r.version));
    await client.query(`SET LOCAL search_path TO ${s}`);
    for (const f of files) {
      const version = f.replace(/\.sql$/, '');
      if (done.has(version)) continue;
      await client.query(await readFile(join(migrationsDir, f), 'utf8'));
      await client.query(`INSERT INTO ${s}.schema_migrations (version) VALUES ($1)`, [version]);
      applied.push(version);
    }
  });
  return applied;
}
