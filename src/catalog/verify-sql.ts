/**
 * Catalog statements of a verify run (migration 12): the handshake between `mirrors verify` and the mirror's
 * worker (worker/verify-hold.ts), and what each run found.
 */
import type { Queryable } from '../db/tx.js';

type Db = Queryable;

export type VerifyState = 'requested' | 'armed' | 'target' | 'held' | 'released' | 'abandoned' | 'finished';

export interface VerifyRun {
  id: string;
  state: VerifyState;
  targetLsn: string | null;
  heldLsn: string | null;
  armMs: number | null;
  holdMs: number | null;
}

const RUN_COLUMNS = `id::text AS id, state, target_lsn::text AS target_lsn, held_lsn::text AS held_lsn, arm_ms, hold_ms`;

interface RunRow {
  id: string;
  state: VerifyState;
  target_lsn: string | null;
  held_lsn: string | null;
  arm_ms: number | null;
  hold_ms: number | null;
}

const run = (r: RunRow): VerifyRun => ({
  id: r.id,
  state: r.state,
  targetLsn: r.target_lsn,
  heldLsn: r.held_lsn,
  armMs: r.arm_ms,
  holdMs: r.hold_ms,
});

/** The channel a run is announced on (the payload: the mirror's name), so that its worker looks at once. */
export const VERIFY_CHANNEL = 'mirrors_verify';

/** A new run asks the worker to hold at its next transaction boundary. */
export async function requestVerify(db: Db, mirror: string, sample: number): Promise<string> {
  const r = await db.query(
    `INSERT INTO mirrors.verify_runs (mirror, sample) VALUES ($1::text, $2) RETURNING id::text`,
    [mirror, sample],
  );
  await db.query(`SELECT pg_notify('${VERIFY_CHANNEL}', $1::text)`, [mirror]);
  return r.rows[0].id;
}

export async function readVerify(db: Db, id: string): Promise<VerifyRun | null> {
  const r = await db.query(`SELECT ${RUN_COLUMNS} FROM mirrors.verify_runs WHERE id = $1::bigint`, [id]);
  return r.rows[0] ? run(r.rows[0]) : null;
}

/**
 * Moves a run from one state to the next; false when it is no longer in `from` (the other side gave up on it).
 * `set`: further columns, by name (the callers' own literals).
 */
export async function advanceVerify(
  db: Db,
  id: string,
  from: VerifyState,
  to: VerifyState,
  set: Partial<Record<'target_lsn' | 'held_lsn' | 'arm_ms' | 'hold_ms', string | number>> = {},
): Promise<boolean> {
  const cols = Object.entries(set);
  const r = await db.query(
    `UPDATE mirrors.verify_runs SET state = $3::text${cols.map(([c], i) => `, ${c} = $${i + 4}`).join('')}
      WHERE id = $1::bigint AND state = $2::text RETURNING id`,
    [id, from, to, ...cols.map(([, v]) => v)],
  );
  return r.rows.length > 0;
}

/**
 * What the worker's hold must answer: the mirror's oldest run still waiting for it, if any. A run asked for more
 * than a minute ago is not: its command is gone (it waits for the worker a few seconds at most).
 */
export async function pendingVerify(db: Db, mirror: string): Promise<VerifyRun | null> {
  const r = await db.query(
    `SELECT ${RUN_COLUMNS} FROM mirrors.verify_runs
      WHERE mirror = $1::text AND state IN ('requested', 'target')
        AND requested_at > clock_timestamp() - interval '1 minute'
      ORDER BY id LIMIT 1`,
    [mirror],
  );
  return r.rows[0] ? run(r.rows[0]) : null;
}

export interface VerifyOutcome {
  outcome: 'equal' | 'different' | 'error';
  tablesCompared: number;
  tablesDiffering: number;
  rowsCompared: number;
  result: unknown;
}

export async function finishVerify(db: Db, id: string, o: VerifyOutcome): Promise<void> {
  await db.query(
    `UPDATE mirrors.verify_runs SET state = 'finished', finished_at = clock_timestamp(), outcome = $2::text,
            tables_compared = $3, tables_differing = $4, rows_compared = $5, result = $6::jsonb
      WHERE id = $1::bigint`,
    [id, o.outcome, o.tablesCompared, o.tablesDiffering, o.rowsCompared, JSON.stringify(o.result)],
  );
}

/** A run that failed before it finished: the worker must not wait for it. */
export async function abandonVerify(db: Db, id: string): Promise<void> {
  await db.query(
    `UPDATE mirrors.verify_runs SET state = 'abandoned', finished_at = clock_timestamp(), outcome = 'error'
      WHERE id = $1::bigint AND state <> 'finished'`,
    [id],
  );
}

/** The mirror's last finished run (for metrics and `mirrors check`), or null. */
export interface LastVerify {
  id: string;
  finishedAt: string;
  holdMs: number | null;
  outcome: 'equal' | 'different' | 'error';
  tablesDiffering: number;
  targetLsn: string | null;
  sample: number;
  result: unknown;
}

export async function lastVerify(db: Db, mirror: string): Promise<LastVerify | null> {
  const r = await db.query(
    `SELECT id::text AS id, finished_at, hold_ms, outcome, tables_differing, target_lsn::text AS target_lsn, sample, result
       FROM mirrors.verify_runs WHERE mirror = $1::text AND state = 'finished' ORDER BY id DESC LIMIT 1`,
    [mirror],
  );
  const x = r.rows[0];
  if (!x) return null;
  return {
    id: x.id,
    finishedAt: new Date(x.finished_at).toISOString(),
    holdMs: x.hold_ms,
    outcome: x.outcome,
    tablesDiffering: x.tables_differing ?? 0,
    targetLsn: x.target_lsn,
    sample: x.sample,
    result: x.result,
  };
}
