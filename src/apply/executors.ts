/**
 * One executor per action kind, in a table the compiler checks: a kind without an executor, or an op an
 * executor does not handle, fails the build. Each runs exactly what the plan says (its SQL and settings),
 * on the peer the action names; DDL and its catalog row go in one transaction where Postgres allows it, so
 * a crash leaves either both or neither.
 */
import type pg from 'pg';
import * as catalog from '../catalog/sql.js';
import { SQLSTATE } from '../db/sqlstate.js';
import { inTransaction } from '../db/tx.js';
import { MirrorsError } from '../errors.js';
import type { Action, ActionKind, ActionOfKind } from '../plan/types.js';
import type { ApplyContext } from './context.js';
import { retryLockTimeouts } from './lock-retry.js';
import { createSlotWithSnapshot } from './slot.js';
import { openPromotion, runPromotion } from './promotion.js';
import { runSnapshot } from './snapshot.js';

type Executor<K extends ActionKind> = (ctx: ApplyContext, a: ActionOfKind<K>) => Promise<void>;
/** One executor per action kind: a kind added to the plan's union without one fails the build here. */
export type ExecutorTable = { [K in ActionKind]: Executor<K> };

const EXECUTORS: ExecutorTable = {
  catalog: async (ctx, a) => {
    await catalog.migrateCatalog(await ctx.db(a.peer));
  },
  schema: (ctx, a) => runSql(ctx, a.peer, a.details.sql),
  extension: (ctx, a) => runSql(ctx, a.peer, a.details.sql),
  // CREATE TYPE has no IF NOT EXISTS: a type another mirror created since the plan is what we want.
  type: (ctx, a) => runSql(ctx, a.peer, a.details.sql).catch(ignore(SQLSTATE.duplicateObject)),
  mirror: mirrorExecutor,
  publication: (ctx, a) => retryLockTimeouts(() => runSql(ctx, a.peer, a.details.sql), a.address),
  slot: slotExecutor,
  table: tableExecutor,
  columns: columnsExecutor,
  snapshot: (ctx, a) => runSnapshot(ctx, a),
  promotion: (ctx, a) => (a.op === 'create' ? runPromotion(ctx, a) : openPromotion(ctx, a)),
  sync_standbys: async (ctx, a) => {
    // ALTER SYSTEM cannot run inside a transaction block: one statement at a time, then the record.
    const src = await ctx.db(a.peer);
    for (const s of a.details.sql) await src.query(s);
    for (const peer of a.details.record_on) {
      const db = await ctx.db(peer);
      // A degraded mirror (worker/sync-guardian.ts) back in the value is no longer degraded.
      await db.query(
        `INSERT INTO mirrors.sync_standbys (source_system_identifier, value) VALUES ($1::text, $2::text)
         ON CONFLICT (source_system_identifier) DO UPDATE
           SET value = excluded.value, written_at = now(),
               degraded = (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb)
                             FROM jsonb_each(mirrors.sync_standbys.degraded) e WHERE NOT e.key = ANY ($3::text[]))`,
        [a.details.source_system_identifier, a.details.value, a.after.members],
      );
    }
  },
  indexes: async (ctx, a) => {
    // IF NOT EXISTS is in each statement; one at a time, so a long build holds no other lock.
    const db = await ctx.db(a.peer);
    for (const s of a.details.sql) await db.query(s);
  },
  foreign_keys: async (ctx, a) => {
    const db = await ctx.db(a.peer);
    // A constraint left by an interrupted earlier apply is already what we want.
    for (const s of a.details.sql) await db.query(s).catch(ignore(SQLSTATE.duplicateObject));
  },
  stream: async (ctx, a) => {
    await catalog.setPhase(await ctx.db(a.peer), ctx.mirrorOf(a), 'ready');
  },
};

export function executeAction(ctx: ApplyContext, a: Action): Promise<void> {
  return (EXECUTORS[a.kind] as (ctx: ApplyContext, a: Action) => Promise<void>)(ctx, a);
}

async function runSql(ctx: ApplyContext, peer: string, statements: string[]) {
  const db = await ctx.db(peer);
  await inTransaction(db, async () => {
    for (const s of statements) await db.query(s);
  });
}

function ignore(code: string) {
  return (err: unknown) => {
    if ((err as { code?: string }).code !== code) throw err;
  };
}

function unreachable(a: never): never {
  throw new Error(`internal: no executor for ${JSON.stringify(a)}`);
}

async function mirrorExecutor(ctx: ApplyContext, a: ActionOfKind<'mirror'>) {
  const db = await ctx.db(a.peer);
  const name = ctx.mirrorOf(a);
  switch (a.op) {
    case 'create': {
      const d = a.details;
      return catalog.insertMirror(db, {
        name,
        sourcePeer: d.source_peer,
        project: d.project,
        settings: d.settings,
        configHash: d.mirror_hash,
        slot: d.slot,
        publication: d.publication,
      });
    }
    case 'update':
      return catalog.updateMirrorSettings(db, name, a.details.settings, a.details.mirror_hash);
    case 'delete':
      return inTransaction(db, async () => {
        for (const s of a.details.sql) await db.query(s);
        await catalog.deleteMirror(db, name);
      });
    default:
      return unreachable(a);
  }
}

