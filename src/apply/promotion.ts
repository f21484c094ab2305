/**
 * Runs a planned promotion (diff/promotion.ts; docs/promotion.md) step by step, each reported and journaled:
 *   1. fence the source tables in one open transaction (lock retried up to max_fence_wait), marker in the WAL;
 *   2. wait until the destination has applied up to the marker (the worker streams it: exact, no lag polling);
 *   3. optionally compare row counts while both sides are frozen;
 *   4. record the promotion as `fenced` on the destination, then COMMIT the fence (the triggers stay);
 *   5. the point of no return, one destination transaction: guards dropped, sequences and defaults restored,
 *      the mirror marked Promoted (its batches are refused from then on);
 *   6. optionally the source's database made read-only (target_session_attrs clients move), then the slot and
 *      publication dropped on the source once the worker let go of the slot.
 * The rule after a kill -9 at any line: before 4's COMMIT the source is writable and nothing changed (the
 * fence transaction dies with the connection; a `fenced` record without triggers on the source is cleared);
 * after it, the source is fenced and the next apply finishes 5 and 6 from the record. Never a source fenced
 * with nothing promoted for longer than it takes to run apply again; never both sides writable.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { connectPeer } from '../db/connect.js';
import { inTransaction } from '../db/tx.js';
import { quoteLiteral, quoteQualified } from '../db/quote.js';
import { SQLSTATE, sqlstateOf } from '../db/sqlstate.js';
import { unfenceSql, FENCE_TRIGGER } from '../diff/promotion.js';
import { sequenceStateSql, setvalStatements, VERIFY_SETTINGS } from '../diff/promotion-sql.js';
import { MirrorsError } from '../errors.js';
import type { LossEstimate, PromotionCreate, PromotionDetails, PromotionOpen } from '../plan/types.js';
import type { ApplyContext } from './context.js';
import { injectKill } from '../util/inject.js';

/** Each LOCK attempt waits this long, so writers queued behind it are not held for the whole max_fence_wait. */
const LOCK_ATTEMPT_MS = 500;
/** How long the cleanup waits for the worker to let go of the slot before ending its walsender. */
const SLOT_RELEASE_MS = 15_000;

interface PromotionRecord {
  state: 'fenced' | 'promoted';
  fence_id: string;
  /** null: promoted without the source (nothing fenced). */
  fence_lsn: string | null;
  fenced_at: string | null;
  /** setval statements from the sequences read inside the fence (final values), run at the point of no return. */
  setvals: string[];
  /** Promoted without the source, with what may have been lost (the plan's estimate). */
  unfenced?: true;
  loss_estimate?: LossEstimate;
  /** After an unfenced promotion: the old source answered again and got its fence (fenceAfter). */
  source_fenced?: true;
  /** With a reverse mirror: pending from the point of no return until the opening (openPromotion). */
  reverse?: 'pending' | 'done';
}

