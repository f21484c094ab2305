/** Lock timeouts retried: DDL that waits for the sessions using a table must not wait for long, nor give up at once. */
import { PUBLICATION_LOCK_TIMEOUT } from '../diff/ddl.js';
import { SQLSTATE } from '../db/sqlstate.js';
import { MirrorsError } from '../errors.js';

/** Attempts at a publication change (or a swap) whose lock waits longer than its lock_timeout (ddl.ts). */
const LOCK_ATTEMPTS = 5;

/**
 * Runs `fn` again after a lock timeout (a session held the table that long) or a deadlock with a session that locks
 * in another order (PostgreSQL cancelled ours), backing off, LOCK_ATTEMPTS times.
 */
export async function retryLockTimeouts(fn: () => Promise<void>, address: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== SQLSTATE.lockNotAvailable && code !== SQLSTATE.deadlockDetected) throw err;
      if (attempt >= LOCK_ATTEMPTS)
        throw new MirrorsError(
          'APPLY_FAILED',
          `${address}: sessions kept the tables it changes busy through ${LOCK_ATTEMPTS} attempts (lock_timeout ${PUBLICATION_LOCK_TIMEOUT} each)`,
          {
            hint: 'find the long-running transaction using them (pg_stat_activity, pg_locks) and apply again once it ends; nothing was changed',
          },
        );
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}
