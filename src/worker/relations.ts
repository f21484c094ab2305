/**
 * What each Relation message of the stream maps to: the destination table, its catalog row (state, snapshot
 * LSN) and whether the source's columns still fit it. A Relation that does not fit is schema drift: the
 * session stops before the transaction that carries it (nothing of it applied or acknowledged).
 */
import type { MirrorState } from '../catalog/worker-sql.js';
import * as W from '../catalog/worker-sql.js';
import { lsnToBigInt } from '../db/lsn.js';
import type { Queryable } from '../db/tx.js';
import type { TargetTable } from './changes.js';
import type { PgoutputMessage } from './decode.js';
import { Fault } from './faults.js';
import { relationDrift } from '../diff/drift.js';

type CatalogTable = MirrorState['tables'][number];
type RelationMessage = Extract<PgoutputMessage, { tag: 'relation' }>;

export interface RelationEntry {
  /** null: the publication sends the table but the mirror does not map it (its changes are dropped). */
  target: TargetTable | null;
  table?: CatalogTable;
  /** The table's snapshot LSN (0 when none): transactions committed before it are in its copy. */
  snapshotLsn: bigint;
}

export class RelationCache {
  private entries = new Map<number, RelationEntry>();
  private warned = new Set<string>();

  constructor(
    private mirror: string,
    private dst: Queryable,
    private sourceTypes: (cols: { typeOid: number; typmod: number }[]) => Promise<string[]>,
    private warn: (msg: string) => void,
  ) {}

  get(oid: number): RelationEntry | undefined {
    return this.entries.get(oid);
  }

  /** Runs inside the apply pipeline (it reads the catalog through the destination connection). */
  async learn(msg: RelationMessage): Promise<void> {
    // From the catalog as it is now, not as it was when the session started: `mirrors apply` records a
    // table added (or resynced) while we run before the publication carries it.
    const state = await W.loadMirrorState(this.dst, this.mirror);
    const t = state?.tables.find((x) => x.sourceSchema === msg.schema && x.sourceTable === msg.name);
    if (!t) {
      const label = `${msg.schema}.${msg.name}`;
      if (!this.warned.has(label)) {
        this.warned.add(label);
        this.warn(`the publication sends ${label}, which the mirror does not map; its changes are not applied`);
      }
      this.entries.set(msg.relationOid, { target: null, snapshotLsn: 0n });
      return;
    }
    const sentTypes = await this.sourceTypes(msg.columns);
    const drift = relationDrift(
      { source: `${t.sourceSchema}.${t.sourceTable}`, destination: `${t.destSchema}.${t.destTable}` },
      msg.columns.map((c, i) => ({ name: c.name, type: sentTypes[i] })),
      Object.entries(t.types).map(([name, type]) => ({ name, type })),
      t.excludeColumns,
    );
    if (drift) {
      // A Relation message carries names and types only, not defaults or NOT NULL: the plan, which reads both
      // tables, gives the exact DDL (an added column needs the source's DEFAULT for the rows copied before).
      const hint = `run \`mirrors plan\`: it shows ${drift.code} with the exact change to make on ${t.destSchema}.${t.destTable} (docs/diagnostics.md#${drift.code.toLowerCase()}); the worker resumes once the tables fit`;
      throw new Fault('drift', drift.message, drift.code, hint, drift.diff);
    }
    const target: TargetTable = {
      schema: t.destSchema,
      name: t.destTable,
      label: `${t.destSchema}.${t.destTable}`,
      columns: msg.columns.map((c) => c.name),
      types: msg.columns.map((c) => t.types[c.name]),
      // Under REPLICA IDENTITY FULL every column is flagged: rows are then matched by their old values.
      key: msg.replicaIdentity === 'f' ? [] : msg.columns.flatMap((c, i) => (c.isKey ? [i] : [])),
      snapshotLsn: t.snapshotLsn,
    };
    this.entries.set(msg.relationOid, { target, table: t, snapshotLsn: lsnOf(t) });
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
    rel.target!.snapshotLsn = t.snapshotLsn;
    rel.snapshotLsn = lsnOf(t);
    return 'ready';
  }
}

function lsnOf(t: CatalogTable): bigint {
  return t.snapshotLsn ? lsnToBigInt(t.snapshotLsn) : 0n;
}