export async function runPromotion(ctx: ApplyContext, a: PromotionCreate): Promise<void> {
  const d = a.details;
  const mirror = ctx.mirrorOf(a);
  const dst = await ctx.db(d.destination_peer);
  const t0 = performance.now();
  const step = (name: string, detail?: string) => {
    ctx.report({ type: 'promotion_step', mirror, step: name, ms: Math.round(performance.now() - t0), detail });
    injectKill(name);
  };

  const recorded = await readRecord(dst, mirror);
  if (d.without_source && recorded?.state !== 'promoted') return promoteWithoutSource(dst, a, step);
  const src = await ctx.db(d.source_peer);
  // With a reverse mirror the source's slot and publication go after the opening (openPromotion), so that
  // waiting for the worker to let go of the slot does not lengthen the time neither side takes writes.
  const finish = () => (d.reverse_mirror ? undefined : cleanup(d, src, step));
  if (recorded?.state === 'promoted') {
    if (d.fence_after) await fenceAfter(ctx, dst, a, recorded, step);
    return finish();
  }
  if (recorded?.state === 'fenced') {
    if (await fencePresent(src, a)) {
      step('resumed', `a previous apply fenced the source at ${recorded.fence_lsn}; finishing the promotion`);
      await pointOfNoReturn(dst, a, recorded, src);
      step('point_of_no_return');
      return finish();
    }
    // The fence never committed (that apply died before): the source took writes again; start over.
    await dst.query(`UPDATE mirrors.mirrors SET promotion = NULL WHERE name = $1::text`, [mirror]);
  }

  const fence = await connectPeer(ctx.peer(d.source_peer), {
    applicationName: `mirrors apply (promotion fence ${mirror})`,
    // The fence's COMMIT must not wait for a synchronous standby that may be this very mirror.
    options: '-c synchronous_commit=local',
  });
  let record: PromotionRecord;
  try {
    await fence.query('BEGIN');
    const [setup, lock, ...triggers] = splitFence(d.fence_sql);
    for (const s of setup) await fence.query(s);
    await lockWithin(fence, lock, d.max_fence_wait_ms, mirror);
    for (const s of triggers) await fence.query(s);
    // Unique per attempt: a retried promotion never waits for an earlier attempt's marker.
    const fenceId = `${d.fence_id} ${new Date().toISOString()} ${randomUUID()}`;
    const marker = await fence.query(`SELECT pg_logical_emit_message(false, 'mirrors.fence', $1::text)::text AS lsn`, [
      fenceId,
    ]);
    const fenceLsn: string = marker.rows[0].lsn;
    // The marker sits in WAL that nothing flushes while every writer waits (the fence transaction is open),
    // and a walsender sends only flushed WAL: a committed message from another session flushes it now.
    await src.query(`SELECT pg_logical_emit_message(true, 'mirrors.fence.flush', $1::text)`, [fenceId]);
    step('fence_acquired', `writers to ${d.tables.length} table(s) wait; marker at ${fenceLsn}`);
    // Inside the fence: no session can take another value from them through the mirrored tables now.
    const rows = (
      await fence.query(
        sequenceStateSql(
          d.sequences.map((q) => q.source),
          d.source_version_num,
        ),
      )
    ).rows;
    const setvals = setvalStatements(d.sequences, rows, d.sequence_margin);
    const remaining = Math.max(1_000, d.max_fence_wait_ms - Math.round(performance.now() - t0));
    await dst
      .query(`SELECT mirrors.wait_for_lsn($1::text, $2::pg_lsn, $3::interval)`, [
        mirror,
        fenceLsn,
        `${remaining} milliseconds`,
      ])
      .catch((err) => {
        throw new MirrorsError(
          'APPLY_FAILED',
          `the destination did not reach the fence at ${fenceLsn} in time: nothing changed`,
          {
            hint: 'is `mirrors run` streaming this mirror? check `mirrors status`; a larger promote.max_fence_wait gives it longer (writers wait that long)',
            cause: err,
          },
        );
      });
    step('fence_reached', `the destination applied everything up to ${fenceLsn}`);
    if (d.verify !== 'none') {
      await verifyFrozen(fence, dst, a);
      step(
        'verified',
        `${d.verify === 'counts' ? 'row counts' : 'row counts and checksums'} equal in ${d.tables.length} table(s)`,
      );
    }
    record = {
      state: 'fenced',
      fence_id: fenceId,
      fence_lsn: fenceLsn,
      fenced_at: new Date().toISOString(),
      setvals,
    };
    // Written before the fence commits: an apply killed after the COMMIT finds it and finishes.
    await dst.query(`UPDATE mirrors.mirrors SET promotion = $2::jsonb WHERE name = $1::text`, [
      mirror,
      JSON.stringify(record),
    ]);
    injectKill('fence_recorded');
    await fence.query('COMMIT');
    step('fence_committed', 'the source rejects writes to the mirrored tables with MIRROR_FENCED');
  } catch (err) {
    await fence.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    await fence.end().catch(() => {});
  }
  await pointOfNoReturn(dst, a, record, src);
  step(
    'point_of_no_return',
    d.reverse_mirror
      ? `peer ${d.destination_peer} is the primary, read-only until mirror ${d.reverse_mirror} exists`
      : `peer ${d.destination_peer} is the primary`,
  );
  await finish();
}

