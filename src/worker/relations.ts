/**
 * What each Relation message of the stream maps to: the destination table, its catalog row (state, snapshot
 * LSN) and whether the source's columns still fit it. A Relation that does not fit is a source schema change
 * reached by the stream, right before the first row that carries it: under `schema_changes: auto` the DDL that
 * fits the table to it (diff/schema-change.ts) runs there, journaled; otherwise, or when the table needs a copy,
 * the worker records that DDL for the plan and the session stops before the transaction that carries it
 * (nothing of it applied or acknowledged).
 *
 * Why the DDL commits on its own, before that transaction, and not inside it: the position does not move with
 * it. Killed in between, the worker restarts at the same transaction, whose Relation then fits.
 */
import os from 'node:os';
import * as catalog from '../catalog/sql.js';
import type { MirrorState } from '../catalog/worker-sql.js';
import * as W from '../catalog/worker-sql.js';
import type { DroppedColumns, SchemaChanges } from '../config/types.js';
import { bigIntToLsn, lsnToBigInt } from '../db/lsn.js';
import { inTransaction, type Queryable } from '../db/tx.js';
import { relationDrift } from '../diff/drift.js';
import { type SchemaChange, type SourceColumn, schemaChange, stepsSql } from '../diff/schema-change.js';
import type { AppliedSchemaChange } from '../inspect/types.js';
import { relayName } from '../diff/truncate-relay.js';
import { tableAddress } from '../plan/address.js';
import { injectKill } from '../util/inject.js';
import type { TargetTable } from './changes.js';
import type { PgoutputMessage } from './decode.js';
import { Fault } from './faults.js';

type CatalogTable = MirrorState['tables'][number];
type RelationMessage = Extract<PgoutputMessage, { tag: 'relation' }>;

export interface RelationEntry {
  /** null: the publication sends the table but the mirror does not map it (its changes are dropped). */
  target: TargetTable | null;
  table?: CatalogTable;
  /** The table's snapshot LSN (0 when none): transactions committed before it are in its copy. */
  snapshotLsn: bigint;
  msg?: RelationMessage;
  /**
   * Whether the columns are still to be checked: learned while the table's copy was running, or in a
   * transaction its copy holds (a layout the copy already replaced is no drift).
   */
  unchecked?: boolean;
  /** The mirror's truncate relay (diff/truncate-relay.ts): its inserts are TRUNCATEs of single partitions. */
  relay?: boolean;
}

/** What the cache needs of the source: type names, the catalog's columns of one table now, a partition's root. */
export interface SourceCatalog {
  typeNames(cols: { typeOid: number; typmod: number }[]): Promise<string[]>;
  tableColumns(table: { schema: string; name: string }): Promise<{ columns: SourceColumn[]; dropped: number } | null>;
  partitionRoot(table: { schema: string; name: string }): Promise<{ schema: string; name: string } | null>;
}

export interface SchemaPolicy {
  schema_changes: SchemaChanges;
  dropped_columns: DroppedColumns;
}

export class RelationCache {
  private entries = new Map<number, RelationEntry>();
  private warned = new Set<string>();

  constructor(
    private mirror: string,
    private dst: Queryable,
    private source: SourceCatalog,
    private policy: SchemaPolicy,
    private log: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void,
  ) {}

  get(oid: number): RelationEntry | undefined {
    return this.entries.get(oid);
  }

  /**
   * Runs inside the apply pipeline (it reads the catalog through the destination connection). `lsn`: commit LSN
   * of the transaction carrying the message.
   */
  async learn(msg: RelationMessage, lsn: bigint | null): Promise<void> {
    // From the catalog as it is now, not as it was when the session started: `mirrors apply` records a
    // table added (or resynced) while we run before the publication carries it.
    const relay = relayName(this.mirror);
    if (msg.schema === relay.schema && msg.name === relay.name) {
      this.entries.set(msg.relationOid, { target: null, snapshotLsn: 0n, msg, relay: true });
      return;
    }
    const state = await W.loadMirrorState(this.dst, this.mirror);
    const t = state?.tables.find((x) => x.sourceSchema === msg.schema && x.sourceTable === msg.name);
    if (!t) {
      const label = `${msg.schema}.${msg.name}`;
      if (!this.warned.has(label)) {
        this.warned.add(label);
        // pgoutput sends a partition's own Relation after its root's (pgoutput.c maybe_send_schema); the root carries
        // its changes.
        const root = await this.source.partitionRoot(msg).catch(() => null);
        if (root && state?.tables.some((x) => x.sourceSchema === root.schema && x.sourceTable === root.name)) {
          this.entries.set(msg.relationOid, { target: null, snapshotLsn: 0n });
          return;
        }
        this.log('warn', `the publication sends ${label}, which the mirror does not map; its changes are not applied`);
      }
      this.entries.set(msg.relationOid, { target: null, snapshotLsn: 0n });
      return;
    }
    const entry: RelationEntry = { target: targetOf(msg, t), table: t, snapshotLsn: lsnOf(t), msg, unchecked: true };
    this.entries.set(msg.relationOid, entry);
    if (t.state === 'ready' && (lsn === null || lsn >= entry.snapshotLsn)) await this.check(entry, lsn, true);
  }

