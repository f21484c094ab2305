/**
 * Transactions and the minimal client surface the catalog readers need. One place for BEGIN / COMMIT /
 * ROLLBACK: a failure rolls back (a broken connection's ROLLBACK error is ignored) and is rethrown.
 */

/** What inspection and status need of a client; tests wrap it to count and check queries. Rows are raw. */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: any[] }>;
}

const BEGIN = {
  'read-write': 'BEGIN',
  /** One consistent picture that can never write (inspection, status). */
  'read-only snapshot': 'BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY',
} as const;

export async function inTransaction<T>(
  db: Pick<Queryable, 'query'>,
  fn: () => Promise<T>,
  mode: keyof typeof BEGIN = 'read-write',
): Promise<T> {
  await db.query(BEGIN[mode]);
  try {
    const out = await fn();
    await db.query('COMMIT');
    return out;
  } catch (err) {
    await db.query('ROLLBACK').catch(() => {});
    throw err;
  }
}