async function tableExecutor(ctx: ApplyContext, a: ActionOfKind<'table'>) {
  const db = await ctx.db(a.peer);
  const mirror = ctx.mirrorOf(a);
  switch (a.op) {
    case 'create':
      return inTransaction(db, async () => {
        for (const s of a.details.sql) await db.query(s);
        await catalog.insertTable(db, mirror, a.details.spec);
      });
    case 'replace': {
      const d = a.details;
      if (d.strategy === 'merge')
        return catalog.requestMerge(db, mirror, d.spec.destination, { key: d.key, chunk_rows: d.chunk_rows });
      return catalog.replaceTable(db, mirror, d.spec);
    }
    case 'update':
      return inTransaction(db, async () => {
        for (const s of a.details.sql) await db.query(s);
        await catalog.setTablePartitionKey(db, mirror, a.details.spec);
      });
    case 'delete':
      return inTransaction(db, async () => {
        for (const s of a.details.sql) await db.query(s);
        await catalog.deleteTable(db, mirror, a.details.destination);
      });
    default:
      return unreachable(a);
  }
}

/**
 * A source schema change, where the worker stopped at it: refused unless the worker still waits there (it
 * recorded the same commit LSN), so the DDL never lands ahead of or behind the rows it fits.
 */
async function columnsExecutor(ctx: ApplyContext, a: ActionOfKind<'columns'>) {
  const db = await ctx.db(a.peer);
  const mirror = ctx.mirrorOf(a);
  const d = a.details;
  await inTransaction(db, async () => {
    const r = await db.query(
      `SELECT pending_schema_change ->> 'lsn' AS lsn FROM mirrors.tables
        WHERE mirror = $1::text AND dest_schema = $2::text AND dest_table = $3::text FOR UPDATE`,
      [mirror, d.table.schema, d.table.name],
    );
    if (r.rows[0]?.lsn !== d.at_lsn)
      throw new MirrorsError(
        'APPLY_FAILED',
        `${a.address}: the worker no longer waits at the schema change this plan fits the table to (commit ${d.at_lsn}; it now records ${r.rows[0]?.lsn ?? 'none'})`,
        { hint: 'run `mirrors plan` again: it proposes what fits the table where the stream stands now' },
      );
    // As the worker's and the copy's sessions: the read-only guard lets them (and TRUNCATE) through.
    await db.query('SET LOCAL session_replication_role = replica');
    for (const s of d.sql) await db.query(s);
    await catalog.recordSchemaChange(
      db,
      mirror,
      d.table,
      {
        applied_at: new Date().toISOString(),
        by: 'apply',
        lsn: d.at_lsn,
        summary: d.steps.map((s) => s.summary),
        sql: d.sql,
      },
      d.kept_columns,
    );
    // In the same transaction: a table emptied for a copy is never left ready and empty.
    if (d.copy) await catalog.replaceTable(db, mirror, d.spec);
  });
}

/** Refuses to drop a slot a process is streaming from: the plan was made while it was idle. */
async function dropSlot(db: pg.Client, name: string, dropSql: string, mirror: string) {
  const r = (await db.query('SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = $1::text', [name]))
    .rows[0];
  if (!r) return;
  if (r.active) {
    throw new MirrorsError('APPLY_FAILED', `slot ${name} is in use by process ${r.active_pid} on the source`, {
      hint: `stop \`mirrors run\` for mirror ${mirror} (or whatever streams from the slot), then apply again`,
    });
  }
  await db.query(dropSql);
}

async function slotExecutor(ctx: ApplyContext, a: ActionOfKind<'slot'>) {
  const mirror = ctx.mirrorOf(a);
  const src = await ctx.db(a.peer);
  if (a.op === 'delete') return dropSlot(src, a.details.name, a.details.drop_sql, mirror);
  // A mirror getting a new slot stops streaming first (a worker must not start on the new slot with the old
  // position; recordSlot then sets the new one), and every table is marked for a copy before the old slot
  // goes: a resync interrupted anywhere resumes with every table not copied since. No-op for a new mirror.
  const dst = await ctx.db(ctx.destinationOf(mirror));
  await catalog.startFullResync(dst, mirror, a.details.tables);
  if (a.op === 'replace') await dropSlot(src, a.details.name, a.details.drop_sql, mirror);
  const snap = await createSlotWithSnapshot(ctx.peer(a.peer), a.details.name, {
    temporary: false,
    command: a.details.create_command,
  });
  ctx.exported.set(mirror, snap);
  await catalog.recordSlot(dst, mirror, snap);
}