  /**
   * The entry of a mirrored source table by name (a partition's root, named by the truncate relay): the one a
   * Relation message made, else one from the catalog that knows the destination table but none of its columns,
   * which is all a partition's truncate needs. Null when the mirror does not map it. Runs inside the pipeline.
   */
  async bySource(source: { schema: string; name: string }): Promise<RelationEntry | null> {
    for (const e of this.entries.values())
      if (e.table && e.table.sourceSchema === source.schema && e.table.sourceTable === source.name) return e;
    const state = await W.loadMirrorState(this.dst, this.mirror);
    const t = state?.tables.find((x) => x.sourceSchema === source.schema && x.sourceTable === source.name);
    if (!t) return null;
    const target: TargetTable = {
      schema: t.destSchema,
      name: t.destTable,
      label: `${t.destSchema}.${t.destTable}`,
      columns: [],
      types: [],
      key: [],
      snapshotLsn: t.snapshotLsn,
    };
    return { target, table: t, snapshotLsn: lsnOf(t) };
  }

  /**
   * Checks the columns of an entry learned unchecked, now that a change at `lsn` is to be applied (runs inside
   * the pipeline).
   */
  async recheck(rel: RelationEntry, lsn: bigint): Promise<void> {
    const state = await W.loadMirrorState(this.dst, this.mirror);
    const t = state?.tables.find((x) => x.destSchema === rel.table!.destSchema && x.destTable === rel.table!.destTable);
    if (!t) {
      rel.target = null;
      return;
    }
    rel.table = t;
    rel.target = targetOf(rel.msg!, t);
    rel.snapshotLsn = lsnOf(t);
    await this.check(rel, lsn, true);
  }

  /** Fits the table to the Relation (auto), or records what would and stops; marks the entry checked. */
  private async check(rel: RelationEntry, lsn: bigint | null, mayApply: boolean): Promise<void> {
    const t = rel.table!;
    const msg = rel.msg!;
    const sentTypes = await this.source.typeNames(msg.columns);
    const sent = msg.columns.map((c, i) => ({ name: c.name, type: sentTypes[i] }));
    const kept = new Set(t.keptColumns);
    const drift = relationDrift(
      { source: `${t.sourceSchema}.${t.sourceTable}`, destination: `${t.destSchema}.${t.destTable}` },
      sent,
      Object.entries(t.types)
        .filter(([name]) => !kept.has(name))
        .map(([name, type]) => ({ name, type })),
      t.excludeColumns,
    );
    const dest = { schema: t.destSchema, name: t.destTable };
    if (!drift) {
      if (t.schemaChangePending) await W.recordPendingSchemaChange(this.dst, this.mirror, dest, null);
      rel.unchecked = false;
      return;
    }
    const change = await this.changeFor(t, sent);
    const fixable = change !== null && change.steps.length > 0 && change.unfixable.length === 0;
    if (fixable && !change.copy && mayApply && this.policy.schema_changes === 'auto') {
      await this.apply(t, change, lsn);
      const state = await W.loadMirrorState(this.dst, this.mirror);
      const after = state?.tables.find((x) => x.destSchema === t.destSchema && x.destTable === t.destTable);
      if (after) {
        rel.table = after;
        rel.target = targetOf(msg, after);
        return this.check(rel, lsn, false);
      }
    }
    const address = tableAddress(this.mirror, dest);
    let hint = `run \`mirrors plan\`: it shows ${drift.code} with the exact change to make on ${t.destSchema}.${t.destTable} (docs/diagnostics.md#${drift.code.toLowerCase()}); the worker resumes once the tables fit`;
    if (fixable) {
      await W.recordPendingSchemaChange(this.dst, this.mirror, dest, {
        detected_at: new Date().toISOString(),
        lsn: lsn === null ? '0/0' : bigIntToLsn(lsn),
        steps: change.steps,
        copy: change.copy,
        kept: change.kept,
      });
      hint = change.copy
        ? `run \`mirrors plan\` and \`mirrors apply\`: the plan copies ${address} again with this change (${change.copy})`
        : `run \`mirrors plan\` and \`mirrors apply\`: the plan proposes, where the stream stopped: ${change.steps.map((s) => s.summary).join('; ')}${this.policy.schema_changes === 'plan' ? ' (schema_changes: auto lets the worker apply such changes itself)' : ''}`;
    }
    throw new Fault('drift', drift.message, drift.code, hint, drift.diff);
  }