/**
 * Disaster recovery: the source is gone (the plan found it unreachable and `mirrors apply --allow-data-loss` was
 * given). Only the point of no return runs: nothing can be fenced, read or cleaned up on the source. Its worker
 * stops on Promoted, and refuses the old source for good should it come back; the next plan that reaches it
 * fences it and drops the slot and publication (finishPromotion).
 */
async function promoteWithoutSource(dst: pg.Client, a: PromotionCreate, step: (s: string, d?: string) => void) {
  const w = a.details.without_source!;
  const record: PromotionRecord = {
    state: 'promoted',
    fence_id: '',
    fence_lsn: null,
    fenced_at: null,
    setvals: [],
    unfenced: true,
    loss_estimate: w.loss,
  };
  await pointOfNoReturn(dst, a, record, null);
  step(
    'point_of_no_return',
    `peer ${a.details.destination_peer} is the primary, promoted WITHOUT a fence (peer ${a.details.source_peer} unreachable)`,
  );
  step(
    'promotion_complete',
    `the old source keeps its slot and publication until it answers again; \`mirrors plan\` then fences it and drops them`,
  );
}

/** The old source of a promotion without it answers again: fence it now (it is not mirrored any more). */
async function fenceAfter(
  ctx: ApplyContext,
  dst: pg.Client,
  a: PromotionCreate,
  record: PromotionRecord,
  step: (s: string, d?: string) => void,
) {
  const mirror = a.mirror!;
  const fence = await connectPeer(ctx.peer(a.details.source_peer), {
    applicationName: `mirrors apply (promotion fence ${mirror})`,
    options: '-c synchronous_commit=local -c default_transaction_read_only=off',
  });
  try {
    await fence.query('BEGIN');
    const [setup, lock, ...triggers] = splitFence(a.details.fence_sql);
    for (const s of setup) await fence.query(s);
    await lockWithin(fence, lock, a.details.max_fence_wait_ms, mirror);
    for (const s of triggers) await fence.query(s);
    await fence.query('COMMIT');
  } catch (err) {
    await fence.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    await fence.end().catch(() => {});
  }
  await dst.query(`UPDATE mirrors.mirrors SET promotion = $2::jsonb WHERE name = $1::text`, [
    mirror,
    JSON.stringify({ ...record, source_fenced: true }),
  ]);
  step(
    'fence_committed',
    `the old source, peer ${a.details.source_peer}, rejects writes to the mirrored tables with MIRROR_FENCED`,
  );
}

/**
 * The opening of a promotion with a reverse mirror (diff/promotion.ts openPromotionAction): the reverse mirror
 * exists (its slot on the new primary holds every write from now on, its guard is on the old source's tables),
 * so the old source drops its fence, then the new primary its guards, and the record says done. Each statement
 * is idempotent: an apply killed in between runs it again.
 */
export async function openPromotion(ctx: ApplyContext, a: PromotionOpen): Promise<void> {
  const d = a.details;
  const mirror = ctx.mirrorOf(a);
  const t0 = performance.now();
  const src = await ctx.db(d.source_peer);
  await src.query('SET default_transaction_read_only = off');
  await runAll(src, d.source_sql);
  const dst = await ctx.db(d.destination_peer);
  await runAll(dst, [
    ...d.destination_sql,
    `UPDATE mirrors.mirrors SET promotion = promotion || '{"reverse": "done"}'::jsonb WHERE name = ${quoteLiteral(mirror)}`,
  ]);
  const step = (name: string, detail?: string) => {
    ctx.report({ type: 'promotion_step', mirror, step: name, ms: Math.round(performance.now() - t0), detail });
    injectKill(name);
  };
  step(
    'opened',
    `peer ${d.destination_peer} takes writes; peer ${d.source_peer} is a read-only mirror of it (mirror ${d.reverse_mirror})`,
  );
  await cleanup({ ...d, read_only_sql: [] }, src, step);
}

