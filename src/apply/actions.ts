/**
 * One executor per action kind. Each runs what the plan says, on the peer the action names; DDL and
 * its catalog row go in one transaction where Postgres allows it, so a crash leaves either both or neither.
 */
import type pg from 'pg';
import type { MirrorSettings } from '../config/types.js';
import * as C from '../catalog/sql.js';
import { quoteIdent, quoteLiteral } from '../db/quote.js';
import { MirrorsError } from '../errors.js';
import type { Action, TableSpec } from '../plan/types.js';
import type { ApplyContext } from './context.js';
import { createSlotWithSnapshot } from './slot.js';
import { runSnapshot } from './snapshot.js';

type Details = Record<string, any>;

async function inTransaction<T>(db: pg.Client, fn: () => Promise<T>): Promise<T> {
  await db.query('BEGIN');
  try {
    const r = await fn();
    await db.query('COMMIT');
    return r;
  } catch (err) {
    await db.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

async function runSql(db: pg.Client, statements: string[]) {
  await inTransaction(db, async () => {
    for (const s of statements) await db.query(s);
  });
}

export async function executeAction(ctx: ApplyContext, a: Action): Promise<void> {
  const d = (a.details ?? {}) as Details;
  switch (a.kind) {
    case 'catalog': {
      await C.migrateCatalog(await ctx.db(a.peer));
      return;
    }
    case 'extension':
    case 'type':
      // IF NOT EXISTS is not available for CREATE TYPE: a type another mirror created meanwhile is fine.
      try {
        await runSql(await ctx.db(a.peer), [d.sql]);
      } catch (err) {
        if ((err as { code?: string }).code !== '42710') throw err;
      }
      return;
    case 'mirror':
      return mirrorAction(ctx, a, d);
    case 'table':
      return tableAction(ctx, a, d);
    case 'publication':
      return publicationAction(ctx, a, d);
    case 'slot':
      return slotAction(ctx, a, d);
    case 'snapshot':
      return runSnapshot(ctx, a, d as any);
    case 'indexes':
    case 'foreign_keys': {
      const db = await ctx.db(a.peer);
      for (const s of d.sql as string[]) {
        try {
          await db.query(s);
        } catch (err) {
          // A constraint left by an interrupted earlier apply is already what we want.
          if (a.kind === 'foreign_keys' && (err as { code?: string }).code === '42710') continue;
          throw err;
        }
      }
      return;
    }
    case 'stream': {
      await C.setPhase(await ctx.db(a.peer), a.mirror!, 'ready');
      return;
    }
  }
}

async function mirrorAction(ctx: ApplyContext, a: Action, d: Details) {
  const db = await ctx.db(a.peer);
  const name = a.mirror!;
  if (a.op === 'create') {
    await C.insertMirror(db, { name, sourcePeer: d.sourcePeer, settings: d.settings as MirrorSettings, configHash: d.configHash, slot: d.slot, publication: d.publication });
  } else if (a.op === 'update') {
    await C.updateMirrorSettings(db, name, d.settings as MirrorSettings, d.configHash);
  } else if (a.op === 'delete') {
    await inTransaction(db, async () => {
      for (const s of (d.sql as string[]) ?? []) await db.query(s);
      await C.deleteMirror(db, name);
    });
  }
}

async function tableAction(ctx: ApplyContext, a: Action, d: Details) {
  const db = await ctx.db(a.peer);
  const mirror = a.mirror!;
  const spec = d.spec as TableSpec | undefined;
  if (a.op === 'create') {
    await inTransaction(db, async () => {
      for (const s of (d.sql as string[]) ?? []) await db.query(s);
      await C.insertTable(db, mirror, spec!);
    });
  } else if (a.op === 'replace') {
    await C.replaceTable(db, mirror, spec!);
  } else if (a.op === 'update') {
    await inTransaction(db, async () => {
      for (const s of (d.sql as string[]) ?? []) await db.query(s);
      await C.setTablePartitionKey(db, mirror, spec!);
    });
  } else if (a.op === 'delete') {
    await inTransaction(db, async () => {
      for (const s of (d.sql as string[]) ?? []) await db.query(s);
      await C.deleteTable(db, mirror, d.destination);
    });
  }
}

async function publicationAction(ctx: ApplyContext, a: Action, d: Details) {
  const db = await ctx.db(a.peer);
  const name = d.name as string;
  if (a.op === 'create') {
    await inTransaction(db, async () => {
      await db.query(d.sql ?? `CREATE PUBLICATION ${quoteIdent(name)} WITH (publish_via_partition_root = true)`);
      await db.query(`COMMENT ON PUBLICATION ${quoteIdent(name)} IS ${quoteLiteral(`managed by mirrors: mirror ${a.mirror}`)}`);
    });
  } else if (a.op === 'update') {
    if (d.sql) await db.query(d.sql);
  } else if (a.op === 'delete') {
    await db.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(name)}`);
  }
}

async function dropSlot(db: pg.Client, name: string, mirror: string) {
  const r = (await db.query('SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = $1::text', [name])).rows[0];
  if (!r) return;
  if (r.active) {
    throw new MirrorsError('APPLY_FAILED', `slot ${name} is in use by process ${r.active_pid} on the source`, {
      hint: `stop \`mirrors run\` for mirror ${mirror} (or whatever streams from the slot), then apply again`,
    });
  }
  await db.query('SELECT pg_drop_replication_slot($1::text)', [name]);
}

async function slotAction(ctx: ApplyContext, a: Action, d: Details) {
  const mirror = a.mirror!;
  const name = d.name as string;
  const src = await ctx.db(a.peer);
  // A mirror getting a new slot stops streaming first: a worker must not start on the new slot with the
  // old position (recordSlot then sets the new one). No-op for a new mirror.
  if (a.op !== 'delete') await C.setPhase(await ctx.db(ctx.destinationOf(mirror)), mirror, 'snapshot');
  if (a.op === 'delete' || a.op === 'replace') await dropSlot(src, name, mirror);
  if (a.op === 'delete') return;
  const snap = await createSlotWithSnapshot(ctx.peer(a.peer), name, { temporary: false });
  ctx.exported.set(mirror, snap);
  await C.recordSlot(await ctx.db(ctx.destinationOf(mirror)), mirror, snap.consistentLsn);
}