  /**
   * The DDL for the columns the stream sends, with what the source catalog says about them now. Columns the
   * source no longer has as sent (it moved on) are known by name and type only: added, they need a copy.
   */
  private async changeFor(t: CatalogTable, sent: { name: string; type: string }[]): Promise<SchemaChange | null> {
    const now = await this.source.tableColumns({ schema: t.sourceSchema, name: t.sourceTable });
    const byName = new Map((now?.columns ?? []).map((c) => [c.name, c]));
    const sentNames = new Set(sent.map((c) => c.name));
    const excluded = new Set(t.excludeColumns);
    const source: SourceColumn[] = sent.map((c) => {
      const known = byName.get(c.name);
      return known && known.type === c.type ? known : { ...c, unknown: true };
    });
    // Columns the stream never sends still hold their attnums (which tell a rename from a drop and an add).
    const unsent = (now?.columns ?? []).filter((c) => !sentNames.has(c.name) && (excluded.has(c.name) || c.generated));
    const all = source.every((c) => c.attnum !== undefined)
      ? [...source, ...unsent].sort((a, b) => a.attnum! - b.attnum!)
      : source;
    return schemaChange({
      table: { schema: t.destSchema, name: t.destTable },
      source: all,
      destination: Object.entries(t.types).map(([name, type]) => ({ name, type })),
      excluded: [...excluded, ...unsent.filter((c) => c.generated).map((c) => c.name)],
      kept: t.keptColumns,
      sourceDropped: now?.dropped,
      droppedColumns: this.policy.dropped_columns,
    });
  }

  /** Runs the DDL and records it (kept columns, last change, journal) in one destination transaction. */
  private async apply(t: CatalogTable, change: SchemaChange, lsn: bigint | null): Promise<void> {
    const dest = { schema: t.destSchema, name: t.destTable };
    const address = tableAddress(this.mirror, dest);
    const sql = stepsSql(change);
    const applied: AppliedSchemaChange = {
      applied_at: new Date().toISOString(),
      by: 'worker',
      lsn: lsn === null ? null : bigIntToLsn(lsn),
      summary: change.steps.map((s) => s.summary),
      sql,
    };
    await inTransaction(this.dst, async () => {
      for (const s of sql) await this.dst.query(s);
      await catalog.recordSchemaChange(this.dst, this.mirror, dest, applied, change.kept, {
        actionId: `schema_change:${address}`,
        address,
        host: os.hostname(),
        pid: process.pid,
        command: 'mirrors run (schema_changes: auto)',
      });
    });
    injectKill('schema_change');
    this.log('info', `${address}: applied the source's schema change: ${applied.summary.join('; ')}`, {
      mirror: this.mirror,
      table: `${t.destSchema}.${t.destTable}`,
      schemaChange: applied,
    });
  }

  /**
   * Re-reads a table whose copy is still running elsewhere (`mirrors apply`): 'ready' once its copy is
   * committed, 'gone' when it is no longer mirrored, else 'copying'. Runs inside the apply pipeline.
   */
  async refresh(rel: RelationEntry): Promise<'ready' | 'gone' | 'copying'> {
    const state = await W.loadMirrorState(this.dst, this.mirror);
    const t = state?.tables.find((x) => x.destSchema === rel.table!.destSchema && x.destTable === rel.table!.destTable);
    if (!t) {
      rel.target = null;
      return 'gone';
    }
    if (t.state !== 'ready') return 'copying';
    rel.table = t;
    rel.snapshotLsn = lsnOf(t);
    // The copy may have come with DDL (a table copied again for a schema change): check before the next use
    // (an entry from the catalog carries no columns to check).
    rel.unchecked = rel.msg !== undefined;
    return 'ready';
  }
}

function targetOf(msg: RelationMessage, t: CatalogTable): TargetTable {
  return {
    schema: t.destSchema,
    name: t.destTable,
    label: `${t.destSchema}.${t.destTable}`,
    columns: msg.columns.map((c) => c.name),
    types: msg.columns.map((c) => t.types[c.name]),
    // Under REPLICA IDENTITY FULL every column is flagged: rows are then matched by their old values.
    key: msg.replicaIdentity === 'f' ? [] : msg.columns.flatMap((c, i) => (c.isKey ? [i] : [])),
    snapshotLsn: t.snapshotLsn,
  };
}

function lsnOf(t: CatalogTable): bigint {
  return t.snapshotLsn ? lsnToBigInt(t.snapshotLsn) : 0n;
}