async function runAll(db: pg.Client, sql: string[]) {
  await inTransaction(db, async () => {
    for (const s of sql) await db.query(s);
  });
}

/** The promotion record of an earlier apply (catalog migration 6), or null. */
async function readRecord(dst: pg.Client, mirror: string): Promise<PromotionRecord | null> {
  const r = await dst.query(`SELECT promotion FROM mirrors.mirrors WHERE name = $1::text`, [mirror]);
  return (r.rows[0]?.promotion as PromotionRecord | null) ?? null;
}

/** fence_sql: setup statements, then the LOCK, then the triggers (diff/promotion.ts fenceSql). */
function splitFence(sql: string[]): [string[], string, ...string[]] {
  const i = sql.findIndex((s) => s.startsWith('LOCK TABLE'));
  if (i < 0) throw new Error('internal: the promotion fence has no LOCK');
  return [sql.slice(0, i), sql[i], ...sql.slice(i + 1)];
}

/** Retries the LOCK with a short lock_timeout (under a savepoint) until it succeeds or the wait is over. */
async function lockWithin(fence: pg.Client, lock: string, maxMs: number, mirror: string) {
  const deadline = performance.now() + maxMs;
  await fence.query(`SET LOCAL lock_timeout = '${LOCK_ATTEMPT_MS}ms'`);
  for (;;) {
    await fence.query('SAVEPOINT fence_lock');
    try {
      await fence.query(lock);
      return;
    } catch (err) {
      await fence.query('ROLLBACK TO SAVEPOINT fence_lock');
      if (sqlstateOf(err) !== SQLSTATE.lockNotAvailable || performance.now() > deadline)
        throw new MirrorsError(
          'APPLY_FAILED',
          sqlstateOf(err) === SQLSTATE.lockNotAvailable
            ? `the fence of mirror ${mirror} could not lock its source tables within ${maxMs} ms: nothing changed`
            : `the fence of mirror ${mirror} failed: ${(err as Error).message}`,
          {
            hint: 'a long transaction holds them: let it finish, or give promote.max_fence_wait more time',
            cause: err,
          },
        );
    }
  }
}

/**
 * verify: counts or checksums, while both sides are frozen (the source by the fence, the destination by its guards
 * and a worker with nothing left to apply): any difference abandons the promotion before anything changed.
 * The source side runs inside the fence's transaction; SET LOCAL keeps the settings to it.
 */
async function verifyFrozen(fence: pg.Client, dst: pg.Client, a: PromotionCreate) {
  const d = a.details;
  for (const s of VERIFY_SETTINGS) await fence.query(s);
  type Reading = { n: string; h: string };
  const read = async (db: pg.Client, sql: string) => (await db.query(sql)).rows[0] as Reading;
  const source: Reading[] = [];
  for (const v of d.verify_sql) source.push(await read(fence, v.source));
  const destination = await inTransaction(dst, async () => {
    for (const s of VERIFY_SETTINGS) await dst.query(s);
    const out: Reading[] = [];
    for (const v of d.verify_sql) out.push(await read(dst, v.destination));
    return out;
  });
  d.tables.forEach((t, i) => {
    const [s, x] = [source[i], destination[i]];
    if (s.n === x.n && s.h === x.h) return;
    const what =
      s.n !== x.n
        ? `has ${s.n} rows on the source, ${t.destination.schema}.${t.destination.name} ${x.n} on the destination`
        : `has the same ${s.n} rows on both sides, but their contents differ (checksums ${s.h} and ${x.h})`;
    throw new MirrorsError(
      'APPLY_FAILED',
      `verify ${d.verify}: ${t.source.schema}.${t.source.name} ${what}: the promotion is abandoned, nothing changed`,
      { hint: 'the destination differs from the source: resync the table (remove and re-add it), then promote again' },
    );
  });
}

/** One destination transaction: after it the destination is the primary; before it, nothing changed there. */
async function pointOfNoReturn(dst: pg.Client, a: PromotionCreate, record: PromotionRecord, src: pg.Client | null) {
  const mirror = a.mirror!;
  try {
    await dst.query('BEGIN');
    for (const s of [...a.details.restore_sql, ...record.setvals]) await dst.query(s);
    await dst.query(
      `UPDATE mirrors.mirrors SET phase = 'promoted', status = 'Promoted', promoted_at = now(), fence_lsn = $2::pg_lsn,
              promotion = $3::jsonb, updated_at = now() WHERE name = $1::text`,
      [
        mirror,
        record.fence_lsn,
        JSON.stringify({ ...record, state: 'promoted', ...(a.details.reverse_mirror ? { reverse: 'pending' } : {}) }),
      ],
    );
    await dst.query('COMMIT');
  } catch (err) {
    await dst.query('ROLLBACK').catch(() => {});
    // Back to where it started: the source takes writes again, the destination stays a mirror.
    if (src) for (const s of unfenceSql(a.details.tables)) await src.query(s);
    await dst.query(`UPDATE mirrors.mirrors SET promotion = NULL WHERE name = $1::text`, [mirror]).catch(() => {});
    throw new MirrorsError(
      'APPLY_FAILED',
      `the promotion of mirror ${mirror} failed at the point of no return; ${src ? 'the source fence is lifted, ' : ''}nothing changed: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/** Whether the fence triggers of every table are on the source (a committed fence). */
async function fencePresent(src: pg.Client, a: PromotionCreate): Promise<boolean> {
  const r = await src.query(
    `SELECT count(*)::int AS n FROM pg_trigger g
      WHERE g.tgname = $1::text AND g.tgrelid = ANY (SELECT to_regclass(x) FROM unnest($2::text[]) AS x)`,
    [FENCE_TRIGGER, a.details.tables.map((t) => quoteQualified(t.source.schema, t.source.name))],
  );
  return r.rows[0].n === a.details.tables.length;
}

/** The slot and publication go once the worker has let go of the slot (it stops on Promoted within a second). */
async function cleanup(
  d: Pick<PromotionDetails, 'source_peer' | 'slot' | 'cleanup_sql' | 'read_only_sql'>,
  src: pg.Client,
  step: (s: string, d?: string) => void,
) {
  // An earlier apply may have made the old source's database read-only already (read_only_sql).
  await src.query('SET default_transaction_read_only = off');
  if (d.read_only_sql.length) {
    for (const s of d.read_only_sql) await src.query(s);
    step('source_read_only', `new sessions of peer ${d.source_peer}'s database are read-only`);
  }
  const slot = d.slot;
  const deadline = performance.now() + SLOT_RELEASE_MS;
  for (;;) {
    const r = await src.query(
      `SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1::text AND database = current_database()`,
      [slot],
    );
    if (!r.rows.length) break;
    const pid = r.rows[0].active_pid as number | null;
    if (pid === null) {
      await src.query('SELECT pg_drop_replication_slot($1::text)', [slot]).catch((err) => {
        if (sqlstateOf(err) !== SQLSTATE.objectInUse) throw err;
      });
      continue;
    }
    if (performance.now() > deadline) await src.query('SELECT pg_terminate_backend($1::int)', [pid]);
    await new Promise((r2) => setTimeout(r2, 250));
  }
  for (const s of d.cleanup_sql) await src.query(s);
  step('promotion_complete', `slot ${slot} and the publication dropped; the fence stays on the source`);
}
